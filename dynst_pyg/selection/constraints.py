"""Which sensor selections are allowed: costs with a budget, minima per region, protected sensors.

An operator rarely asks "which half of the sensors can go?" in the abstract: keeping a sensor
costs something (maintenance, power, a leased line), every district must keep some coverage and
a few sensors are mandatory. :class:`SelectionConstraints` states these rules once, checks that
they can be met at all, and :func:`constrained_top_k` is the one selection rule that every
schedule and selector of :mod:`dynst_pyg` goes through.

A selection ``S`` (the kept sensors) satisfies the constraints when

* every protected sensor is in ``S``;
* every region ``g`` keeps at least ``m_g`` sensors: ``|S ∩ g| >= m_g``;
* the kept cost stays within the budget: ``sum_{i in S} c_i <= B``.

A count target ``K`` (a sparsity or a budget in sensors) applies on top: ``|S| <= K``, and
without a cost budget ``|S| = K``. Under a cost budget ``K`` is an upper bound; ``K = None``
keeps as many sensors as the budget allows.

The cheapest way to meet the region minima is found exactly: regions are disjoint, so it is
the protected sensors plus, in every region, the cheapest sensors that are still missing. This
is what makes the greedy rule of :class:`GreedySelection` safe: a sensor is only added when the
protected sensors, the sensors added so far, the new one and the cheapest completion of the
region minima still fit into both ``K`` and ``B``.

Example:
    >>> c = SelectionConstraints(costs=[1., 1., 5., 1.], cost_budget=3.0,
    ...                          regions=["a", "a", "b", "b"], min_per_region=1)
    >>> constrained_top_k(torch.tensor([.9, .8, .7, .1]), 3, c).tolist()
    [True, True, False, True]
"""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["SelectionConstraints", "GreedySelection", "constrained_top_k", "merge_protected", "top_k_mask",
           "CONSTRAINTS_FORMAT_VERSION"]

#: Version of the layout written by :meth:`SelectionConstraints.to_dict`.
CONSTRAINTS_FORMAT_VERSION = 1

#: Relative tolerance of every cost comparison (sums of floats).
COST_RTOL = 1e-9

PathLike = Union[str, "os.PathLike[str]"]
BoolLike = Union[Tensor, np.ndarray, Sequence[bool]]


def _fits(total: float, budget: float) -> bool:
    return total <= budget + COST_RTOL * max(1.0, abs(budget))


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _as_index_list(value: Any, name: str) -> List[int]:
    if isinstance(value, Tensor):
        if value.dtype == torch.bool or value.is_floating_point() or value.dim() > 1:
            raise TypeError(f"`{name}` must be a 1-D sequence of integer sensor indices, got a {value.dtype} tensor "
                            f"of shape {tuple(value.shape)}")
        value = value.reshape(-1).tolist()
    elif isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist() if value.ndim <= 1 else value
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"`{name}` must be a sequence of integer sensor indices, got {type(value).__name__}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"`{name}` must hold integer sensor indices, got {v!r}")
        if int(v) < 0:
            raise ValueError(f"`{name}` holds the negative sensor index {int(v)}")
        out.append(int(v))
    return sorted(set(out))


def _as_bool(mask: Any, n: int, name: str) -> np.ndarray:
    # anything with a ``bool_mask`` (a SensorMask) counts as its bool mask; no import of mask.py
    if hasattr(mask, "bool_mask"):
        mask = mask.bool_mask
    if isinstance(mask, Tensor):
        arr = mask.detach().cpu().numpy()
    elif isinstance(mask, (np.ndarray, list, tuple)):
        arr = np.asarray(mask)
    else:
        raise TypeError(f"`{name}` must be a bool tensor of shape [{n}] or a SensorMask, got {type(mask).__name__}")
    if arr.dtype != np.bool_ or arr.shape != (n,):
        raise ValueError(f"`{name}` must be a bool tensor of shape [{n}], got {arr.dtype} {tuple(arr.shape)}")
    return arr.copy()


def _length(mask: Any) -> int:
    if hasattr(mask, "bool_mask"):
        return int(mask.bool_mask.shape[0])
    if isinstance(mask, (Tensor, np.ndarray)):
        return int(mask.shape[0]) if mask.ndim else 0
    return len(mask)


