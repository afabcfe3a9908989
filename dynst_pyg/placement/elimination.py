"""Sequential backward elimination of sensors under a ridge multi-horizon reconstruction criterion.

The classical backward selection: starting from all active sensors, repeatedly drop the one
whose removal least raises the ridge-regression error of reconstructing every sensor's
(centred, training) readings ``h`` steps ahead, for each ``h`` in a set of horizons, from the
remaining sensors' current readings. :func:`training_moments` computes the two second moments
the criterion needs once; :func:`elimination_order` runs the elimination with rank-one
downdates and scores each sensor by how late it leaves. Being sequential, it keeps one of two
near-duplicates.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor

from ..linalg import ridge_penalty

__all__ = ["training_moments", "elimination_order", "centred_series", "moments_of", "eliminate"]


def centred_series(series: Tensor, valid: Optional[Tensor], horizons: Sequence[int]) -> tuple[Tensor, List[int]]:
    """Validated float64 CPU series ``[T, N, F]``, centred per sensor and feature, and sorted horizons."""
    if not isinstance(series, Tensor):
        raise TypeError(f"`series` must be a torch.Tensor [T, N] or [T, N, F], got {type(series).__name__}")
    x = series.unsqueeze(-1) if series.dim() == 2 else series
    if x.dim() != 3:
        raise ValueError(f"`series` must have shape [T, N] or [T, N, F], got {tuple(series.shape)}")
    hs = sorted({int(h) for h in horizons})
    if not hs or hs[0] < 0:
        raise ValueError(f"`horizons` must be non-negative integers, got {tuple(horizons)}")
    if x.size(0) <= hs[-1] + 1:
        raise ValueError(f"`series` has {x.size(0)} steps, too few for horizon {hs[-1]}")
    x = x.detach().to(torch.float64).cpu()
    v = torch.isfinite(x)
    if valid is not None:
        vv = (valid.unsqueeze(-1) if valid.dim() == 2 else valid).cpu()
        if vv.shape != x.shape:
            raise ValueError(f"`valid` must have the shape of `series` {tuple(x.shape)}, got {tuple(valid.shape)}")
        if vv.dtype != torch.bool:
            raise ValueError(f"`valid` must be a bool tensor, got {vv.dtype}")
        v = v & vv
    mean = torch.where(v, x, torch.zeros_like(x)).sum(0) / v.sum(0).clamp_min(1)
    return torch.where(v, x - mean, torch.zeros_like(x)), hs


def moments_of(xc: Tensor, hs: List[int]) -> tuple[Tensor, Tensor]:
    """``(A^T A, sum_h (A^T Y_h)(A^T Y_h)^T)`` of a centred ``[T, n, F]`` series (see :func:`training_moments`)."""
    t = xc.size(0) - hs[-1]
    a = xc[:t]
    gram = torch.einsum("tif,tjf->ij", a, a)
    second = torch.zeros_like(gram)
    for h in hs:
        cross = torch.einsum("tif,tjf->ij", a, xc[h:h + t])  # [n, n]: A^T Y_h
        second += cross @ cross.t()
    return gram, second


@torch.no_grad()
def training_moments(series: Tensor, valid: Optional[Tensor] = None,
                     horizons: Sequence[int] = (0,)) -> tuple[Tensor, Tensor]:
    """Second moments of a training series for :func:`elimination_order` (float64, CPU).

    With ``A`` the centred series at steps ``t`` and ``Y_h`` all sensors at ``t + h``,
    returns ``gram = A^T A`` ``[N, N]`` and ``second = sum_h (A^T Y_h)(A^T Y_h)^T`` ``[N, N]``.
    ``horizons=(0,)`` is same-step reconstruction; horizons ``>= 1`` score sensors by how
    well their current readings predict every sensor's *future* readings, which ignores
    white noise (nobody can predict it) and so prefers the sources of a noisy mix to the
    mix itself. Features are centred separately and summed; invalid readings (``valid``
    False or not finite) are replaced by their sensor's mean first.

    Cost: ``O(T F N^2 |horizons|)`` time and two dense ``N x N`` float64 matrices.

    Args:
        series (Tensor): ``[T, N]`` or ``[T, N, F]``; pass training steps only.
        valid (Tensor, optional): Bool mask like ``series`` (default: all valid).
        horizons (sequence of int, optional): Non-negative steps ahead (default: ``(0,)``).
    """
    return moments_of(*centred_series(series, valid, horizons))


# ------------------------------------------------------------------------------ elimination
def eliminate(g: Tensor, m: Tensor, lam: float) -> tuple[Tensor, Tensor]:
    """Backward elimination on ``[K, K]`` float64 moments; returns (local index removed at each
    step ``[K]`` long, error increase at that removal ``[K]`` float64).

    Rank-one downdates go through preallocated buffers, and once a fifth of the rows have left
    since the last compaction, the removed rows and columns (all zero but for ``G^{-1}``'s unit
    diagonal) are dropped from both matrices. Every remaining entry sees the same floating-point
    operations as without either, so the order is the same; the compaction cuts the work to about
    ``K^3 / 2.4`` and the buffers avoid allocating ``K x K`` temporaries at every step.
    """
    k = g.size(0)
    gi = torch.linalg.inv(g + lam * torch.eye(k, dtype=torch.float64))
    p = gi @ m @ gi                     # [K, K] = B B^T
    ids = torch.arange(k)               # original local index of each current row
    alive = torch.ones(k, dtype=torch.bool)
    order = torch.empty(k, dtype=torch.long)
    cost = torch.empty(k, dtype=torch.float64)
    b1, b2, b3 = (torch.empty(k, k, dtype=torch.float64) for _ in range(3))
    for step in range(k):
        size = ids.numel()
        if size - (k - step) >= max(1, size // 5):   # compact: keep the alive rows, in order
            keep = torch.nonzero(alive).flatten()
            gi, p, ids = gi[keep][:, keep], p[keep][:, keep], ids[keep]
            alive = torch.ones(keep.numel(), dtype=torch.bool)
            b1, b2, b3 = (torch.empty_like(gi) for _ in range(3))
        val = p.diagonal() / gi.diagonal().clamp_min(1e-300)
        val = torch.where(alive, val, torch.full_like(val, float("inf")))
        j = int(torch.argmin(val))
        order[step], cost[step] = ids[j], val[j]
        alive[j] = False
        col = gi[:, j].clone()
        gj, pj, pjj = col[j], p[:, j].clone(), p[j, j].clone()
        # B' = B - col B_j / gj  =>  P' = P - (col pj^T + pj col^T) / gj + col col^T pjj / gj^2
        torch.outer(col, col, out=b1).mul_(pjj / (gj * gj))
        torch.outer(col, pj, out=b2).add_(torch.outer(pj, col, out=b3)).div_(gj)
        p += b1.sub_(b2)
        gi -= torch.outer(col, col, out=b1).div_(gj)
        gi[j, :] = 0.0
        gi[:, j] = 0.0
        gi[j, j] = 1.0  # keeps the removed row inert (its P row is 0 after the downdate)
        p[j, :] = 0.0
        p[:, j] = 0.0
    return order, cost


@torch.no_grad()
def elimination_order(gram: Tensor, active: Tensor, ridge: float = 1e-3, second: Optional[Tensor] = None) -> Tensor:
    """Backward elimination of active sensors for the ridge regression of every sensor.

    With ``G = gram[a, a] + lam I`` over the remaining active set ``a`` (``lam = ridge *
    mean(diag(gram[a, a]))``, fixed) and ``B = G^{-1} A_a^T Y`` the ridge coefficients of all
    targets on ``a``, removing sensor ``j`` raises the summed squared error by
    ``sum_t B[j, t]^2 / (G^{-1})[j, j] = P[j, j] / (G^{-1})[j, j]`` with ``P = B B^T =
    G^{-1} second[a, a] G^{-1}``. The sensor with the smallest increase leaves, ``G^{-1}``
    and ``P`` are downdated in ``O(K^2)``, and so on until one is left: ``O(K^3)`` in all.

    Args:
        gram (Tensor): ``[N, N]`` from :func:`training_moments`.
        active (Tensor): Bool ``[N]`` sensors taking part.
        ridge (float, optional): Relative ridge strength (default: ``1e-3``).
        second (Tensor, optional): ``[N, N]`` from :func:`training_moments`; :obj:`None` means
            same-step reconstruction of all sensors (``gram @ gram``) (default: :obj:`None`).

    Returns:
        Tensor: ``[N]`` float scores: ``0`` for inactive sensors, and for active ones their
        position in the elimination rescaled to ``(0, 1]`` (the last survivor gets 1), so
        keeping the ``K`` highest is the elimination's choice of ``K``.
    """
    n = gram.size(0)
    if gram.shape != (n, n) or active.shape != (n,) or active.dtype != torch.bool:
        raise ValueError(f"`gram` must be [N, N] and `active` a bool [N], got {tuple(gram.shape)}, "
                         f"{active.dtype} {tuple(active.shape)}")
    if second is not None and second.shape != (n, n):
        raise ValueError(f"`second` must be [{n}, {n}], got {tuple(second.shape)}")
    a = torch.nonzero(active.cpu()).flatten()
    k = a.numel()
    out = torch.zeros(n, dtype=torch.float64)
    if k == 0:
        return out.float()
    c = gram.to(torch.float64).cpu()
    g = c[a][:, a]
    m = (c @ c)[a][:, a] if second is None else second.to(torch.float64).cpu()[a][:, a]
    lam = ridge_penalty(g, ridge)
    order, _ = eliminate(g, m, lam)
    out[a[order]] = torch.arange(1, k + 1, dtype=torch.float64) / k
    return out.float()
