"""Standardisation fitted on the training split only, with an exact inverse."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ["StandardScaler"]


class StandardScaler:
    """Z-score scaling per feature (optionally per sensor and feature).

    Args:
        mean (Tensor): ``[F]`` or, per sensor, ``[N, F]``.
        std (Tensor): Same shape as ``mean``; zeros are replaced by ones.

    Use :meth:`fit` to estimate the statistics from training data. Missing readings
    (NaN, equal to ``null_value`` or not ``observed``) are left out of the statistics.
    """

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).clone()
        std = torch.as_tensor(std, dtype=torch.float32).clone()
        if mean.shape != std.shape or mean.dim() not in (1, 2):
            raise ValueError(f"`mean` and `std` must share a shape [F] or [N, F], got {tuple(mean.shape)} and {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("`mean` and `std` must be finite")
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.mean = mean
        self.std = std

    @property
    def per_node(self) -> bool:
        """Whether the statistics are per sensor (``[N, F]``)."""
        return self.mean.dim() == 2

    @classmethod
    def fit(cls, series: Tensor, null_value: Optional[float] = None, per_node: bool = False,
            observed: Optional[Tensor] = None) -> "StandardScaler":
        """Estimates mean and (population) std of ``series [T, N, F]`` over its observed cells.

        Args:
            series (Tensor): ``[T, N, F]`` training readings; NaN cells are left out.
            null_value (float, optional): Readings equal to it are left out too (default: :obj:`None`).
            per_node (bool, optional): One mean and std per sensor and feature (default: :obj:`False`).
            observed (BoolTensor, optional): ``[T, N, F]``; only :obj:`True` cells count
                (default: :obj:`None`: all non-NaN cells).

        A feature (or, per sensor, a sensor's feature) without any observed cell gets
        mean 0 and std 1.
        """
        if series.dim() != 3:
            raise ValueError(f"`series` must have shape [T, N, F], got {tuple(series.shape)}")
        valid = ~torch.isnan(series)
        if null_value is not None:
            valid &= series != null_value
        if observed is not None:
            if observed.shape != series.shape or observed.dtype != torch.bool:
                raise ValueError(f"`observed` must be a bool tensor of shape {tuple(series.shape)}, "
                                 f"got {observed.dtype} {tuple(observed.shape)}")
            valid &= observed
        dims = (0,) if per_node else (0, 1)
        x = torch.where(valid, series, torch.zeros_like(series)).double()
        w = valid.double()
        count = w.sum(dim=dims).clamp_min(1.0)
        mean = x.sum(dim=dims) / count
        var = (((x - mean) ** 2) * w).sum(dim=dims) / count
        return cls(mean.float(), var.sqrt().float())

    def _stats(self, features: Optional[Sequence[int]], like: Tensor) -> tuple[Tensor, Tensor]:
        mean, std = self.mean, self.std
        if features is not None:
            idx = torch.as_tensor(list(features), dtype=torch.long)
            mean, std = mean[..., idx], std[..., idx]
        if like.size(-1) != mean.size(-1):
            raise ValueError(
                f"last dimension of the input ({like.size(-1)}) must equal the number of scaled features ({mean.size(-1)})"
            )
        if self.per_node and (like.dim() < 2 or like.size(-2) != mean.size(0)):
            raise ValueError(f"per-sensor scaler expects [..., N={mean.size(0)}, F], got {tuple(like.shape)}")
        return mean.to(like.device, like.dtype), std.to(like.device, like.dtype)

    def transform(self, x: Tensor, features: Optional[Sequence[int]] = None) -> Tensor:
        """Returns ``(x - mean) / std``; ``features`` picks which statistics apply to ``x[..., :]``."""
        mean, std = self._stats(features, x)
        return (x - mean) / std

    def inverse_transform(self, x: Tensor, features: Optional[Sequence[int]] = (0,)) -> Tensor:
        """Returns ``x * std + mean`` (default: statistics of feature 0, the forecast target)."""
        mean, std = self._stats(features, x)
        return x * std + mean

    def select_nodes(self, keep: Tensor) -> "StandardScaler":
        """Per-sensor statistics restricted to ``keep`` (global statistics are returned unchanged)."""
        if not self.per_node:
            return StandardScaler(self.mean, self.std)
        return StandardScaler(self.mean[keep], self.std[keep])

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "StandardScaler":
        return cls(torch.tensor(state["mean"]), torch.tensor(state["std"]))

    def __repr__(self) -> str:
        kind = f"per-sensor [{self.mean.size(0)}, {self.mean.size(1)}]" if self.per_node else f"features={self.mean.size(0)}"
        return f"StandardScaler({kind})"