def _as_scores(scores: Any, name: str = "scores") -> np.ndarray:
    if isinstance(scores, Tensor):
        arr = scores.detach().cpu().double().numpy()
    else:
        try:
            arr = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must be a 1-D tensor of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D with one value per sensor, got shape {tuple(arr.shape)}")
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` contains NaN")
    return arr


class SelectionConstraints:
    r"""Rules every selection of kept sensors must obey; immutable and validated once.

    Every part is optional; an empty :class:`SelectionConstraints` allows every selection.
    The number of sensors ``N`` is the length of :obj:`costs` or :obj:`regions` (or
    :obj:`num_nodes`); constraints with neither (only protected sensors) are checked against
    the data by :meth:`check`.

    Feasibility is checked when the object is built: a region minimum larger than the
    region, protected sensors that alone exceed the budget, or region minima that even at
    their cheapest exceed the budget raise a :class:`ValueError` that names the problem.

    Args:
        costs (sequence of float, optional): Cost of keeping each sensor, shape ``[N]``,
            finite and ``>= 0``. (default: :obj:`None`)
        cost_budget (float, optional): Largest total cost of the kept sensors; needs
            :obj:`costs`. (default: :obj:`None`)
        regions (sequence of str, optional): Region label of each sensor, shape ``[N]``
            (int labels are turned into str). (default: :obj:`None`)
        min_per_region (int or dict, optional): Fewest sensors kept in every region (an int)
            or per region label (a dict; regions not named need none); needs :obj:`regions`.
            (default: :obj:`None`)
        protected (sequence of int, optional): Indices of sensors that are always kept.
            (default: :obj:`None`)
        num_nodes (int, optional): Number of sensors ``N``, checked against the lengths above.
            (default: :obj:`None`)

    Raises:
        TypeError, ValueError: on invalid or infeasible constraints; the message names the
            argument and what was expected.
    """

    __slots__ = ("_costs", "_budget", "_regions", "_min", "_protected", "_n", "_labels", "_codes", "_minima")

    def __init__(
        self,
        costs: Optional[Union[Tensor, np.ndarray, Sequence[float]]] = None,
        cost_budget: Optional[float] = None,
        regions: Optional[Sequence[Union[str, int]]] = None,
        min_per_region: Optional[Union[int, Mapping[str, int]]] = None,
        protected: Optional[Sequence[int]] = None,
        num_nodes: Optional[int] = None,
    ) -> None:
        n = None
        if num_nodes is not None:
            if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 1:
                raise ValueError(f"`num_nodes` must be a positive int, got {num_nodes!r}")
            n = int(num_nodes)

        c = None
        if costs is not None:
            c = self._check_costs(costs)
            if n is not None and c.size != n:
                raise ValueError(f"`costs` must have one cost per sensor (num_nodes={n}), got {c.size}")
            n = c.size

        labels_of: Optional[Tuple[str, ...]] = None
        if regions is not None:
            labels_of = self._check_regions(regions)
            if n is not None and len(labels_of) != n:
                what = "costs" if c is not None else "num_nodes"
                raise ValueError(f"`regions` must have one label per sensor ({what} gives {n}), got {len(labels_of)}")
            n = len(labels_of)

        budget = None
        if cost_budget is not None:
            if c is None:
                raise ValueError("`cost_budget` needs `costs` (one cost per sensor)")
            if isinstance(cost_budget, bool) or not isinstance(cost_budget, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(cost_budget)) or float(cost_budget) < 0:
                raise ValueError(f"`cost_budget` must be a finite number >= 0, got {cost_budget!r}")
            budget = float(cost_budget)

        mpr: Optional[Union[int, Dict[str, int]]] = None
        if min_per_region is not None:
            if labels_of is None:
                raise ValueError("`min_per_region` needs `regions` (one region label per sensor)")
            mpr = self._check_minima(min_per_region, set(labels_of))

        prot = _as_index_list(protected, "protected") if protected is not None else []
        if n is not None and prot and prot[-1] >= n:
            raise ValueError(f"`protected` holds sensor {prot[-1]}, outside the valid range 0..{n - 1}")

        # region codes in order of first appearance
        labels: List[str] = []
        codes = None
        if labels_of is not None:
            index: Dict[str, int] = {}
            codes = np.empty(len(labels_of), dtype=np.int64)
            for i, lab in enumerate(labels_of):
                if lab not in index:
                    index[lab] = len(labels)
                    labels.append(lab)
                codes[i] = index[lab]
            codes.setflags(write=False)
        minima = np.zeros(len(labels), dtype=np.int64)
        if isinstance(mpr, int):
            minima[:] = mpr
        elif isinstance(mpr, dict):
            for j, lab in enumerate(labels):
                minima[j] = mpr.get(lab, 0)
        minima.setflags(write=False)

        for name, value in (("_costs", c), ("_budget", budget), ("_regions", labels_of), ("_min", mpr),
                            ("_protected", tuple(prot)), ("_n", n), ("_labels", tuple(labels)),
                            ("_codes", codes), ("_minima", minima)):
            object.__setattr__(self, name, value)
        self._check_feasible()

    # validation -----------------------------------------------------------------------
    @staticmethod
    def _check_costs(costs: Any) -> np.ndarray:
        if isinstance(costs, Tensor):
            if costs.dtype == torch.bool:
                raise TypeError("`costs` must hold numbers, got a bool tensor")
            arr = costs.detach().cpu().double().numpy().copy()
        else:
            if isinstance(costs, (str, bytes)):
                raise TypeError("`costs` must be a sequence of numbers, got a str")
            try:
                arr = np.array(costs, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"`costs` must be a sequence of numbers: {exc}") from None
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"`costs` must be 1-D with one cost per sensor, got shape {tuple(arr.shape)}")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"`costs[{bad[0]}]` is {arr[bad[0]]}; every cost must be a finite number >= 0")
        neg = np.flatnonzero(arr < 0)
        if neg.size:
            raise ValueError(f"`costs[{neg[0]}]` is {arr[neg[0]]}; every cost must be >= 0")
        arr.setflags(write=False)
        return arr

    @staticmethod
    def _check_regions(regions: Any) -> Tuple[str, ...]:
        if isinstance(regions, Tensor):
            regions = regions.reshape(-1).tolist()
        elif isinstance(regions, np.ndarray):
            regions = regions.reshape(-1).tolist()
        if isinstance(regions, (str, bytes)) or not isinstance(regions, Iterable):
            raise TypeError(f"`regions` must be a sequence of region labels, got {type(regions).__name__}")
        out = []
        for i, lab in enumerate(regions):
            if isinstance(lab, bool) or not isinstance(lab, (str, int, np.integer)):
                raise TypeError(f"`regions[{i}]` must be a str (or int) label, got {lab!r}")
            s = str(lab)
            if not s.strip():
                raise ValueError(f"`regions[{i}]` is an empty label")
            out.append(s)
        if not out:
            raise ValueError("`regions` is empty: it needs one label per sensor")
        return tuple(out)

    @staticmethod
    def _check_minima(value: Any, known: set) -> Union[int, Dict[str, int]]:
        def count(v: Any, where: str) -> int:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
                raise ValueError(f"`min_per_region`{where} must be an int >= 0, got {v!r}")
            return int(v)

        if isinstance(value, Mapping):
            out: Dict[str, int] = {}
            for key, v in value.items():
                lab = str(key)
                if lab not in known:
                    raise ValueError(f"`min_per_region` names region {lab!r}, which no sensor belongs to "
                                     f"(regions: {', '.join(repr(k) for k in sorted(known)[:8])}"
                                     f"{' ...' if len(known) > 8 else ''})")
                out[lab] = count(v, f"[{lab!r}]")
            return out
        return count(value, "")

    def _check_feasible(self) -> None:
        size = None
        if self._codes is not None:
            size = np.bincount(self._codes, minlength=len(self._labels))
            for j, lab in enumerate(self._labels):
                if self._minima[j] > size[j]:
                    raise ValueError(f"min_per_region={int(self._minima[j])} is impossible in region {lab!r} "
                                     f"with {int(size[j])} sensor{'s' if size[j] != 1 else ''}")
        if self._budget is None:
            return
        prot_cost = float(self._costs[list(self._protected)].sum()) if self._protected else 0.0
        if not _fits(prot_cost, self._budget):
            raise ValueError(f"protected sensors alone cost {_fmt(prot_cost)} > cost_budget {_fmt(self._budget)}")
        total = self.min_cost
        if not self._protected and not self._minima.any() and not _fits(total, self._budget):
            raise ValueError(f"cost_budget {_fmt(self._budget)} cannot pay for even the cheapest sensor "
                             f"(cost {_fmt(total)}); a selection keeps at least one sensor")
        if not _fits(total, self._budget):
            raise ValueError(f"meeting min_per_region at the cheapest costs {_fmt(total)} (protected "
                             f"{_fmt(prot_cost)} + region minima {_fmt(total - prot_cost)}) > cost_budget "
                             f"{_fmt(self._budget)}")

    def check(self, num_nodes: int) -> "SelectionConstraints":
        """Checks the constraints against a network of :obj:`num_nodes` sensors; returns :obj:`self`.

        Raises:
            ValueError: if the lengths differ or a protected sensor is out of range.
        """
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 1:
            raise ValueError(f"`num_nodes` must be a positive int, got {num_nodes!r}")
        if self._n is not None and self._n != int(num_nodes):
            raise ValueError(f"the constraints were built for {self._n} sensors, the data has {int(num_nodes)}")
        if self._protected and self._protected[-1] >= num_nodes:
            raise ValueError(f"`protected` holds sensor {self._protected[-1]}, outside the valid range "
                             f"0..{int(num_nodes) - 1}")
        return self

    # immutability ---------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SelectionConstraints is immutable: cannot set '{name}' (use .replace)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"SelectionConstraints is immutable: cannot delete '{name}'")

    def __copy__(self) -> "SelectionConstraints":
        return self

    def __deepcopy__(self, memo: Dict[int, Any]) -> "SelectionConstraints":
        return self

    def __reduce__(self):
        return (_rebuild, (self.to_dict(),))

    def replace(self, **changes: Any) -> "SelectionConstraints":
        """A new object with some arguments replaced (validated again), like :func:`dataclasses.replace`."""
        args = {"costs": self.costs, "cost_budget": self._budget, "regions": self.regions,
                "min_per_region": self.min_per_region, "protected": list(self._protected), "num_nodes": self._n}
        unknown = set(changes) - set(args)
        if unknown:
            raise TypeError(f"unknown field(s) {sorted(unknown)}; fields: {sorted(args)}")
        args.update(changes)
        return SelectionConstraints(**args)

    # fields ---------------------------------------------------------------------------
    @property
    def costs(self) -> Optional[Tensor]:
        """Cost per sensor, float64 ``[N]`` (a copy), or :obj:`None`."""
        return None if self._costs is None else torch.from_numpy(self._costs.copy())

    @property
    def cost_budget(self) -> Optional[float]:
        """Largest total kept cost, or :obj:`None`."""
        return self._budget

    @property
    def regions(self) -> Optional[List[str]]:
        """Region label per sensor (a copy), or :obj:`None`."""
        return None if self._regions is None else list(self._regions)

    @property
    def min_per_region(self) -> Optional[Union[int, Dict[str, int]]]:
        """The minimum as given (an int or a copy of the dict), or :obj:`None`."""
        return dict(self._min) if isinstance(self._min, dict) else self._min

    @property
    def protected(self) -> List[int]:
        """Sorted indices of the protected sensors."""
        return list(self._protected)

    @property
    def num_nodes(self) -> Optional[int]:
        """Number of sensors ``N`` when known (from the costs, regions or :obj:`num_nodes`)."""
        return self._n

    @property
    def region_labels(self) -> List[str]:
        """Distinct region labels in order of first appearance (empty without regions)."""
        return list(self._labels)

    @property
    def region_minima(self) -> Dict[str, int]:
        """Minimum number of kept sensors per region label (every region listed)."""
        return {lab: int(m) for lab, m in zip(self._labels, self._minima)}

    @property
    def min_count(self) -> int:
        """Fewest sensors any satisfying selection keeps: the protected ones plus the missing region
        minima, and at least one."""
        n = self._n if self._n is not None else self._min_n()
        return max(1, len(self._protected) + int(self._deficits(self._protected_mask(n)).sum()))

    @property
    def min_cost(self) -> float:
        """Cost of the cheapest satisfying selection (``0.0`` without costs)."""
        if self._costs is None:
            return 0.0
        return float(self._costs[self.cheapest_selection().numpy()].sum())

    # helpers --------------------------------------------------------------------------
    def _min_n(self) -> int:
        return (self._protected[-1] + 1) if self._protected else 1

    def _protected_mask(self, n: int) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[list(self._protected)] = True
        return m

    def _deficits(self, kept: np.ndarray) -> np.ndarray:
        """Sensors still missing per region for the kept bool array (zeros without regions)."""
        if self._codes is None:
            return np.zeros(0, dtype=np.int64)
        have = np.bincount(self._codes[kept], minlength=len(self._labels))
        return np.maximum(self._minima - have, 0)

    def cheapest_selection(self, candidates: Optional[BoolLike] = None, num_nodes: Optional[int] = None) -> Tensor:
        """The cheapest selection meeting the protected sensors and the region minima.

        Protected sensors plus, in every region short of its minimum, the cheapest missing
        sensors among :obj:`candidates` (ties: lower index); when that is still empty, the
        cheapest candidate, as a selection keeps at least one sensor. Without costs every
        sensor costs the same, so the result is the smallest satisfying selection.

        Args:
            candidates (BoolTensor, optional): Sensors that may be used besides the protected
                ones, shape ``[N]`` (default: all).
            num_nodes (int, optional): ``N`` when the constraints do not know it (default: :obj:`None`).

        Returns:
            BoolTensor ``[N]``.
        """
        n = self._n if self._n is not None else num_nodes
        if n is None:
            n = candidates.numel() if isinstance(candidates, Tensor) else self._min_n()
        self.check(n)
        keep = self._protected_mask(n)
        cand = np.ones(n, dtype=bool) if candidates is None else _as_bool(candidates, n, "candidates")
        d = self._deficits(keep)
        costs = self._costs if self._costs is not None else np.zeros(n)
        for j in np.flatnonzero(d):
            pool = np.flatnonzero(cand & ~keep & (self._codes == j))
            if pool.size < d[j]:
                raise ValueError(f"region {self._labels[j]!r} needs {int(d[j])} more sensor(s) to reach its "
                                 f"minimum {int(self._minima[j])}, but only {pool.size} candidate(s) are left")
            keep[pool[np.argsort(costs[pool], kind="stable")[: d[j]]]] = True
        if not keep.any():
            pool = np.flatnonzero(cand)
            if pool.size == 0:
                raise ValueError("no candidate sensor is left to keep")
            keep[pool[np.argmin(costs[pool])]] = True
        return torch.from_numpy(keep)

    # checking selections -----------------------------------------------------------
    def kept_cost(self, keep: BoolLike) -> Optional[float]:
        """Total cost of the kept sensors (a bool mask ``[N]`` or a SensorMask), or :obj:`None` without costs."""
        if self._costs is None:
            return None
        k = _as_bool(keep, self._costs.size, "keep")
        return float(self._costs[k].sum())

    def violations(self, keep: BoolLike) -> List[str]:
        """Every rule the selection breaks, one readable line each (empty when it satisfies them).

        Args:
            keep (BoolTensor or SensorMask): Kept sensors, shape ``[N]``.
        """
        n = self._n if self._n is not None else _length(keep)
        self.check(n)
        k = _as_bool(keep, n, "keep")
        out = []
        if not k.any():
            out.append("no sensor is kept")
        missing = [p for p in self._protected if not k[p]]
        if missing:
            out.append(f"protected sensor(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} not kept")
        if self._codes is not None:
            have = np.bincount(self._codes[k], minlength=len(self._labels))
            for j, lab in enumerate(self._labels):
                if have[j] < self._minima[j]:
                    out.append(f"region {lab!r} keeps {int(have[j])} sensor(s), below its minimum "
                               f"{int(self._minima[j])}")
        if self._budget is not None:
            total = float(self._costs[k].sum())
            if not _fits(total, self._budget):
                out.append(f"kept cost {_fmt(total)} exceeds cost_budget {_fmt(self._budget)}")
        return out

    def is_satisfied(self, keep: BoolLike) -> bool:
        """Whether the selection (a bool mask ``[N]`` or a SensorMask) obeys every rule."""
        return not self.violations(keep)

    # I/O ------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` reads it back."""
        return {
            "format_version": CONSTRAINTS_FORMAT_VERSION,
            "num_nodes": self._n,
            "costs": None if self._costs is None else [float(v) for v in self._costs],
            "cost_budget": self._budget,
            "regions": self.regions,
            "min_per_region": self.min_per_region,
            "protected": list(self._protected),
        }

    @classmethod
    def from_dict(cls, obj: Any, source: str = "constraints dict") -> "SelectionConstraints":
        """Inverse of :meth:`to_dict`; validates every field (errors name :obj:`source`)."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(obj).__name__}")
        version = obj.get("format_version", CONSTRAINTS_FORMAT_VERSION)
        if version != CONSTRAINTS_FORMAT_VERSION:
            raise ValueError(f"{source}: unsupported 'format_version' {version!r}; this version of dynst_pyg reads "
                             f"{CONSTRAINTS_FORMAT_VERSION}")
        fields = {"num_nodes", "costs", "cost_budget", "regions", "min_per_region", "protected", "format_version"}
        unknown = set(obj) - fields
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {sorted(unknown)}")
        try:
            return cls(costs=obj.get("costs"), cost_budget=obj.get("cost_budget"), regions=obj.get("regions"),
                       min_per_region=obj.get("min_per_region"), protected=obj.get("protected"),
                       num_nodes=obj.get("num_nodes"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def from_csv(
        cls,
        sensor_ids: Sequence[str],
        costs: Optional[PathLike] = None,
        regions: Optional[PathLike] = None,
        cost_budget: Optional[float] = None,
        min_per_region: Optional[Union[int, Mapping[str, int]]] = None,
        protected_ids: Optional[Sequence[str]] = None,
    ) -> "SelectionConstraints":
        r"""Reads costs and regions from CSV files keyed by sensor id.

        The costs file has the header ``sensor_id,cost`` and one row per sensor; the regions
        file has ``sensor_id,region``. Every sensor of :obj:`sensor_ids` must appear exactly
        once; rows may come in any order.

        Args:
            sensor_ids (sequence of str): The ``N`` sensor ids in node order (e.g. ``dataset.sensor_id``).
            costs (str or PathLike, optional): Path of the ``sensor_id,cost`` file. (default: :obj:`None`)
            regions (str or PathLike, optional): Path of the ``sensor_id,region`` file. (default: :obj:`None`)
            cost_budget, min_per_region: As in :class:`SelectionConstraints`.
            protected_ids (sequence of str, optional): Ids of the sensors always kept. (default: :obj:`None`)

        Raises:
            FileNotFoundError: if a file does not exist.
            ValueError: one line naming the file, the row and what was expected (a bad header,
                an unknown or duplicate sensor id, a bad number, missing sensors).
        """
        if isinstance(sensor_ids, (str, bytes)) or not isinstance(sensor_ids, Iterable):
            raise TypeError(f"`sensor_ids` must be a sequence of str, got {type(sensor_ids).__name__}")
        ids = [str(s) for s in sensor_ids]
        lookup = {sid: i for i, sid in enumerate(ids)}
        if len(lookup) != len(ids):
            raise ValueError("`sensor_ids` must be unique")
        cost_values = None
        if costs is not None:
            cost_values = _read_keyed_csv(costs, "cost", lookup, _parse_cost)
        region_values = None
        if regions is not None:
            region_values = _read_keyed_csv(regions, "region", lookup, _parse_region)
        prot = None
        if protected_ids is not None:
            if isinstance(protected_ids, (str, bytes)):
                raise TypeError("`protected_ids` must be a sequence of sensor ids, got a single str")
            unknown = [str(p) for p in protected_ids if str(p) not in lookup]
            if unknown:
                raise ValueError(f"`protected_ids` holds unknown sensor id(s) {unknown[:5]}")
            prot = [lookup[str(p)] for p in protected_ids]
        return cls(costs=cost_values, cost_budget=cost_budget, regions=region_values,
                   min_per_region=min_per_region, protected=prot, num_nodes=len(ids))

    # dunder ---------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SelectionConstraints):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        parts = []
        if self._n is not None:
            parts.append(f"num_nodes={self._n}")
        if self._costs is not None:
            parts.append(f"costs=({self._costs.size} values)")
        if self._budget is not None:
            parts.append(f"cost_budget={_fmt(self._budget)}")
        if self._regions is not None:
            parts.append(f"regions=({len(self._labels)} labels)")
        if self._min is not None:
            parts.append(f"min_per_region={self._min!r}")
        if self._protected:
            parts.append(f"protected={list(self._protected)}")
        return f"SelectionConstraints({', '.join(parts)})"


def _rebuild(obj: Dict[str, Any]) -> SelectionConstraints:
    return SelectionConstraints.from_dict(obj)


def _parse_cost(text: str) -> float:
    v = float(text)  # ValueError -> reported by the caller
    if not math.isfinite(v) or v < 0:
        raise ValueError
    return v


def _parse_region(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text.strip()


def _read_keyed_csv(path: PathLike, column: str, lookup: Dict[str, int], parse) -> list:
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{column}s file not found: {p!r}")
    expected = {"cost": "a finite number >= 0", "region": "a non-empty region label"}[column]
    values: List[Any] = [None] * len(lookup)
    first_row: Dict[str, int] = {}
    with open(p, "r", encoding="utf-8-sig", newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header is None or [h.strip().lower() for h in header] != ["sensor_id", column]:
            got = "an empty file" if header is None else repr(",".join(header))
            raise ValueError(f"{p}: row 1: expected the header 'sensor_id,{column}', got {got}")
        for r, row in enumerate(rows, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise ValueError(f"{p}: row {r}: expected 2 columns 'sensor_id,{column}', got {len(row)}")
            sid, raw = row[0].strip(), row[1]
            if sid not in lookup:
                raise ValueError(f"{p}: row {r}: unknown sensor id {sid!r} (not one of the {len(lookup)} sensor "
                                 f"ids of the data)")
            if sid in first_row:
                raise ValueError(f"{p}: row {r}: duplicate sensor id {sid!r} (first given on row {first_row[sid]})")
            first_row[sid] = r
            try:
                values[lookup[sid]] = parse(raw)
            except ValueError:
                raise ValueError(f"{p}: row {r}: expected {expected} for sensor {sid!r}, got {raw!r}") from None
    missing = [sid for sid, i in lookup.items() if values[i] is None]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"{p}: missing {len(missing)} of {len(lookup)} sensors ({shown}); every sensor needs a row")
    return values


# ----------------------------------------------------------------------------------------
# selection
# ----------------------------------------------------------------------------------------
def top_k_mask(scores: Tensor, k: int, candidates: Optional[Tensor] = None,
               forced: Optional[Tensor] = None) -> Tensor:
    """Bool mask of the ``k`` best ``scores`` among ``candidates`` (ties: lower index wins), plus ``forced``.

    ``forced`` sensors count towards ``k``; if there are more forced sensors than ``k``,
    all forced sensors are kept.
    """
    n = scores.numel()
    if torch.isnan(scores).any():
        raise ValueError("`scores` contains NaN")
    cand = torch.ones(n, dtype=torch.bool) if candidates is None else candidates.clone()
    out = torch.zeros(n, dtype=torch.bool) if forced is None else forced.clone()
    cand &= ~out
    need = k - int(out.sum())
    if need > 0:
        idx = cand.nonzero().view(-1)
        # stable sort on -score keeps the lower index first among ties
        order = torch.sort(-scores[idx].double(), stable=True).indices[:need]
        out[idx[order]] = True
    return out


class GreedySelection:
    r"""Builds a selection one sensor at a time without ever losing feasibility.

    The state is the kept set ``S`` (protected and :obj:`forced` sensors from the start).
    A sensor ``i`` is *admissible* when adding it still leaves a way to satisfy every
    rule: with ``D`` the sensors still missing for the region minima and ``M`` the cheapest
    completion of those minima (without ``i``),

    * the count: ``|S| + 1 + D' <= K`` (``D' = D - 1`` when ``i`` fills a missing place);
    * the cost: ``cost(S) + c_i + M' <= B``.

    Admissibility only ever shrinks as sensors are added, so walking down any ranking and
    adding each admissible sensor gives the same set as repeatedly adding the best
    admissible one. When nothing is admissible any more (or ``|S| = K``) every region
    minimum is met.

    Args:
        constraints (SelectionConstraints, optional): The rules (default: none).
        num_nodes (int): Number of sensors ``N``.
        k (int, optional): Most sensors kept ``K``; :obj:`None` = no count limit. (default: :obj:`None`)
        candidates (BoolTensor, optional): Sensors that may be added, ``[N]`` (default: all).
        forced (BoolTensor, optional): Sensors kept from the start besides the protected ones,
            ``[N]`` (default: none).

    Raises:
        ValueError: if the rules cannot be met within :obj:`k`, the budget and the candidates.
    """

    def __init__(self, constraints: Optional[SelectionConstraints], num_nodes: int, k: Optional[int] = None,
                 candidates: Optional[BoolLike] = None, forced: Optional[BoolLike] = None) -> None:
        c = constraints if constraints is not None else SelectionConstraints()
        if not isinstance(c, SelectionConstraints):
            raise TypeError(f"`constraints` must be SelectionConstraints, got {type(c).__name__}")
        n = int(num_nodes)
        c.check(n)
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"`k` must be a positive int or None, got {k!r}")
        self._n = n
        self._k = n if k is None else min(int(k), n)
        self._costs = c._costs if c._costs is not None else np.zeros(n)
        self._budget = c._budget if c._budget is not None else math.inf
        self._codes = c._codes
        self._minima = c._minima
        self._labels = c._labels
        self._constraints = c
        kept = c._protected_mask(n)
        n_prot = int(kept.sum())
        if forced is not None:
            kept |= _as_bool(forced, n, "forced")
        self._kept = kept
        self._pool = (np.ones(n, dtype=bool) if candidates is None else _as_bool(candidates, n, "candidates")) & ~kept
        self._cache: Optional[np.ndarray] = None
        self._check_start(n_prot)

    def _completion(self) -> Tuple[np.ndarray, np.ndarray, float, bool]:
        """Deficit per region, the cost of the d-th cheapest pool sensor per region, the cost of the
        cheapest completion, and whether the selection is still empty with nothing else required
        (then one sensor, any, is missing)."""
        d = np.zeros(0, dtype=np.int64)
        tau = np.zeros(0)
        total = 0.0
        if self._codes is not None:
            d = np.maximum(self._minima - np.bincount(self._codes[self._kept], minlength=len(self._labels)), 0)
            tau = np.full(len(self._labels), math.inf)
            for j in np.flatnonzero(d):
                cs = np.sort(self._costs[self._pool & (self._codes == j)])
                if cs.size < d[j]:
                    raise ValueError(f"region {self._labels[j]!r} needs {int(d[j])} more sensor(s) to reach its "
                                     f"minimum {int(self._minima[j])}, but only {cs.size} candidate(s) are left")
                total += float(cs[: d[j]].sum())
                tau[j] = cs[d[j] - 1]
        empty = not self._kept.any() and not d.any()
        if empty:
            if not self._pool.any():
                raise ValueError("no candidate sensor is left to keep")
            total = float(self._costs[self._pool].min())
        return d, tau, total, empty

    def _check_start(self, n_prot: int) -> None:
        count = int(self._kept.sum())
        who = "protected" if count == n_prot else "protected and forced"
        d, _, completion, empty = self._completion()
        need = count + int(d.sum()) + int(empty)
        if need > self._k:
            raise ValueError(f"a target of k={self._k} kept sensors is below the {need} the constraints need "
                             f"({count} {who} + {int(d.sum())} to meet min_per_region)")
        kept_cost = float(self._costs[self._kept].sum())
        if not _fits(kept_cost, self._budget):
            raise ValueError(f"{who} sensors alone cost {_fmt(kept_cost)} > cost_budget {_fmt(self._budget)}")
        if empty and not _fits(completion, self._budget):
            raise ValueError(f"cost_budget {_fmt(self._budget)} cannot pay for even the cheapest candidate sensor "
                             f"(cost {_fmt(completion)}); a selection keeps at least one sensor")
        if not _fits(kept_cost + completion, self._budget):
            raise ValueError(f"meeting min_per_region at the cheapest costs {_fmt(kept_cost + completion)} "
                             f"({who} {_fmt(kept_cost)} + region minima {_fmt(completion)}) > cost_budget "
                             f"{_fmt(self._budget)}")

    @property
    def kept(self) -> Tensor:
        """The kept sensors so far, BoolTensor ``[N]`` (a copy)."""
        return torch.from_numpy(self._kept.copy())

    @property
    def num_kept(self) -> int:
        """Number of kept sensors so far."""
        return int(self._kept.sum())

    @property
    def kept_cost(self) -> float:
        """Total cost of the kept sensors so far (``0.0`` without costs)."""
        return float(self._costs[self._kept].sum())

    def admissible(self) -> Tensor:
        """BoolTensor ``[N]`` of the sensors that may be added now."""
        return torch.from_numpy(self._admissible().copy())

    def _admissible(self) -> np.ndarray:
        if self._cache is not None:
            return self._cache
        count = int(self._kept.sum())
        if count >= self._k:
            adm = np.zeros(self._n, dtype=bool)
        else:
            d, tau, completion, empty = self._completion()
            slack = self._budget - float(self._costs[self._kept].sum()) - completion
            tol = COST_RTOL * max(1.0, abs(self._budget)) if math.isfinite(self._budget) else 0.0
            if empty:  # any sensor fills the one place that must be filled
                fills = np.ones(self._n, dtype=bool)
                increase = np.maximum(self._costs - completion, 0.0)
            elif self._codes is not None and d.any():
                fills = d[self._codes] > 0
                increase = np.where(fills, np.maximum(self._costs - tau[self._codes], 0.0), self._costs)
            else:
                fills = np.zeros(self._n, dtype=bool)
                increase = self._costs
            room = (self._k - count - 1) >= int(d.sum())
            adm = self._pool & (fills | room) & (increase <= slack + tol)
        self._cache = adm
        return adm

    def can_add(self, i: int) -> bool:
        """Whether sensor :obj:`i` is admissible now."""
        return bool(self._admissible()[int(i)])

    def add(self, i: int) -> None:
        """Adds sensor :obj:`i`; raises :class:`ValueError` if it is not admissible."""
        i = int(i)
        if not 0 <= i < self._n:
            raise ValueError(f"sensor index {i} is outside 0..{self._n - 1}")
        if not self.can_add(i):
            raise ValueError(f"sensor {i} cannot be added without breaking the constraints (or it is not a "
                             f"candidate, already kept, or k is reached)")
        self._kept[i] = True
        self._pool[i] = False
        self._cache = None

    def extend(self, order: Iterable[int]) -> "GreedySelection":
        """Walks :obj:`order` once, adding each sensor that is admissible when reached; returns :obj:`self`."""
        for i in order:
            if int(self._kept.sum()) >= self._k:
                break
            if self._admissible()[int(i)]:
                self.add(int(i))
        return self


_RULES = ("auto", "score", "ratio")


def _has_limits(c: Optional[SelectionConstraints]) -> bool:
    return c is not None and (c.cost_budget is not None or bool(c._minima.any()))


def constrained_top_k(
    scores: Tensor,
    k: Optional[int],
    constraints: Optional[SelectionConstraints] = None,
    candidates: Optional[Tensor] = None,
    forced: Optional[Tensor] = None,
    rule: str = "auto",
) -> Tensor:
    r"""The best selection of at most ``k`` sensors that satisfies :obj:`constraints`.

    Protected and :obj:`forced` sensors are kept first. Then the sensors are ranked and
    walked once, best first; each one is kept when it is *admissible*, i.e. when the
    region minima and the cost budget can still be met afterwards (see
    :class:`GreedySelection`). A region short of its minimum therefore receives its best
    sensors as soon as the free places run out, and the budget is never exceeded.

    The ranking:

    * without a cost budget, by score (ties: lower index) — with no region minima this is
      plain top-``k``;
    * with a cost budget, two walks are made, one by score and one by score per unit cost
      ``v_i / c_i`` (``v`` = the scores, shifted by their minimum when some are negative;
      free sensors first), and the one with the larger total ``v`` is returned (ties: the
      walk by score). This is the modified greedy rule of the knapsack problem: the walk
      by ratio fills a tight budget with many good cheap sensors, the walk by score wins
      when the count ``k`` binds first.

    ``k`` and the cost budget both apply: at most ``k`` sensors and at most the budget.
    ``k=None`` keeps as many sensors as the budget allows (all candidates without one).

    Args:
        scores (Tensor): Importance per sensor ``[N]``, higher = keep; no NaN.
        k (int, optional): Most sensors kept, or :obj:`None`.
        constraints (SelectionConstraints, optional): The rules. (default: :obj:`None`)
        candidates (BoolTensor, optional): Sensors that may be kept besides the protected and
            forced ones, ``[N]`` (default: all).
        forced (BoolTensor, optional): Sensors kept regardless of their score, ``[N]``; they
            count towards ``k`` and the budget (default: none).
        rule (str, optional): ``"auto"`` (as above), ``"score"`` or ``"ratio"`` to force one
            walk. (default: :obj:`"auto"`)

    Returns:
        BoolTensor ``[N]``, :obj:`True` for kept sensors.

    Raises:
        ValueError: if the constraints cannot be met within ``k``, the budget and the
            candidates (the message says which).
    """
    s = _as_scores(scores)
    n = s.size
    if n == 0:
        raise ValueError("`scores` is empty: it needs one score per sensor")
    if rule not in _RULES:
        raise ValueError(f"`rule` must be one of {list(_RULES)}, got {rule!r}")
    if constraints is not None and not isinstance(constraints, SelectionConstraints):
        raise TypeError(f"`constraints` must be SelectionConstraints, got {type(constraints).__name__}")
    if not _has_limits(constraints):
        # protected sensors at most: plain top-k
        start = GreedySelection(constraints, n, k, candidates, forced).kept  # validates, checks k vs protected
        cand = torch.ones(n, dtype=torch.bool) if candidates is None \
            else torch.from_numpy(_as_bool(candidates, n, "candidates"))
        if k is None:
            return cand | start
        return top_k_mask(torch.from_numpy(s), int(k), candidates=cand, forced=start)

    by_score = np.argsort(-s, kind="stable")
    walks = []
    if rule in ("auto", "score"):
        walks.append(GreedySelection(constraints, n, k, candidates, forced).extend(by_score.tolist()))
    use_ratio = rule == "ratio" or (rule == "auto" and constraints.cost_budget is not None)
    if use_ratio:
        v = s - min(0.0, float(s.min()))
        costs = constraints._costs if constraints._costs is not None else np.ones(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(costs > 0, v / np.where(costs > 0, costs, 1.0), math.inf)
        by_ratio = np.lexsort((np.arange(n), -s, -ratio))
        walks.append(GreedySelection(constraints, n, k, candidates, forced).extend(by_ratio.tolist()))
    if len(walks) == 1:
        return walks[0].kept
    v = s - min(0.0, float(s.min()))
    totals = [float(v[w._kept].sum()) for w in walks]
    return walks[1].kept if totals[1] > totals[0] * (1 + 1e-12) + 1e-15 else walks[0].kept


def merge_protected(constraints: Optional[SelectionConstraints],
                    protected: Optional[Sequence[int]] = None) -> Optional[SelectionConstraints]:
    """``constraints`` with the sensors ``protected`` added to its protected set.

    The shortcut ``protected=[...]`` of schedules and selectors becomes part of the one
    constraint object they obey (a new object; :obj:`None` stays :obj:`None` when nothing is protected).

    Args:
        constraints (SelectionConstraints, optional): The constraints (default: none).
        protected (sequence of int, optional): Sensor indices always kept (default: none).
    """
    if constraints is not None and not isinstance(constraints, SelectionConstraints):
        raise TypeError(f"`constraints` must be SelectionConstraints, got {type(constraints).__name__}")
    if protected is None or len(protected) == 0:
        return constraints
    base = constraints if constraints is not None else SelectionConstraints()
    return base.replace(protected=sorted(set(base.protected) | {int(p) for p in protected}))
