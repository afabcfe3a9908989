"""Forecasting backbones that run on any sensor subset, and the network-wide lift head.

Every backbone follows ``forward(x: [B, T_in, K, F], edge_index, edge_weight=None,
node_index: LongTensor[K] | None = None) -> [B, T_out, K, F_out]``, where ``node_index``
names which of the ``N`` original nodes are present. Each also takes a PyG
``Data``/``Batch`` of node-first windows in place of these arguments (see
:mod:`dynst_pyg.models.batching`).
"""

from .batching import DenseBatch, accepts_batch, dense_from_batch, to_dense_windows, to_node_first, window_layout
from .dcrnn import DCRNN, DCRNN_PROFILES, DCGRUCell, scheduled_sampling_ratio
from .diffusion import DiffusionConv, TransitionSupports
from .graph_wavenet import GWNET_PROFILES, GraphWaveNet
from .lift import LiftHead, Propagation
from .stid import STID, STID_PROFILES
from .supports import SupportCache, dense_adjacency, random_walk_matrix, transition_supports
from .tgt import TGTAdapter, resolve_cell
from .served import ServedModel
from .registry import make_backbone

__all__ = [
    "GraphWaveNet",
    "ServedModel",
    "make_backbone",
    "GWNET_PROFILES",
    "STID",
    "STID_PROFILES",
    "DCRNN",
    "DCRNN_PROFILES",
    "DCGRUCell",
    "DiffusionConv",
    "TransitionSupports",
    "scheduled_sampling_ratio",
    "TGTAdapter",
    "resolve_cell",
    "LiftHead",
    "Propagation",
    "SupportCache",
    "dense_adjacency",
    "random_walk_matrix",
    "transition_supports",
    "DenseBatch",
    "dense_from_batch",
    "window_layout",
    "to_dense_windows",
    "to_node_first",
    "accepts_batch",
]
