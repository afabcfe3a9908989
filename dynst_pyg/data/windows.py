"""Sliding windows ``T_in -> T_out`` and chronological splits."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_positive_ints
from .dataset import SpatioTemporalDataset
from .missing import check_observed, forward_fill
from .scaler import StandardScaler

__all__ = ["SPLIT_RATIOS", "num_windows", "WindowDataset", "ForecastSplits", "time_feature_channels", "prepare"]

#: Standard split ratios (train, val, test) per dataset family.
SPLIT_RATIOS = {"metr-la": (0.7, 0.1, 0.2), "pems-bay": (0.7, 0.1, 0.2), "los-loop": (0.7, 0.1, 0.2),
                "pems04": (0.6, 0.2, 0.2), "pems08": (0.6, 0.2, 0.2), "aarhus": (0.7, 0.1, 0.2)}


def num_windows(num_steps: int, t_in: int, t_out: int, stride: int = 1) -> int:
    """Number of windows of ``t_in + t_out`` steps that fit in ``num_steps`` with ``stride``."""
    span = t_in + t_out
    return 0 if num_steps < span else (num_steps - span) // stride + 1


class WindowDataset(Dataset):
    """Windows over one split, served batched as ``x [B, T_in, N, F_in]``, ``y [B, T_out, N, F_out]``.

    ``x`` holds the normalised inputs (missing readings filled, see :func:`prepare`; plus
    indicator and time channels if asked for), ``y`` the raw targets on the original scale
    with NaN where no reading exists (metrics and losses skip those entries). Items are
    ``(x, y)`` with the batch dimension dropped; :meth:`batch` gathers many windows at once
    (much faster than a collate loop).

    Args:
        inputs (Tensor): Normalised input series ``[T, N, F_in]`` (shared by all splits).
        targets (Tensor): Raw target series ``[T, N, F_out]``.
        starts (LongTensor): First step of each window of this split.
        t_in (int): Input length.
        t_out (int): Horizon.
        edge_index (LongTensor): Graph for :meth:`to_data`.
        edge_weight (Tensor): Edge weights for :meth:`to_data`.
        pos (Tensor, optional): ``[N, 2]`` coordinates.
        sensor_id (list[str], optional): Sensor ids.
        transform (callable, optional): Applied to the :class:`~torch_geometric.data.Data`
            that :meth:`to_data` returns, like a PyG dataset's ``transform`` (e.g. a
            :class:`~dynst_pyg.DynSTMask`) (default: :obj:`None`).
    """

    def __init__(self, inputs: Tensor, targets: Tensor, starts: Tensor, t_in: int, t_out: int,
                 edge_index: Tensor, edge_weight: Tensor, pos: Optional[Tensor] = None,
                 sensor_id: Optional[Sequence[str]] = None, transform: Optional[Callable] = None) -> None:
        if transform is not None and not callable(transform):
            raise TypeError(f"`transform` must be callable (e.g. a BaseTransform), got {type(transform).__name__}")
        self.inputs = inputs
        self.targets = targets
        self.starts = starts.to(torch.long)
        self.t_in = int(t_in)
        self.t_out = int(t_out)
        self.edge_index = edge_index
        self.edge_weight = edge_weight
        self.pos = pos
        self.sensor_id = list(sensor_id) if sensor_id is not None else None
        self.transform = transform
        self._ar_in = torch.arange(self.t_in, device=self.starts.device)
        self._ar_out = torch.arange(self.t_in, self.t_in + self.t_out, device=self.starts.device)

    def __len__(self) -> int:
        return self.starts.numel()

    @property
    def num_nodes(self) -> int:
        return self.inputs.size(1)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"window index {i} out of range for {n} windows")
        s = int(self.starts[i])
        return self.inputs[s:s + self.t_in], self.targets[s + self.t_in:s + self.t_in + self.t_out]

    def batch(self, index: Tensor | Sequence[int]) -> tuple[Tensor, Tensor]:
        """Returns ``(x [B, T_in, N, F_in], y [B, T_out, N, F_out])`` for window indices ``index``."""
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1).to(self.starts.device)
        if idx.numel() and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise IndexError(f"`index` must lie in [0, {len(self)}), got min {int(idx.min())} max {int(idx.max())}")
        s = self.starts[idx].unsqueeze(1)
        return self.inputs[s + self._ar_in], self.targets[s + self._ar_out]

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All windows of the split at once (memory: ``len * (T_in + T_out) * N * F``)."""
        return self.batch(torch.arange(len(self)))

    def to_data(self, i: int):
        """Window ``i`` as a node-first PyG :class:`~torch_geometric.data.Data` (``x [N, T_in, F]``).

        ``y [N, T_out, F_out]`` keeps NaN at missing readings. The ``transform`` given at
        construction, if any, is applied to the result.
        """
        from torch_geometric.data import Data

        x, y = self[i]
        data = Data(x=x.permute(1, 0, 2).contiguous(), y=y.permute(1, 0, 2).contiguous(),
                    edge_index=self.edge_index, edge_weight=self.edge_weight, num_nodes=self.num_nodes)
        if self.pos is not None:
            data.pos = self.pos
        if self.sensor_id is not None:
            data.sensor_id = list(self.sensor_id)
        return data if self.transform is None else self.transform(data)

    def to(self, device: torch.device | str) -> "WindowDataset":
        """The same windows with the series on ``device`` (batches are then sliced there).

        Splits that shared a series keep sharing it when moved with :meth:`ForecastSplits.to`.
        """
        return self._moved(self.inputs.to(device), self.targets.to(device), device)

    def _moved(self, inputs: Tensor, targets: Tensor, device: torch.device | str) -> "WindowDataset":
        return WindowDataset(inputs, targets, self.starts.to(device), self.t_in, self.t_out,
                             self.edge_index.to(device), self.edge_weight.to(device), self.pos, self.sensor_id,
                             transform=self.transform)

    @property
    def device(self) -> torch.device:
        return self.inputs.device

    def __repr__(self) -> str:
        return f"WindowDataset(windows={len(self)}, nodes={self.num_nodes}, t_in={self.t_in}, t_out={self.t_out})"


