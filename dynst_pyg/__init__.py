"""dynst_pyg: which sensors can be switched off (DynST) and which training windows can be
skipped (ST-Prune), for PyTorch Geometric.

Quick tour::

    import torch_geometric.transforms as T
    from dynst_pyg import DynSTMask, SensorMask

    mask = SensorMask.load("mask.json")
    small = T.Compose([DynSTMask(mask)])(data)   # pruned sensors leave the graph
"""

from .mask import SensorMask
from .constraints import SelectionConstraints, constrained_top_k
from .subgraph import induced_subgraph, khop_reconnect, kron_reduction, lift, select
from .transforms import DynSTMask
from .gate import SensorGate
from .schedules import DropRegrow, Iterative, OneShot, make_schedule
from .placement import make_selector, select_sensors
from .sampling import FullData, InfoBatch, RandomPrune, STPrune, iter_batches, make_sampler
from .metrics import forecast_metrics, masked_mae, masked_mape, masked_rmse
from .datasets import (SpatioTemporalDataset, load_dataset, load_los_loop, synthetic_road_network)

__version__ = "0.1.0"

__all__ = [
    "SensorMask", "SelectionConstraints", "constrained_top_k", "DynSTMask", "induced_subgraph", "khop_reconnect", "kron_reduction", "lift", "select",
    "SensorGate", "OneShot", "Iterative", "DropRegrow", "make_schedule", "make_selector", "select_sensors",
    "STPrune", "InfoBatch", "RandomPrune", "FullData", "iter_batches", "make_sampler",
    "masked_mae", "masked_rmse", "masked_mape", "forecast_metrics",
    "SpatioTemporalDataset", "load_dataset", "load_los_loop", "synthetic_road_network",
    "DynSTTrainer", "DynSTConfig",
]


def __getattr__(name: str):
    # the trainer pulls in the model zoo; import it on first use only
    if name in ("DynSTTrainer", "DynSTConfig", "DynSTResult"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'dynst_pyg' has no attribute {name!r}")
