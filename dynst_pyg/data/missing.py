"""Missing readings: the input fill rule and the check for sensors without training readings."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ["forward_fill", "check_observed"]


def forward_fill(series: Tensor, observed: Optional[Tensor] = None) -> Tensor:
    """Last observation carried forward along time (dim 0), per sensor and feature.

    Every unobserved cell takes the most recent earlier observed reading of the same
    sensor and feature; cells before a sensor's first reading stay NaN (the caller
    decides what they become; :func:`~dynst_pyg.data.windows.prepare` uses the
    training mean). Only the past is used, so filling never leaks future readings.

    Args:
        series (Tensor): ``[T, ...]`` readings, NaN where missing.
        observed (BoolTensor, optional): Same shape, :obj:`True` where a reading exists
            (default: :obj:`None`: the non-NaN cells). NaN cells are never observed.

    Returns:
        A new tensor like ``series``; the input is not modified.
    """
    if series.dim() < 1 or series.size(0) == 0:
        raise ValueError(f"`series` must have a non-empty time dimension, got shape {tuple(series.shape)}")
    obs = ~torch.isnan(series)
    if observed is not None:
        if observed.shape != series.shape or observed.dtype != torch.bool:
            raise ValueError(f"`observed` must be a bool tensor of shape {tuple(series.shape)}, "
                             f"got {observed.dtype} {tuple(observed.shape)}")
        obs &= observed
    T = series.size(0)
    steps = torch.arange(T, device=series.device).view(T, *([1] * (series.dim() - 1)))
    last = torch.where(obs, steps, torch.full_like(steps, -1)).cummax(dim=0).values
    out = series.gather(0, last.clamp_min(0))
    return out.masked_fill(last < 0, float("nan"))


def check_observed(observed: Tensor, sensor_id: Sequence[str], feature_names: Sequence[str],
                   where: str) -> None:
    """Raises ValueError naming every sensor that has a feature with no reading in ``observed [T, N, F]``.

    Args:
        observed (BoolTensor): ``[T, N, F]`` observation mask of the steps checked.
        sensor_id (list[str]): The ``N`` sensor ids, for the message.
        feature_names (list[str]): The ``F`` feature names, for the message.
        where (str): What the steps are, for the message (e.g. ``"the training split"``).
    """
    none = ~observed.any(dim=0)  # [N, F]
    if not bool(none.any()):
        return
    bad = none.any(dim=1).nonzero().view(-1).tolist()
    parts = []
    for n in bad[:10]:
        feats = [feature_names[f] for f in none[n].nonzero().view(-1).tolist()]
        parts.append(f"{sensor_id[n]!r} ({', '.join(feats)})")
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    raise ValueError(
        f"{len(bad)} sensor(s) have no reading in {where}: {', '.join(parts)}{more}. Their inputs could only be "
        "made up and their scaler statistics are undefined; remove them first: `--drop-empty-sensors` on the "
        "command line (a --data folder), or in Python "
        f"`dataset.select_nodes(dataset.observed[:{observed.size(0)}].any(0).all(-1))`"
    )
