"""Masked forecasting metrics (MAE, RMSE, MAPE), overall and per horizon.

All functions take ``pred`` and ``true`` of the same shape ``[B, T_out, N, F]`` (any
shape with the batch first works) on the original scale. Entries whose true value is
NaN (a missing reading, as :class:`~dynst_pyg.data.WindowDataset` serves it) or
equals ``null_value`` are excluded, and they pass no gradient (not even a NaN one) to
``pred``. The mask is normalised *per sample*: each sample's
error is averaged over its own valid entries, and samples with no valid entry (padding)
are left out of the mean, so they can neither dilute nor leak into the result.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ["HORIZONS", "horizons_for", "masked_mae", "masked_rmse", "masked_mape", "valid_mask", "forecast_metrics"]

#: The forecast steps every report and table shows (15, 30 and 60 minutes at 5-minute steps).
HORIZONS = (3, 6, 12)


def horizons_for(t_out: int) -> tuple:
    """The :data:`HORIZONS` a forecast of ``t_out`` steps reaches (``(t_out,)`` when it reaches none)."""
    return tuple(h for h in HORIZONS if h <= t_out) or (t_out,)


def valid_mask(true: Tensor, null_value: Optional[float] = None) -> Tensor:
    """Boolean mask of entries that count: not NaN and (if given) not equal to ``null_value``."""
    m = ~torch.isnan(true)
    if null_value is not None:
        m &= true != null_value
    return m


def _check(pred: Tensor, true: Tensor) -> None:
    if pred.shape != true.shape:
        raise ValueError(f"`pred` and `true` must have the same shape, got {tuple(pred.shape)} and {tuple(true.shape)}")
    if pred.dim() < 1:
        raise ValueError("`pred` must have a batch dimension")


def _reduce(err: Tensor, mask: Tensor, reduction: str) -> Tensor:
    B = err.size(0)
    m = mask.to(err.dtype).reshape(B, -1)
    e = torch.where(mask, err, torch.zeros_like(err)).reshape(B, -1)
    count = m.sum(1)
    per_sample = e.sum(1) / count.clamp_min(1.0)
    if reduction == "none":
        return per_sample
    if reduction != "mean":
        raise ValueError(f"`reduction` must be 'mean' or 'none', got {reduction!r}")
    has = count > 0
    if not bool(has.any()):
        return err.new_zeros(())
    return per_sample[has].mean()


def _masked_true(true: Tensor, mask: Tensor) -> Tensor:
    """``true`` with invalid entries set to 0, so ``pred - true`` is finite there and its gradient 0 after masking."""
    return torch.where(mask, true, torch.zeros_like(true))


def masked_mae(pred: Tensor, true: Tensor, null_value: Optional[float] = None, reduction: str = "mean") -> Tensor:
    """Mean absolute error over valid entries (``reduction="none"`` gives one value per sample)."""
    _check(pred, true)
    mask = valid_mask(true, null_value)
    return _reduce((pred - _masked_true(true, mask)).abs(), mask, reduction)


def masked_rmse(pred: Tensor, true: Tensor, null_value: Optional[float] = None, reduction: str = "mean") -> Tensor:
    """Root mean squared error.

    ``reduction="none"``: per sample, the square root of its MSE over its valid entries.
    ``reduction="mean"``: the square root of the mean over samples of the per-sample MSE
    (samples without a valid entry left out) — not the mean of per-sample RMSEs.
    """
    _check(pred, true)
    mask = valid_mask(true, null_value)
    mse = _reduce((pred - _masked_true(true, mask)) ** 2, mask, reduction)
    return mse.sqrt()


def masked_mape(pred: Tensor, true: Tensor, null_value: Optional[float] = None, reduction: str = "mean",
                eps: float = 1e-6) -> Tensor:
    """Mean absolute percentage error in percent; entries with ``|true| < eps`` are excluded too."""
    _check(pred, true)
    mask = valid_mask(true, null_value) & (true.abs() >= eps)
    t = torch.where(mask, true, torch.ones_like(true))
    err = (pred - t).abs() / t.abs().clamp_min(eps)
    return 100.0 * _reduce(err, mask, reduction)


def forecast_metrics(pred: Tensor, true: Tensor, null_value: Optional[float] = None,
                     horizons: Sequence[int] = HORIZONS) -> dict[str, float]:
    """MAE, RMSE, MAPE overall and per horizon for ``[B, T_out, N, F]`` forecasts.

    Horizon ``h`` is the ``h``-th forecast step (index ``h - 1`` of dim 1). Returns keys
    ``mae, rmse, mape`` and ``mae_h{h}, rmse_h{h}, mape_h{h}`` for each horizon.
    """
    _check(pred, true)
    if pred.dim() < 2:
        raise ValueError(f"`pred` must be [B, T_out, ...], got {tuple(pred.shape)}")
    pred, true = pred.detach().float(), true.detach().float()
    out = {"mae": float(masked_mae(pred, true, null_value)), "rmse": float(masked_rmse(pred, true, null_value)),
           "mape": float(masked_mape(pred, true, null_value))}
    for h in horizons:
        if not 1 <= h <= pred.size(1):
            raise ValueError(f"`horizons` must lie in 1..{pred.size(1)}, got {h}")
        p, t = pred[:, h - 1:h], true[:, h - 1:h]
        out[f"mae_h{h}"] = float(masked_mae(p, t, null_value))
        out[f"rmse_h{h}"] = float(masked_rmse(p, t, null_value))
        out[f"mape_h{h}"] = float(masked_mape(p, t, null_value))
    return out
