"""Where series come from: one loader per source, the own-data folder, Aarhus, the synthetic network, and the registry of names."""

from .loaders import (FILES, ChecksumMismatch, DataFileMissing, cache_dir, data_root, dense_to_edges, download,
                      from_arrays, from_networkx, from_static_signal, gaussian_kernel_edges, load_los_loop,
                      load_metr_la, load_pems04, load_pems08, load_pems_bay, sha256sum, to_static_signal,
                      to_temporal_signal, verify)
from .aarhus import AARHUS_FEATURES, load_aarhus
from .synthetic import synthetic_road_network
from .registry import available_datasets, dataset_summary, format_summary, load_dataset

__all__ = [
    "data_root", "download", "verify", "sha256sum", "FILES", "DataFileMissing", "ChecksumMismatch",
    "load_los_loop", "load_metr_la", "load_pems_bay", "load_pems04", "load_pems08",
    "from_arrays", "from_networkx", "to_static_signal", "from_static_signal", "to_temporal_signal",
    "dense_to_edges", "gaussian_kernel_edges", "synthetic_road_network", "load_dataset",
    "available_datasets", "dataset_summary", "format_summary", "load_aarhus", "AARHUS_FEATURES", "cache_dir",
]