@dataclass
class ForecastSplits:
    """Train/val/test windows of one dataset plus the scaler fitted on the training part.

    Input channels (``in_features``) are, in order: the ``F`` normalised features, then
    ``F`` observed indicators (1.0 = reading, 0.0 = filled) when ``missing_indicator``,
    then time of day and day of week when ``time_features``.
    """

    dataset: SpatioTemporalDataset
    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    scaler: StandardScaler
    t_in: int
    t_out: int
    target_features: tuple
    time_features: bool
    stride: int = 1
    ratios: tuple = (0.7, 0.1, 0.2)
    per_node_scaler: bool = False
    missing_indicator: bool = False

    def reprepare(self, dataset: SpatioTemporalDataset, scaler: Optional[StandardScaler] = None) -> "ForecastSplits":
        """The same windowing and split of another dataset over the same steps (e.g. a sensor subset).

        ``scaler`` defaults to this split's scaler, so normalisation stays the one fitted
        on the full training split (restricted to the kept sensors when it is per-sensor).
        """
        if dataset.num_steps != self.dataset.num_steps:
            raise ValueError(f"`dataset` has {dataset.num_steps} steps, expected {self.dataset.num_steps}")
        return prepare(dataset, self.t_in, self.t_out, self.stride, self.ratios, self.time_features,
                       self.target_features, self.scaler if scaler is None else scaler, self.per_node_scaler,
                       self.missing_indicator)

    def to(self, device: torch.device | str) -> "ForecastSplits":
        """The same splits with their windows on ``device``: one copy of the series there, shared by
        train, val and test (the dataset itself stays where it is)."""
        tr = self.train
        inputs, targets = tr.inputs.to(device), tr.targets.to(device)

        def move(w: WindowDataset) -> WindowDataset:
            same = w.inputs is tr.inputs and w.targets is tr.targets
            return w._moved(inputs, targets, device) if same else w.to(device)

        return dataclasses.replace(self, train=move(tr), val=move(self.val), test=move(self.test))

    @property
    def edge_index(self) -> Tensor:
        return self.dataset.edge_index

    @property
    def edge_weight(self) -> Tensor:
        return self.dataset.edge_weight

    @property
    def num_nodes(self) -> int:
        return self.dataset.num_nodes

    @property
    def null_value(self) -> Optional[float]:
        """The dataset's ``null_value`` (missing targets are NaN in any case; metrics skip both)."""
        return self.dataset.null_value

    @property
    def in_features(self) -> int:
        return self.train.inputs.size(-1)

    @property
    def out_features(self) -> int:
        return len(self.target_features)

    @property
    def train_steps(self) -> int:
        """Number of leading steps that belong to the training split (scaler data)."""
        return int(self.train.starts[-1]) + self.t_in + self.t_out

    def train_series(self) -> tuple[Tensor, Tensor]:
        """Normalised training steps of the target features and where they hold a reading.

        Returns:
            ``(series, valid)``: ``series [T_train, N, F_out]`` is the training part of the
            target features scaled with :attr:`scaler` (NaN at missing readings, never
            filled), ``valid [T_train, N, F_out]`` the bool observation mask. Val/test
            steps are never included.
        """
        steps, tf = self.train_steps, list(self.target_features)
        raw = self.dataset.series[:steps][..., tf]
        return self.scaler.transform(raw, features=tf), self.dataset.observed[:steps][..., tf].clone()

    def __repr__(self) -> str:
        return (f"ForecastSplits({self.dataset.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, nodes={self.num_nodes}, t_in={self.t_in}, t_out={self.t_out})")


