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

:meth:`SelectionConstraints.cheapest_selection` finds the cheapest way to meet the region minima
exactly; the selection rule itself lives in :mod:`dynst_pyg.selection.rules`.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .._checks import check_positive_int
from ._args import (COST_RTOL, BoolLike, bool_array, fits, fmt_cost, index_list, read_costs, read_minima,
                    read_regions, selection_length)
from .constraint_arrays import ConstraintArrays
from .constraints_csv import read_constraint_files

__all__ = ["SelectionConstraints", "CONSTRAINTS_FORMAT_VERSION", "COST_RTOL"]

#: Version of the layout written by :meth:`SelectionConstraints.to_dict`.
CONSTRAINTS_FORMAT_VERSION = 1

PathLike = Union[str, "os.PathLike[str]"]


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
            n = check_positive_int(num_nodes, "num_nodes")

        c = None
        if costs is not None:
            c = read_costs(costs)
            if n is not None and c.size != n:
                raise ValueError(f"`costs` must have one cost per sensor (num_nodes={n}), got {c.size}")
            n = c.size

        labels_of: Optional[Tuple[str, ...]] = None
        if regions is not None:
            labels_of = read_regions(regions)
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
            mpr = read_minima(min_per_region, set(labels_of))

        prot = index_list(protected, "protected") if protected is not None else []
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
        if not fits(prot_cost, self._budget):
            raise ValueError(f"protected sensors alone cost {fmt_cost(prot_cost)} > cost_budget {fmt_cost(self._budget)}")
        total = self.min_cost
        if not self._protected and not self._minima.any() and not fits(total, self._budget):
            raise ValueError(f"cost_budget {fmt_cost(self._budget)} cannot pay for even the cheapest sensor "
                             f"(cost {fmt_cost(total)}); a selection keeps at least one sensor")
        if not fits(total, self._budget):
            raise ValueError(f"meeting min_per_region at the cheapest costs {fmt_cost(total)} (protected "
                             f"{fmt_cost(prot_cost)} + region minima {fmt_cost(total - prot_cost)}) > cost_budget "
                             f"{fmt_cost(self._budget)}")

    def check(self, num_nodes: int) -> "SelectionConstraints":
        """Checks the constraints against a network of :obj:`num_nodes` sensors; returns :obj:`self`.

        Raises:
            ValueError: if the lengths differ or a protected sensor is out of range.
        """
        num_nodes = check_positive_int(num_nodes, "num_nodes")
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
        a = self.arrays(self._n if self._n is not None else self._min_n())
        return max(1, len(self._protected) + int(a.deficits(a.protected).sum()))

    @property
    def min_cost(self) -> float:
        """Cost of the cheapest satisfying selection (``0.0`` without costs)."""
        if self._costs is None:
            return 0.0
        return float(self._costs[self.cheapest_selection().numpy()].sum())

    # helpers --------------------------------------------------------------------------
    def _min_n(self) -> int:
        return (self._protected[-1] + 1) if self._protected else 1

    def arrays(self, num_nodes: int) -> ConstraintArrays:
        """These constraints as read-only arrays for a network of :obj:`num_nodes` sensors (checked
        first, see :meth:`check`); the arrays are the constraints' own, which are read-only already."""
        self.check(num_nodes)
        n = int(num_nodes)
        prot = np.zeros(n, dtype=bool)
        prot[list(self._protected)] = True
        prot.setflags(write=False)
        return ConstraintArrays(costs=self._costs, budget=self._budget, codes=self._codes, minima=self._minima,
                                labels=tuple(self._labels), protected=prot)

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
        a = self.arrays(n)
        keep = a.protected.copy()
        cand = np.ones(n, dtype=bool) if candidates is None else bool_array(candidates, n, "candidates")
        costs = a.costs if a.costs is not None else np.zeros(n)
        _, picks, extra = a.completion(keep, cand, costs)
        for _, idx in picks:
            keep[idx] = True
        if extra is not None:
            keep[extra] = True
        return torch.from_numpy(keep)

    # checking selections -----------------------------------------------------------
    def kept_cost(self, keep: BoolLike) -> Optional[float]:
        """Total cost of the kept sensors (a bool mask ``[N]`` or a SensorMask), or :obj:`None` without costs."""
        if self._costs is None:
            return None
        k = bool_array(keep, self._costs.size, "keep")
        return float(self._costs[k].sum())

    def violations(self, keep: BoolLike) -> List[str]:
        """Every rule the selection breaks, one readable line each (empty when it satisfies them).

        Args:
            keep (BoolTensor or SensorMask): Kept sensors, shape ``[N]``.
        """
        n = self._n if self._n is not None else selection_length(keep)
        self.check(n)
        k = bool_array(keep, n, "keep")
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
            if not fits(total, self._budget):
                out.append(f"kept cost {fmt_cost(total)} exceeds cost_budget {fmt_cost(self._budget)}")
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
        kwargs = read_constraint_files(sensor_ids, costs, regions, protected_ids)
        return cls(cost_budget=cost_budget, min_per_region=min_per_region, **kwargs)

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
            parts.append(f"cost_budget={fmt_cost(self._budget)}")
        if self._regions is not None:
            parts.append(f"regions=({len(self._labels)} labels)")
        if self._min is not None:
            parts.append(f"min_per_region={self._min!r}")
        if self._protected:
            parts.append(f"protected={list(self._protected)}")
        return f"SelectionConstraints({', '.join(parts)})"


def _rebuild(obj: Dict[str, Any]) -> SelectionConstraints:
    return SelectionConstraints.from_dict(obj)
