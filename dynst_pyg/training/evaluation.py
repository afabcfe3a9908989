"""Evaluation loops and latency timing: metrics of a full-network or served model on a split."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, ContextManager, Optional

import torch
from torch import Tensor, nn

from ..data.windows import ForecastSplits, WindowDataset
from ..metrics import forecast_metrics, horizons_for, masked_mae, valid_mask

__all__ = ["SPLITS", "raw_forecast", "sample_loss", "node_loss", "evaluate_full", "evaluate_served",
           "measure_inference_speedup"]

#: Names of the three splits.
SPLITS = ("train", "val", "test")


def raw_forecast(splits: ForecastSplits, pred_norm: Tensor) -> Tensor:
    """Forecasts on the original scale, in float32 (metrics are never computed in half precision)."""
    return splits.scaler.inverse_transform(pred_norm.float(), features=splits.target_features)


def sample_loss(splits: ForecastSplits, pred: Tensor, y: Tensor, nodes: Optional[Tensor] = None) -> Tensor:
    """Per-sample ``[B]`` masked MAE of original-scale forecasts ``pred`` (over ``nodes`` if given)."""
    if nodes is not None:
        pred, y = pred[:, :, nodes], y[:, :, nodes]
    return masked_mae(pred, y, splits.null_value, reduction="none")


def node_loss(splits: ForecastSplits, pred_norm: Tensor, y: Tensor, nodes: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-sample ``[B]`` loss over ``nodes`` (all if :obj:`None`) and per-node ``[N]`` masked MAE, raw scale."""
    pred = raw_forecast(splits, pred_norm)
    m = valid_mask(y, splits.null_value)
    err = torch.where(m, (pred - y).abs(), torch.zeros_like(pred))
    per_node = err.sum(dim=(0, 1, 3)) / m.sum(dim=(0, 1, 3)).clamp_min(1)
    return sample_loss(splits, pred, y, nodes), per_node


def _indices(windows: WindowDataset, index: Optional[Tensor]) -> Tensor:
    return torch.arange(len(windows)) if index is None else index


@torch.no_grad()
def evaluate_full(model: nn.Module, splits: ForecastSplits, windows: WindowDataset, target: str,
                  index: Optional[Tensor] = None, batch_size: int = 128,
                  autocast: Callable[[], ContextManager] = contextlib.nullcontext) -> dict:
    """Metrics of the zero-masked full-network model (warm-up and search).

    Args:
        model (nn.Module): A full-network :class:`~dynst_pyg.models.ServedModel`.
        splits (ForecastSplits): The run's splits (scaler, null value, horizons).
        windows (WindowDataset): The windows to score.
        target (str): ``"kept"`` scores the active sensors only, ``"all"`` every sensor.
        index (LongTensor, optional): Windows to score (default: all).
        batch_size (int, optional): Windows per forward pass (default: ``128``).
        autocast (callable, optional): Context of the forward passes (default: none).
    """
    model.eval()
    preds, ys = [], []
    for idx in _indices(windows, index).split(batch_size):
        x, y = windows.batch(idx)
        with autocast():
            preds.append(model(x).float())
        ys.append(y)
    pred = raw_forecast(splits, torch.cat(preds))
    y = torch.cat(ys)
    if target == "kept":
        act = model.gate.active.nonzero().view(-1)
        pred, y = pred[:, :, act], y[:, :, act]
    return forecast_metrics(pred, y, splits.null_value, horizons_for(splits.t_out))


@torch.no_grad()
def evaluate_served(served: nn.Module, splits: ForecastSplits, full: ForecastSplits, sub: ForecastSplits,
                    split: str = "test", index: Optional[Tensor] = None, batch_size: int = 128,
                    autocast: Callable[[], ContextManager] = contextlib.nullcontext) -> dict:
    """Metrics of a served model: over all ``N`` sensors (with a lift head) or the ``K`` kept ones.

    Args:
        served (nn.Module): The :class:`~dynst_pyg.models.ServedModel`.
        splits (ForecastSplits): The run's full-network splits (scaler, null value, horizons).
        full (ForecastSplits): Full-network windows on the model's device (targets with a lift head).
        sub (ForecastSplits): The kept sensors' windows.
        split (str, optional): ``"train"``, ``"val"`` or ``"test"`` (default: ``"test"``).
        index (LongTensor, optional): Windows to score (default: all).
        batch_size (int, optional): Windows per forward pass (default: ``128``).
        autocast (callable, optional): Context of the forward passes (default: none).
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be 'train', 'val' or 'test', got {split!r}")
    served.eval()
    sw, fw = getattr(sub, split), getattr(full, split)
    preds, ys = [], []
    for idx in _indices(sw, index).split(batch_size):
        xk, yk = sw.batch(idx)
        with autocast():
            preds.append(served(xk).float())
        ys.append(fw.batch(idx)[1] if served.lift is not None else yk)
    pred = raw_forecast(splits, torch.cat(preds))
    return forecast_metrics(pred, torch.cat(ys), splits.null_value, horizons_for(splits.t_out))


@torch.no_grad()
def measure_inference_speedup(dense: Callable[[], Tensor], pruned: Callable[[], Tensor], repeats: int = 7,
                              warmup: int = 2, device: Optional[torch.device] = None) -> tuple[float, float, float]:
    """Median latency (ms) of two zero-argument forward calls, interleaved; returns (dense, pruned, ratio).

    On a CUDA ``device`` every timed call is bracketed by :func:`torch.cuda.synchronize`, so the
    time is that of the kernels, not of their launch.
    """
    sync = torch.cuda.synchronize if device is not None and torch.device(device).type == "cuda" else (lambda: None)

    def timed(fn: Callable[[], Tensor]) -> float:
        sync()
        t = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - t

    for _ in range(warmup):
        dense(); pruned()
    td, tp = [], []
    for _ in range(repeats):
        td.append(timed(dense))
        tp.append(timed(pruned))
    md, mp = sorted(td)[len(td) // 2] * 1e3, sorted(tp)[len(tp) // 2] * 1e3
    return md, mp, md / mp
