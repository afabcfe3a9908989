r"""Label-free features of training windows: temporal and spatial complexity, non-stationarity, rank normalisation.

:class:`~dynst_pyg.sampling.STPrune` scores a window by its loss times
``1 + alpha * complexity``, where the complexity is the mean of the rank-normalised
temporal total variation and spatial non-smoothness of :func:`window_complexity`, and
puts windows into stationarity bins by :func:`window_nonstationarity`. Only the input
windows ``x [B, T_in, N, F]`` are read, never the targets.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .._checks import check_graph

__all__ = ["rank_normalize", "window_complexity", "window_nonstationarity"]


def rank_normalize(values: Tensor) -> Tensor:
    """Average-rank normalisation of a 1-D tensor to ``[0, 1]`` (ties share a rank).

    The smallest value maps to 0 and the largest to 1; a constant tensor maps to 0.
    """
    if values.dim() != 1:
        raise ValueError(f"`values` must be 1-D, got shape {tuple(values.shape)}")
    n = values.numel()
    if n <= 1:
        return torch.zeros(n, dtype=torch.float32)
    v = values.detach().to(torch.float64)
    if torch.isnan(v).any():
        raise ValueError("`values` must not contain NaN")
    uniq, inverse, counts = torch.unique(v, sorted=True, return_inverse=True, return_counts=True)
    if uniq.numel() == 1:
        return torch.zeros(n, dtype=torch.float32)
    start = torch.cumsum(counts, 0) - counts
    avg_rank = start.to(torch.float64) + (counts.to(torch.float64) - 1.0) / 2.0
    return (avg_rank[inverse] / (n - 1)).to(torch.float32)


def _describe(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__


def _check_windows(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"`{name}` must be a tensor [B, T_in, N, F], got {_describe(x)}")


def window_complexity(x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                      eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    r"""Raw temporal and spatial complexity of input windows (label-free).

    * temporal total variation: ``mean_{n,f} sum_t |x[t+1] - x[t]| / (T - 1)``;
    * spatial non-smoothness: ``sum_{t,f} x_t^T L x_t / sum_{t,f} x_t^T x_t`` with the
      combinatorial Laplacian ``L = D - W`` of the symmetrised graph
      ``W = (A + A^T) / 2`` (so ``x^T L x = 1/2 sum_e w_e (x_src - x_dst)^2``).

    Args:
        x (Tensor): Windows ``[B, T_in, N, F]``.
        edge_index (LongTensor): ``[2, E]``.
        edge_weight (Tensor, optional): ``[E]``. (default: ``None``: ones)
        eps (float, optional): Added to the denominator. (default: ``1e-8``)

    Returns:
        (Tensor, Tensor): ``tv [B]`` and ``spatial [B]`` (float32).
    """
    _check_windows(x)
    b, t, n, f = x.shape
    x = x.detach().to(torch.float32)
    if t > 1:
        tv = (x[:, 1:] - x[:, :-1]).abs().sum(dim=1).mean(dim=(1, 2)) / (t - 1)
    else:
        tv = torch.zeros(b)
    check_graph(edge_index, edge_weight, n)
    ei = edge_index.to(torch.long)
    w = torch.ones(ei.size(1)) if edge_weight is None else edge_weight.detach().to(torch.float32)
    diff = x[:, :, ei[0], :] - x[:, :, ei[1], :]                        # [B, T, E, F]
    quad = 0.5 * (diff.pow(2) * w.view(1, 1, -1, 1)).sum(dim=(1, 2, 3))
    energy = x.pow(2).sum(dim=(1, 2, 3))
    spatial = quad / (energy + eps)
    return tv, spatial


def window_nonstationarity(x: Tensor, eps: float = 1e-3) -> Tensor:
    r"""Cheap non-stationarity of input windows: shift of mean and scale between halves.

    For every node and feature, with ``m1, s1`` (``m2, s2``) the mean and standard
    deviation of the first (second) half of the window and ``s`` that of the whole
    window, the measure is ``|m1 - m2| / (s + eps) + |log((s1 + eps) / (s2 + eps))|``,
    averaged over nodes and features. ``eps`` is in the units of ``x`` (normalised
    inputs are O(1)).

    Args:
        x (Tensor): Windows ``[B, T_in, N, F]`` with ``T_in >= 2``.
        eps (float, optional): Stabiliser. (default: ``1e-3``)

    Returns:
        Tensor: ``[B]`` float32, 0 for a perfectly stationary window.
    """
    _check_windows(x)
    t = x.size(1)
    if t < 2:
        return torch.zeros(x.size(0))
    x = x.detach().to(torch.float32)
    h = t // 2
    a, c = x[:, :h], x[:, t - h:]
    m1, m2 = a.mean(dim=1), c.mean(dim=1)
    s1, s2 = a.std(dim=1, unbiased=False), c.std(dim=1, unbiased=False)
    s = x.std(dim=1, unbiased=False)
    shift = (m1 - m2).abs() / (s + eps) + ((s1 + eps) / (s2 + eps)).log().abs()
    return shift.mean(dim=(1, 2))
