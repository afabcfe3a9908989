"""Graph surgery on a sensor subset: the induced subgraph, k-hop reconnection, Kron reduction and bounded-size graph clusters."""

from .clusters import graph_clusters
from .reconnect import khop_reconnect, kron_reduction
from .subgraph import RECONNECT_MODES, induced_subgraph, scatter_kept, select

__all__ = [
    "induced_subgraph",
    "kron_reduction",
    "khop_reconnect",
    "select",
    "scatter_kept",
    "RECONNECT_MODES",
    "graph_clusters",
]
