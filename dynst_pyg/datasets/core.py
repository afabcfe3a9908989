"""The spatio-temporal dataset object: a series on a static sensor graph."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional, Sequence

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .windows import ForecastSplits
    from .scaler import StandardScaler


def _as_float_tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        t = value.detach()
    else:
        try:
            t = torch.as_tensor(value)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise TypeError(f"`{name}` must be a tensor or array-like, got {type(value).__name__}") from exc
    if not (t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise TypeError(f"`{name}` must hold numbers, got dtype {t.dtype}")
    return t.to(torch.float32)


@dataclass(frozen=True, eq=False)
class SpatioTemporalDataset:
    """A multivariate series observed by ``N`` sensors on a static graph.

    Args:
        series (Tensor): Readings ``[T, N, F]`` (a ``[T, N]`` input gets ``F = 1``).
        edge_index (LongTensor): Directed edges ``[2, E]`` between sensors ``0..N-1``.
        edge_weight (Tensor, optional): Edge weights ``[E]`` (default: all ones).
        pos (Tensor, optional): Sensor coordinates ``[N, 2]`` as (lon, lat) (default: :obj:`None`).
        sensor_id (list[str], optional): One id per sensor (default: ``"0" .. "N-1"``).
        interval_minutes (int, optional): Sampling interval (default: ``5``).
        start (datetime, optional): Time of the first step (default: :obj:`None`).
        null_value (float, optional): Value that marks a missing reading, excluded from
            metrics (default: :obj:`None`, nothing is missing).
        name (str, optional): Dataset name (default: ``"custom"``).
        feature_names (list[str], optional): One name per feature (default: ``"f0" ..``).
        meta (dict, optional): Free-form extras, e.g. ``meta["redundant"]`` for the
            planted sensors of the synthetic generator (default: empty).

    The object is immutable; :meth:`replace` returns a new validated dataset. Every
    input tensor is copied, so later changes to the caller's tensors do not leak in.
    """

    series: Tensor
    edge_index: Tensor
    edge_weight: Optional[Tensor] = None
    pos: Optional[Tensor] = None
    sensor_id: Optional[Sequence[str]] = None
    interval_minutes: int = 5
    start: Optional[datetime] = None
    null_value: Optional[float] = None
    name: str = "custom"
    feature_names: Optional[Sequence[str]] = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        series = _as_float_tensor(self.series, "series").clone()
        if series.dim() == 2:
            series = series.unsqueeze(-1)
        if series.dim() != 3:
            raise ValueError(f"`series` must have shape [T, N, F] (or [T, N]), got {tuple(series.shape)}")
        T, N, F = series.shape
        if N == 0 or F == 0 or T == 0:
            raise ValueError(f"`series` must be non-empty in every dimension, got {tuple(series.shape)}")
        if torch.isnan(series).any():
            bad = torch.isnan(series).nonzero()[0].tolist()
            raise ValueError(
                f"`series` contains {int(torch.isnan(series).sum())} NaN values (first at [t, n, f] = {bad}); "
                "fill them or encode missing readings with `null_value`"
            )
        if torch.isinf(series).any():
            raise ValueError("`series` contains infinite values")
        set_("series", series)

        ei = self.edge_index
        ei = torch.as_tensor(ei) if not isinstance(ei, Tensor) else ei.detach()
        if ei.dim() != 2 or ei.size(0) != 2:
            raise ValueError(f"`edge_index` must have shape [2, E], got {tuple(ei.shape)}")
        if ei.is_floating_point():
            if ei.numel() and not torch.equal(ei, ei.round()):
                raise TypeError("`edge_index` must hold integer node indices")
        ei = ei.to(torch.long).clone()
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= N):
            raise ValueError(
                f"`edge_index` refers to nodes outside 0..{N - 1} (min {int(ei.min())}, max {int(ei.max())}); "
                f"the graph's node count must agree with `series`, which has N = {N} sensors"
            )
        set_("edge_index", ei)

        if self.edge_weight is None:
            ew = torch.ones(ei.size(1))
        else:
            ew = _as_float_tensor(self.edge_weight, "edge_weight").clone().reshape(-1)
            if ew.numel() != ei.size(1):
                raise ValueError(f"`edge_weight` must have E = {ei.size(1)} entries, got {ew.numel()}")
            if not torch.isfinite(ew).all():
                raise ValueError("`edge_weight` contains NaN or infinite values")
        set_("edge_weight", ew)

        if self.pos is not None:
            pos = _as_float_tensor(self.pos, "pos").clone()
            if pos.shape != (N, 2):
                raise ValueError(f"`pos` must have shape [N, 2] = [{N}, 2] (lon, lat), got {tuple(pos.shape)}")
            if not torch.isfinite(pos).all():
                raise ValueError("`pos` contains NaN or infinite values")
            set_("pos", pos)

        if self.sensor_id is None:
            ids = [str(i) for i in range(N)]
        else:
            ids = [str(s) for s in (self.sensor_id.tolist() if isinstance(self.sensor_id, Tensor) else self.sensor_id)]
            if len(ids) != N:
                raise ValueError(f"`sensor_id` must have one id per sensor (N = {N}), got {len(ids)}")
            if len(set(ids)) != N:
                seen, dup = set(), None
                for s in ids:
                    if s in seen:
                        dup = s
                        break
                    seen.add(s)
                raise ValueError(f"`sensor_id` must be unique; {dup!r} appears more than once")
        set_("sensor_id", ids)

        if self.feature_names is None:
            fn = [f"f{i}" for i in range(F)]
        else:
            fn = [str(s) for s in self.feature_names]
            if len(fn) != F:
                raise ValueError(f"`feature_names` must have F = {F} entries, got {len(fn)}")
        set_("feature_names", fn)

        if not isinstance(self.interval_minutes, (int,)) or self.interval_minutes <= 0:
            raise ValueError(f"`interval_minutes` must be a positive integer, got {self.interval_minutes!r}")
        if self.null_value is not None:
            nv = float(self.null_value)
            if math.isnan(nv):
                raise ValueError("`null_value` must be a number, not NaN")
            set_("null_value", nv)
        set_("meta", dict(self.meta or {}))

    # ------------------------------------------------------------------ basics
    @property
    def num_steps(self) -> int:
        """Number of time steps ``T``."""
        return self.series.size(0)

    @property
    def num_nodes(self) -> int:
        """Number of sensors ``N``."""
        return self.series.size(1)

    @property
    def num_features(self) -> int:
        """Number of features ``F`` per sensor and step."""
        return self.series.size(2)

    @property
    def num_edges(self) -> int:
        """Number of directed edges ``E``."""
        return self.edge_index.size(1)

    def replace(self, **changes: Any) -> "SpatioTemporalDataset":
        """Returns a new dataset with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        return (
            f"SpatioTemporalDataset(name={self.name!r}, steps={self.num_steps}, sensors={self.num_nodes}, "
            f"features={self.num_features}, edges={self.num_edges}, interval={self.interval_minutes}min)"
        )

    def null_mask(self) -> Tensor:
        """Boolean ``[T, N, F]`` tensor, :obj:`True` where a reading is present."""
        if self.null_value is None:
            return torch.ones_like(self.series, dtype=torch.bool)
        return self.series != self.null_value

    # ------------------------------------------------------------------ windows
    def prepare(
        self,
        t_in: int = 12,
        t_out: int = 12,
        stride: int = 1,
        ratios: Sequence[float] = (0.7, 0.1, 0.2),
        time_features: bool = False,
        target_features: Sequence[int] = (0,),
        scaler: Optional["StandardScaler"] = None,
        per_node_scaler: bool = False,
    ) -> "ForecastSplits":
        """Builds normalised sliding windows and chronological train/val/test splits.

        See :func:`dynst_pyg.datasets.windows.prepare` for the arguments.
        """
        from .windows import prepare

        return prepare(
            self,
            t_in=t_in,
            t_out=t_out,
            stride=stride,
            ratios=ratios,
            time_features=time_features,
            target_features=target_features,
            scaler=scaler,
            per_node_scaler=per_node_scaler,
        )

    # ------------------------------------------------------------------ interop
    def to_networkx(self):
        """The sensor graph as a :class:`networkx.DiGraph` with ``weight`` on edges and ``pos``/``sensor_id`` on nodes."""
        import networkx as nx

        G = nx.DiGraph()
        for i in range(self.num_nodes):
            attrs = {"sensor_id": self.sensor_id[i]}
            if self.pos is not None:
                attrs["pos"] = tuple(self.pos[i].tolist())
            G.add_node(i, **attrs)
        for (u, v), w in zip(self.edge_index.t().tolist(), self.edge_weight.tolist()):
            G.add_edge(u, v, weight=w)
        return G
