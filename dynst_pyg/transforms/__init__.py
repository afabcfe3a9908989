"""The PyG transform that removes pruned sensors from a graph (DynSTMask)."""

from .dynst_mask import DynSTMask

__all__ = [
    "DynSTMask",
]
