"""The kept-node argument every graph operator takes, resolved once: a SensorMask, a BoolTensor or node indices."""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor

from .._checks import check_index_tensor, check_positive_int
from ..selection.mask import SensorMask

#: What a ``subset`` argument may be.
KeepLike = Union[SensorMask, Tensor]


def _resolve_keep(keep: Any, num_nodes: Optional[int], name: str = "subset",
                  check_unique: bool = True) -> Tuple[Tensor, int]:
    """Returns (index LongTensor on CPU, num_nodes) after validation (no copy of caller data is modified)."""
    if isinstance(keep, SensorMask):
        if num_nodes is not None and int(num_nodes) != keep.num_nodes:
            raise ValueError(f"'{name}' is a SensorMask over {keep.num_nodes} nodes but num_nodes={num_nodes}")
        return keep.keep, keep.num_nodes
    if isinstance(keep, Tensor) and keep.dtype == torch.bool:
        if keep.dim() != 1:
            raise ValueError(f"'{name}' as a boolean mask must be 1-D, got shape {tuple(keep.shape)}")
        if num_nodes is not None and keep.numel() != int(num_nodes):
            raise ValueError(f"'{name}' as a boolean mask must have length num_nodes={num_nodes}, "
                             f"got {keep.numel()}")
        idx = keep.detach().cpu().nonzero().view(-1)
        n = keep.numel()
    else:
        idx = check_index_tensor(keep, name)
        if num_nodes is None:
            raise ValueError(f"'num_nodes' is required when '{name}' is an index tensor")
        n = int(num_nodes)
    n = check_positive_int(n, "num_nodes")
    if idx.numel() == 0:
        raise ValueError(f"'{name}' is an empty selection: at least one node must be kept")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n:
        raise ValueError(f"'{name}' holds index {lo if lo < 0 else hi}, outside [0, {n - 1}] "
                         f"for num_nodes={n}")
    if check_unique and idx.numel() > 1:
        s = torch.sort(idx).values
        if bool((s[1:] == s[:-1]).any()):
            raise ValueError(f"'{name}' holds duplicate indices: kept nodes must be unique")
    return idx, n


def _check_nonneg_weights(edge_weight: Optional[Tensor], mode: str) -> None:
    """Refuses negative edge weights, which reconnection (``mode``) cannot combine."""
    if edge_weight is None or edge_weight.numel() == 0:
        return
    w = edge_weight.detach()
    if bool((w < 0).any()):
        raise ValueError(f"'edge_weight' must be non-negative for reconnect={mode!r} "
                         f"(found {int((w < 0).sum())} negative weight(s))")
