"""dynst_pyg: which sensors can be switched off (DynST) and which training windows can be
skipped (ST-Prune), for PyTorch Geometric.

Quick tour::

    import torch_geometric.transforms as T
    from dynst_pyg import DynSTMask, SensorMask

    mask = SensorMask.load("mask.json")
    small = T.Compose([DynSTMask(mask)])(data)   # pruned sensors leave the graph

This module is the public face only: it re-exports names from the subpackages and loads
the training layer (which pulls in the model zoo) on first use.
"""

from ._version import __version__
from .data import SpatioTemporalDataset, prepare
from .datasets import load_dataset, load_los_loop, synthetic_road_network
from .graph import induced_subgraph, khop_reconnect, kron_reduction, scatter_kept, select
from .metrics import forecast_metrics, masked_mae, masked_mape, masked_rmse
from .placement import make_selector, select_sensors
from .sampling import FullData, InfoBatch, RandomPrune, STPrune, iter_batches, make_sampler
from .scoring import SensorGate
from .selection import DropRegrow, Iterative, OneShot, SelectionConstraints, SensorMask, constrained_top_k, make_schedule
from .transforms import DynSTMask

_LAZY = {"DynSTTrainer": "training", "DynSTConfig": "training", "DynSTResult": "training"}

__all__ = [
    "__version__",
    "SensorMask", "SelectionConstraints", "constrained_top_k", "DynSTMask", "induced_subgraph", "khop_reconnect",
    "kron_reduction", "scatter_kept", "select",
    "SensorGate", "OneShot", "Iterative", "DropRegrow", "make_schedule", "make_selector", "select_sensors",
    "STPrune", "InfoBatch", "RandomPrune", "FullData", "iter_batches", "make_sampler",
    "masked_mae", "masked_rmse", "masked_mape", "forecast_metrics",
    "SpatioTemporalDataset", "prepare", "load_dataset", "load_los_loop", "synthetic_road_network",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dynst_pyg' has no attribute {name!r}")