def time_feature_channels(num_steps: int, interval_minutes: int, start=None) -> Tensor:
    """``[T, 2]``: time of day in [0, 1) and day of week / 7 (start taken as Monday 00:00 if unknown)."""
    offset_min = 0.0
    dow0 = 0
    if start is not None:
        offset_min = start.hour * 60 + start.minute + start.second / 60
        dow0 = start.weekday()
    minutes = offset_min + torch.arange(num_steps, dtype=torch.float64) * interval_minutes
    tod = (minutes % 1440) / 1440
    dow = ((minutes // 1440 + dow0) % 7) / 7
    return torch.stack([tod, dow], dim=1).to(torch.float32)


def prepare(dataset: SpatioTemporalDataset, t_in: int = 12, t_out: int = 12, stride: int = 1,
            ratios: Sequence[float] = (0.7, 0.1, 0.2), time_features: bool = False,
            target_features: Sequence[int] = (0,), scaler: Optional[StandardScaler] = None,
            per_node_scaler: bool = False, missing_indicator: bool = False) -> ForecastSplits:
    """Chronological train/val/test windows with a scaler fitted on the training part only.

    Windows are counted over the whole series, split by ``ratios`` in time order, and the
    first ``ceil(t_out / stride) - 1`` windows of val and of test are dropped so that no
    target step belongs to two splits.

    Missing readings (``dataset.observed`` False):

    * the scaler is fitted on the observed training cells only;
    * targets ``y`` keep NaN there, so metrics, losses and the reference forecasters
      leave them out;
    * inputs ``x`` are filled: the last observed reading of the same sensor and feature
      is carried forward (:func:`~dynst_pyg.data.missing.forward_fill`, past only),
      and cells before a sensor's first reading take the training mean (normalised 0);
      ``missing_indicator=True`` appends one channel per feature, 1.0 where the reading
      is real and 0.0 where it was filled;
    * a sensor with a feature that has no reading at all in the training steps is
      refused with a ValueError naming it (its inputs could only be made up); drop it
      first with :meth:`~dynst_pyg.data.SpatioTemporalDataset.select_nodes`.

    Args:
        dataset (SpatioTemporalDataset): The series and graph.
        t_in (int, optional): Input steps (default: ``12``).
        t_out (int, optional): Forecast horizon (default: ``12``).
        stride (int, optional): Steps between window starts (default: ``1``).
        ratios (tuple, optional): Train, val, test fractions summing to 1 (default: ``(0.7, 0.1, 0.2)``).
        time_features (bool, optional): Append time of day and day of week (default: :obj:`False`).
        target_features (tuple, optional): Features forecast (default: ``(0,)``).
        scaler (StandardScaler, optional): A scaler fitted elsewhere (e.g. on the full
            network before sensors were removed); fitted on the training steps if :obj:`None`.
        per_node_scaler (bool, optional): Fit statistics per sensor (default: :obj:`False`).
        missing_indicator (bool, optional): Append the observed/missing indicator channels
            (default: :obj:`False`).
    """
    check_positive_ints(t_in=t_in, t_out=t_out, stride=stride)
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6 or ratios[0] <= 0:
        raise ValueError(f"`ratios` must be three non-negative fractions (train > 0) summing to 1, got {ratios}")
    F = dataset.num_features
    tf = tuple(int(f) for f in target_features)
    if not tf or any(f < 0 or f >= F for f in tf):
        raise ValueError(f"`target_features` must name features in 0..{F - 1}, got {tf}")
    n = num_windows(dataset.num_steps, t_in, t_out, stride)
    gap = math.ceil(t_out / stride) - 1
    n_train = int(round(ratios[0] * n))
    n_test = int(round(ratios[2] * n))
    n_val = n - n_train - n_test
    if n < 3 or n_train < 1 or (ratios[1] > 0 and n_val - gap < 1) or (ratios[2] > 0 and n_test - gap < 1):
        raise ValueError(
            f"`dataset` has T = {dataset.num_steps} steps, too short for {t_in} -> {t_out} windows split {ratios} "
            f"(only {n} windows; each non-empty split needs more than {gap} windows)"
        )
    w = torch.arange(n)
    train_w = w[:n_train]
    val_w = w[n_train + gap:n_train + n_val] if ratios[1] > 0 else w[:0]
    test_w = w[n_train + n_val + gap:] if ratios[2] > 0 else w[:0]

    series, observed = dataset.series, dataset.observed
    train_end = int(train_w[-1]) * stride + t_in + t_out
    check_observed(observed[:train_end], dataset.sensor_id, dataset.feature_names,
                   f"the training split (steps 0..{train_end - 1})")
    if scaler is None:
        scaler = StandardScaler.fit(series[:train_end], per_node=per_node_scaler, observed=observed[:train_end])
    else:
        if scaler.mean.size(-1) != F:
            raise ValueError(f"`scaler` has {scaler.mean.size(-1)} features, the dataset {F}")
        if scaler.per_node and scaler.mean.size(0) != dataset.num_nodes:
            raise ValueError(f"`scaler` is per-sensor for {scaler.mean.size(0)} sensors, the dataset has {dataset.num_nodes}")
    inputs = scaler.transform(forward_fill(series, observed)).nan_to_num_(0.0)
    if missing_indicator:
        inputs = torch.cat([inputs, observed.to(inputs.dtype)], dim=-1)
    if time_features:
        tfc = time_feature_channels(dataset.num_steps, dataset.interval_minutes, dataset.start)
        inputs = torch.cat([inputs, tfc[:, None, :].expand(-1, dataset.num_nodes, -1)], dim=-1)
    targets = series[..., list(tf)]

    def make(ws: Tensor) -> WindowDataset:
        return WindowDataset(inputs, targets, ws * stride, t_in, t_out, dataset.edge_index,
                             dataset.edge_weight, dataset.pos, dataset.sensor_id)

    return ForecastSplits(dataset, make(train_w), make(val_w), make(test_w), scaler, t_in, t_out, tf, time_features,
                          stride, ratios, per_node_scaler, bool(missing_indicator))
