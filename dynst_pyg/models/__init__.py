"""Forecasting backbones that run on any sensor subset (DESIGN §4) and the network-wide head (§5).

Every backbone follows ``forward(x: [B, T_in, K, F], edge_index, edge_weight=None,
node_index: LongTensor[K] | None = None) -> [B, T_out, K, F_out]``.
"""

from .dcrnn import DCRNN, DCRNN_PROFILES, DCGRUCell, DiffusionConv, scheduled_sampling_ratio
from .graph_wavenet import GWNET_PROFILES, GraphWaveNet
from .lift import LiftHead
from .supports import SupportCache, dense_adjacency, random_walk_matrix, transition_supports
from .tgt import TGTAdapter, resolve_cell

__all__ = [
    "GraphWaveNet",
    "GWNET_PROFILES",
    "DCRNN",
    "DCRNN_PROFILES",
    "DCGRUCell",
    "DiffusionConv",
    "scheduled_sampling_ratio",
    "TGTAdapter",
    "resolve_cell",
    "LiftHead",
    "SupportCache",
    "dense_adjacency",
    "random_walk_matrix",
    "transition_supports",
]
