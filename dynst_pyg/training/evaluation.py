"""Evaluation loops and latency timing: metrics of a full-network or served model on a split."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Optional

import torch
from torch import Tensor, nn

from .._checks import check_positive_ints
from ..data.windows import ForecastSplits, WindowDataset
from ..metrics import forecast_metrics, horizons_for, masked_mae, valid_mask

__all__ = ["SPLITS", "raw_forecast", "sample_loss", "node_loss", "evaluate_full", "evaluate_served",
           "SpeedupMeasurement", "measure_speedup", "measure_inference_speedup"]

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


@dataclass(frozen=True)
class SpeedupMeasurement:
    """Interleaved latency of a dense and a pruned forward call.

    Attributes:
        dense_ms (float): Median latency of the dense call (ms).
        pruned_ms (float): Median latency of the pruned call (ms).
        ratio (float): Median of the per-pair ratios dense / pruned.
        ratio_q1 (float): Their first quartile.
        ratio_q3 (float): Their third quartile.
        repeats (int): Timed pairs.
        threads (int): ``torch.get_num_threads()`` during the measurement.
        tight (bool): Whether the interquartile range fell within ``rel_iqr`` of the median.
    """

    dense_ms: float
    pruned_ms: float
    ratio: float
    ratio_q1: float
    ratio_q3: float
    repeats: int
    threads: int
    tight: bool

    def line(self) -> str:
        """One sentence for a report: the ratio with its spread, the thread count, and a word on noise."""
        text = (f"dense {self.dense_ms:.1f} ms, pruned {self.pruned_ms:.1f} ms, speedup **{self.ratio:.2f}x** "
                f"(interquartile range {self.ratio_q1:.2f}-{self.ratio_q3:.2f}x over {self.repeats} interleaved "
                f"pairs, {self.threads} thread{'s' if self.threads != 1 else ''})")
        if not self.tight:
            text += "; the measurement was noisy (the machine is busy): repeat it before relying on it"
        return text


def _quantile(values: list, q: float) -> float:
    return float(torch.tensor(values, dtype=torch.float64).quantile(q))


@torch.no_grad()
def measure_speedup(dense: Callable[[], Tensor], pruned: Callable[[], Tensor], min_repeats: int = 7,
                    max_repeats: int = 63, rel_iqr: float = 0.15, warmup: int = 2,
                    device: Optional[torch.device] = None) -> SpeedupMeasurement:
    """Times ``dense`` and ``pruned`` in interleaved pairs until the ratio's spread is tight.

    Pairs are taken in rounds of ``min_repeats`` until the interquartile range of the per-pair
    ratios is at most ``rel_iqr`` times their median, or ``max_repeats`` pairs were timed. On a
    CUDA ``device`` every timed call is bracketed by :func:`torch.cuda.synchronize`.

    Args:
        dense (callable): Zero-argument dense forward call.
        pruned (callable): Zero-argument pruned forward call.
        min_repeats (int, optional): Pairs per round (default: ``7``).
        max_repeats (int, optional): Most pairs (default: ``63``).
        rel_iqr (float, optional): Target spread relative to the median (default: ``0.15``).
        warmup (int, optional): Untimed calls of each first (default: ``2``).
        device (torch.device, optional): Where the calls run (default: CPU).
    """
    check_positive_ints(min_repeats=min_repeats, max_repeats=max_repeats)
    sync = torch.cuda.synchronize if device is not None and torch.device(device).type == "cuda" else (lambda: None)

    def timed(fn: Callable[[], Tensor]) -> float:
        sync()
        t = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - t

    for _ in range(warmup):
        dense(); pruned()
    td: list = []
    tp: list = []
    while True:
        for _ in range(min_repeats):
            td.append(timed(dense))
            tp.append(timed(pruned))
        ratios = [d / max(p, 1e-12) for d, p in zip(td, tp)]
        med, q1, q3 = _quantile(ratios, 0.5), _quantile(ratios, 0.25), _quantile(ratios, 0.75)
        tight = (q3 - q1) <= rel_iqr * med
        if tight or len(td) >= max_repeats:
            break
    return SpeedupMeasurement(_quantile(td, 0.5) * 1e3, _quantile(tp, 0.5) * 1e3, med, q1, q3, len(td),
                              torch.get_num_threads(), tight)


def measure_inference_speedup(dense: Callable[[], Tensor], pruned: Callable[[], Tensor], repeats: int = 7,
                              warmup: int = 2, device: Optional[torch.device] = None) -> tuple[float, float, float]:
    """``(dense_ms, pruned_ms, ratio)`` of :func:`measure_speedup` with exactly ``repeats`` pairs."""
    m = measure_speedup(dense, pruned, min_repeats=repeats, max_repeats=repeats, warmup=warmup, device=device)
    return m.dense_ms, m.pruned_ms, m.ratio
