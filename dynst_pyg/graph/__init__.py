"""Graph surgery on a sensor subset: the induced subgraph, k-hop reconnection and Kron reduction."""

from .subgraph import induced_subgraph, kron_reduction, khop_reconnect, select, lift, RECONNECT_MODES

__all__ = [
    "induced_subgraph",
    "kron_reduction",
    "khop_reconnect",
    "select",
    "lift",
    "RECONNECT_MODES",
]
