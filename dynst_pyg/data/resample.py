"""Coarser time steps: block averages that respect the observation mask."""

from __future__ import annotations

import torch

from .._checks import check_positive_int
from .dataset import SpatioTemporalDataset

__all__ = ["resample_mean"]


def resample_mean(dataset: SpatioTemporalDataset, factor: int) -> SpatioTemporalDataset:
    """The dataset on a ``factor`` times coarser grid: each new step is the mean of a block of steps.

    Block ``b`` covers steps ``b * factor .. b * factor + factor - 1``. Per sensor and
    feature, its value is the mean of the *observed* cells of the block only (a missing
    reading is left out, never counted as 0 or filled); a block without any observed cell
    is missing (NaN, ``observed`` False). Trailing steps that do not fill a whole block
    are dropped. The interval becomes ``factor * interval_minutes``; the graph, positions,
    ids, start time, name and feature names are kept, and ``meta["resample_factor"]``
    records ``factor`` (multiplied when resampling twice). Missing cells of the result are
    NaN, so ``null_value`` is cleared (a mean may legitimately equal it). The input is not
    modified.

    Args:
        dataset (SpatioTemporalDataset): The dataset on its original grid.
        factor (int): Steps per block, ``1 <= factor <= num_steps`` (``1`` returns an
            equal copy).

    Example:
        >>> ds15 = resample_mean(load_aarhus(), 3)   # 5-minute -> 15-minute averages
    """
    check_positive_int(factor, "factor")
    T = dataset.num_steps
    if factor > T:
        raise ValueError(f"`factor` ({factor}) is larger than the dataset's {T} steps")
    blocks = T // factor
    obs = dataset.observed[:blocks * factor]
    vals = torch.where(obs, dataset.series[:blocks * factor], torch.zeros((), dtype=dataset.series.dtype))
    shape = (blocks, factor) + tuple(vals.shape[1:])
    sums = vals.reshape(shape).sum(dim=1)
    counts = obs.reshape(shape).sum(dim=1)
    mean = sums / counts.clamp_min(1).to(sums.dtype)
    meta = dict(dataset.meta)
    meta["resample_factor"] = int(meta.get("resample_factor", 1)) * factor
    return dataset.replace(series=mean, observed=counts > 0, null_value=None,
                           interval_minutes=dataset.interval_minutes * factor, meta=meta)
