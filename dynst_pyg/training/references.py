"""Two honest reference forecasters every table is compared against.

* :func:`persistence_forecast`: the last observed value, repeated over the horizon.
* :class:`TimeOfDayAverage`: the training-split mean at the same time of day, per sensor.

Both ignore missing readings: persistence reads the filled inputs, whose last value is
the last *observed* reading (carried forward over a gap), and the average is taken over
observed training cells only. Missing targets (NaN) are left out of the metrics.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ..data.windows import ForecastSplits, WindowDataset
from ..metrics import HORIZONS, forecast_metrics

__all__ = ["persistence_forecast", "TimeOfDayAverage", "reference_metrics", "REFERENCE_NAMES", "shortfalls"]

#: How reports name the reference forecasters of :func:`reference_metrics`.
REFERENCE_NAMES = {"persistence": "persistence", "time_of_day": "time-of-day average"}


def persistence_forecast(windows: WindowDataset, splits: ForecastSplits, index: Optional[Tensor] = None) -> Tensor:
    """``[B, T_out, N, F_out]`` forecast equal to each window's last input value (raw scale).

    Over a gap the input holds the last observed reading carried forward, so this is the
    last reading seen up to the forecast time (the training mean before a sensor's first one).
    """
    idx = torch.arange(len(windows)) if index is None else torch.as_tensor(index, dtype=torch.long)
    x, _ = windows.batch(idx)
    tf = list(splits.target_features)
    last = splits.scaler.inverse_transform(x[:, -1:, :, tf], features=tf)
    return last.expand(-1, windows.t_out, -1, -1).contiguous()


class TimeOfDayAverage:
    """Per-sensor mean of the training split at each time-of-day slot (missing readings excluded).

    A slot without any observed training reading of a sensor falls back to that sensor's
    overall training mean.

    Args:
        splits (ForecastSplits): Where the training steps and interval come from.
    """

    def __init__(self, splits: ForecastSplits) -> None:
        ds = splits.dataset
        self.splits = splits
        self.slots = max(1, int(round(1440 / ds.interval_minutes)))
        offset = 0
        if ds.start is not None:
            offset = int(round((ds.start.hour * 60 + ds.start.minute) / ds.interval_minutes))
        self.offset = offset
        n_train = splits.train_steps
        tf = list(splits.target_features)
        y = ds.series[:n_train][..., tf]
        valid = ds.null_mask()[:n_train][..., tf]
        slot = (torch.arange(n_train) + offset) % self.slots
        sums = torch.zeros(self.slots, *y.shape[1:]).index_add_(0, slot, torch.where(valid, y, torch.zeros_like(y)))
        cnt = torch.zeros(self.slots, *y.shape[1:]).index_add_(0, slot, valid.float())
        overall = torch.where(valid, y, torch.zeros_like(y)).sum(0) / valid.float().sum(0).clamp_min(1)
        self.table = torch.where(cnt > 0, sums / cnt.clamp_min(1), overall.expand_as(sums))

    def forecast(self, windows: WindowDataset, index: Optional[Tensor] = None) -> Tensor:
        """``[B, T_out, N, F_out]`` forecast for the windows' target steps."""
        idx = torch.arange(len(windows)) if index is None else torch.as_tensor(index, dtype=torch.long)
        steps = windows.starts[idx][:, None] + windows.t_in + torch.arange(windows.t_out)
        return self.table[(steps + self.offset) % self.slots]


def reference_metrics(splits: ForecastSplits, split: str = "test", horizons: Sequence[int] = HORIZONS,
                      nodes: Optional[Tensor] = None) -> dict[str, dict[str, float]]:
    """Metrics of persistence and the time-of-day average on one split: ``{"persistence": {...}, "time_of_day": {...}}``.

    ``nodes`` (optional LongTensor) restricts the scoring to those sensors, e.g. the kept ones.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"`split` must be 'train', 'val' or 'test', got {split!r}")
    w = getattr(splits, split)
    _, y = w.tensors()
    nv = splits.null_value
    preds = {"persistence": persistence_forecast(w, splits), "time_of_day": TimeOfDayAverage(splits).forecast(w)}
    if nodes is not None:
        y = y[:, :, nodes]
        preds = {k: p[:, :, nodes] for k, p in preds.items()}
    return {k: forecast_metrics(p, y, nv, horizons) for k, p in preds.items()}


def shortfalls(metrics: dict, references: dict[str, dict[str, float]], horizons: Sequence[int]) -> list[str]:
    """Where a model fails to beat a reference forecaster, one phrase per reference:
    ``"the time-of-day average at horizon 12 (MAE 4.41 vs 4.32)"`` (horizons whose model MAE is not
    below the reference's)."""
    out = []
    for key, ref in references.items():
        hs = [h for h in horizons if f"mae_h{h}" in metrics and f"mae_h{h}" in ref
              and not metrics[f"mae_h{h}"] < ref[f"mae_h{h}"]]
        if hs:
            vals = ", ".join(f"{metrics[f'mae_h{h}']:.3f} vs {ref[f'mae_h{h}']:.3f}" for h in hs)
            out.append(f"{REFERENCE_NAMES.get(key, key)} at horizon{'s' if len(hs) > 1 else ''} "
                       f"{', '.join(map(str, hs))} (MAE {vals})")
    return out
