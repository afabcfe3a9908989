"""Ridge regression helpers: the penalty scale and the regularised solve (the lift head fits with them)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ridge_penalty", "ridge_solve"]


def ridge_penalty(gram: Tensor, ridge: float) -> float:
    r"""The absolute ridge penalty ``lam = ridge * mean(diag(gram))``.

    Scaling by the mean diagonal of the Gram matrix makes :obj:`ridge` independent of
    the scale of the data (a relative ridge strength). A Gram matrix with a zero
    diagonal is treated as having mean diagonal ``1e-12``.

    Args:
        gram (Tensor): ``[K, K]`` Gram matrix ``A^T A``.
        ridge (float): Relative ridge strength, ``>= 0``.

    Returns:
        float: the penalty ``lam`` added to the diagonal.
    """
    if not isinstance(gram, Tensor) or gram.dim() != 2 or gram.size(0) != gram.size(1):
        got = tuple(gram.shape) if isinstance(gram, Tensor) else type(gram).__name__
        raise ValueError(f"'gram' must be a square [K, K] tensor, got {got}")
    if isinstance(ridge, bool) or not float(ridge) >= 0.0:
        raise ValueError(f"'ridge' must be a number >= 0, got {ridge!r}")
    return float(ridge) * float(gram.diagonal().mean().clamp_min(1e-12))


def ridge_solve(gram: Tensor, rhs: Tensor, ridge: float) -> Tensor:
    r"""Solves the ridge normal equations ``(G + lam I) W = R``.

    With ``G = A^T A`` and ``R = A^T B`` this gives the ridge regression coefficients
    ``W`` of the columns of ``B`` on the columns of ``A``. The penalty is relative:
    ``lam = ridge * mean(diag(G))`` (see :func:`ridge_penalty`). The inputs are not
    modified.

    Args:
        gram (Tensor): ``[K, K]`` symmetric positive semi-definite Gram matrix.
        rhs (Tensor): ``[K]`` or ``[K, M]`` right-hand side(s).
        ridge (float): Relative ridge strength, ``>= 0``; ``0`` needs a non-singular
            :obj:`gram`.

    Returns:
        Tensor: ``W`` with the shape of :obj:`rhs`, in the dtype of :obj:`gram`.

    Example:
        >>> a, b = torch.randn(100, 3, dtype=torch.float64), torch.randn(100, 2, dtype=torch.float64)
        >>> w = ridge_solve(a.t() @ a, a.t() @ b, ridge=1e-3)   # [3, 2]
    """
    lam = ridge_penalty(gram, ridge)
    if not isinstance(rhs, Tensor) or rhs.dim() not in (1, 2) or rhs.size(0) != gram.size(0):
        got = tuple(rhs.shape) if isinstance(rhs, Tensor) else type(rhs).__name__
        raise ValueError(f"'rhs' must be a [K] or [K, M] tensor with K={gram.size(0)}, got {got}")
    system = gram + lam * torch.eye(gram.size(0), dtype=gram.dtype, device=gram.device)
    return torch.linalg.solve(system, rhs)
