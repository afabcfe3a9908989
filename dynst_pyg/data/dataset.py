"""The spatio-temporal dataset object: a series on a static sensor graph."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from .._checks import check_positive_int

__all__ = ["SpatioTemporalDataset"]


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
        null_value (float, optional): Value that marks a missing reading in the input
            ``series`` (default: :obj:`None`: only NaN marks one).
        name (str, optional): Dataset name (default: ``"custom"``).
        feature_names (list[str], optional): One name per feature (default: ``"f0" ..``).
        meta (dict, optional): Free-form extras, e.g. ``meta["redundant"]`` for the
            planted sensors of the synthetic generator (default: empty).
        observed (BoolTensor, optional): ``[T, N, F]`` (or ``[T, N]``), :obj:`True` where a
            reading exists (default: :obj:`None`: every finite reading that is not
            ``null_value``).

    **Missing readings.** A cell ``[t, n, f]`` is *observed* when ``observed`` (if given)
    is :obj:`True` there, the input value is not NaN and it is not ``null_value``. After
    construction the stored ``series`` holds NaN at exactly the unobserved cells and
    :attr:`observed` (also returned by :meth:`null_mask`) is the full ``[T, N, F]`` mask,
    so ``observed == ~series.isnan()`` always. NaN makes a consumer that forgets the mask
    fail loudly instead of learning from a made-up value; :func:`~dynst_pyg.data.prepare` fills the model
    *inputs* (see :func:`~dynst_pyg.data.windows.prepare`) and keeps NaN in the
    targets, which every metric and loss of this package skips.

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
    observed: Optional[Tensor] = None

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
        if torch.isinf(series).any():
            bad = torch.isinf(series).nonzero()[0].tolist()
            raise ValueError(f"`series` contains infinite values (first at [t, n, f] = {bad}); "
                             "mark a missing reading with NaN, `null_value` or `observed`")
        if self.null_value is not None:
            nv = float(self.null_value)
            if math.isnan(nv):
                raise ValueError("`null_value` must be a number, not NaN (NaN always marks a missing reading)")
            set_("null_value", nv)
        obs = ~torch.isnan(series)
        if self.null_value is not None:
            obs &= series != self.null_value
        if self.observed is not None:
            given = self.observed.detach() if isinstance(self.observed, Tensor) else torch.as_tensor(self.observed)
            if given.dtype != torch.bool:
                raise TypeError(f"`observed` must be a bool tensor (True = reading present), got dtype {given.dtype}")
            if given.dim() == 2:
                given = given.unsqueeze(-1)
            if given.shape != series.shape:
                raise ValueError(f"`observed` must have the shape of `series` {tuple(series.shape)}, "
                                 f"got {tuple(given.shape)}")
            obs &= given.to(obs.device)
        set_("series", series.masked_fill_(~obs, float("nan")))
        set_("observed", obs)

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

        check_positive_int(self.interval_minutes, "interval_minutes")
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

    @property
    def observed_share(self) -> float:
        """Fraction of ``[t, n, f]`` cells that hold a reading."""
        return float(self.observed.float().mean())

    def replace(self, **changes: Any) -> "SpatioTemporalDataset":
        """Returns a new dataset with some fields changed (validated like the constructor).

        A new ``series`` brings its own missing readings (its NaN and ``null_value``
        cells) unless ``observed`` is passed as well; the old mask is not reused.
        """
        if "series" in changes and "observed" not in changes:
            changes["observed"] = None
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        return (
            f"SpatioTemporalDataset(name={self.name!r}, steps={self.num_steps}, sensors={self.num_nodes}, "
            f"features={self.num_features}, edges={self.num_edges}, interval={self.interval_minutes}min)"
        )

    def null_mask(self) -> Tensor:
        """The observation mask :attr:`observed`: bool ``[T, N, F]``, :obj:`True` where a reading is present.

        Unobserved cells hold NaN in :attr:`series`.
        """
        return self.observed

    def select_nodes(self, index: Tensor | Sequence[int], edge_index: Optional[Tensor] = None,
                     edge_weight: Optional[Tensor] = None) -> "SpatioTemporalDataset":
        """The dataset restricted to the sensors ``index``, every node-indexed field sliced alike.

        ``series``, the observation mask, ``pos`` and ``sensor_id`` are taken at ``index``
        (in that order), and ``meta["n_id"]`` records the kept sensors' indices in the
        dataset the first selection was applied to.

        Args:
            index (LongTensor or BoolTensor): Kept sensors, as unique indices or a mask of length ``N``.
            edge_index (LongTensor, optional): The new graph over the ``K`` kept sensors
                (relabelled ``0..K-1``), e.g. a reconnected one (default: :obj:`None`: the
                induced subgraph of the kept sensors, relabelled).
            edge_weight (Tensor, optional): Weights of ``edge_index`` (default: :obj:`None`;
                ignored when ``edge_index`` is :obj:`None`).
        """
        idx = torch.as_tensor(index)
        N = self.num_nodes
        if idx.dtype == torch.bool:
            if idx.shape != (N,):
                raise ValueError(f"a boolean `index` must have N = {N} entries, got shape {tuple(idx.shape)}")
            idx = idx.nonzero().view(-1)
        if idx.is_floating_point() or idx.dim() != 1:
            raise ValueError(f"`index` must be a 1-D tensor of sensor indices, got {idx.dtype} "
                             f"of shape {tuple(idx.shape)}")
        idx = idx.to(torch.long)
        if idx.numel() == 0:
            raise ValueError("`index` selects no sensor; at least one must be kept")
        if int(idx.min()) < 0 or int(idx.max()) >= N:
            raise ValueError(f"`index` must lie in 0..{N - 1}, got min {int(idx.min())} max {int(idx.max())}")
        if torch.unique(idx).numel() != idx.numel():
            raise ValueError("`index` holds duplicate sensors")
        if edge_index is None:
            from torch_geometric.utils import subgraph

            edge_index, edge_weight = subgraph(idx, self.edge_index, self.edge_weight, relabel_nodes=True,
                                               num_nodes=N)
        meta = dict(self.meta)
        prev = meta.get("n_id")
        meta["n_id"] = idx.clone() if prev is None else torch.as_tensor(prev)[idx].clone()
        return dataclasses.replace(
            self,
            series=self.series.index_select(1, idx),
            observed=self.observed.index_select(1, idx),
            edge_index=edge_index,
            edge_weight=edge_weight,
            pos=None if self.pos is None else self.pos.index_select(0, idx),
            sensor_id=[self.sensor_id[i] for i in idx.tolist()],
            meta=meta,
        )

    # ------------------------------------------------------------------ save / load
    _FORMAT = "dynst_pyg.SpatioTemporalDataset"
    _VERSION = 1

    def save(self, path: str | os.PathLike) -> None:
        """Writes the dataset, observation mask included, to a ``.pt`` file that :meth:`load` reads back.

        ``meta`` must hold only tensors, numbers, strings, booleans, :obj:`None` and
        lists/tuples/dicts of them, so the file loads with ``torch.load(weights_only=True)``.
        """
        _check_plain(self.meta, "meta")
        state = {
            "format": self._FORMAT, "version": self._VERSION,
            "series": self.series, "observed": self.observed, "edge_index": self.edge_index,
            "edge_weight": self.edge_weight, "pos": self.pos, "sensor_id": list(self.sensor_id),
            "interval_minutes": self.interval_minutes, "start": None if self.start is None else self.start.isoformat(),
            "null_value": self.null_value, "name": self.name, "feature_names": list(self.feature_names),
            "meta": self.meta,
        }
        torch.save(state, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SpatioTemporalDataset":
        """Reads a dataset written by :meth:`save` (validated like the constructor)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != cls._FORMAT:
            raise ValueError(f"{path} is not a dataset written by SpatioTemporalDataset.save")
        if state.get("version") != cls._VERSION:
            raise ValueError(f"{path}: dataset file version {state.get('version')!r}, "
                             f"this version reads {cls._VERSION}")
        start = state["start"]
        return cls(state["series"], state["edge_index"], state["edge_weight"], pos=state["pos"],
                   sensor_id=state["sensor_id"], interval_minutes=state["interval_minutes"],
                   start=None if start is None else datetime.fromisoformat(start), null_value=state["null_value"],
                   name=state["name"], feature_names=state["feature_names"], meta=state["meta"],
                   observed=state["observed"])

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


def _check_plain(value: Any, where: str) -> None:
    """Raises TypeError unless ``value`` is made of what ``torch.load(weights_only=True)`` reads."""
    if value is None or isinstance(value, (Tensor, bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key of type {type(k).__name__}; only str and int keys can be saved")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} holds a {type(value).__name__}, which cannot be saved "
                    "(use tensors, numbers, strings, lists and dicts)")
