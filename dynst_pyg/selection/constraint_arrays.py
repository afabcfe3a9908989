"""The arrays a selection solver reads from :class:`~dynst_pyg.selection.SelectionConstraints`.

:class:`ConstraintArrays` is the one read-only view through which the greedy solver of
:mod:`~dynst_pyg.selection.rules` sees costs, budget, regions and protected sensors, so that no
solver reads the constraints' private fields; it also holds the region arithmetic (deficits and
the cheapest completion) that both use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

__all__ = ["ConstraintArrays"]


@dataclass(frozen=True)
class ConstraintArrays:
    """:class:`SelectionConstraints` laid out as read-only numpy arrays for a network of ``N`` sensors:
    what a greedy solver (:class:`~dynst_pyg.selection.rules.GreedySelection`) reads, made by
    :meth:`SelectionConstraints.arrays`.

    Args:
        costs (numpy.ndarray or None): float64 ``[N]`` cost per sensor, :obj:`None` without costs.
        budget (float or None): largest total kept cost, :obj:`None` without a budget.
        codes (numpy.ndarray or None): int64 ``[N]`` region index per sensor, :obj:`None` without regions.
        minima (numpy.ndarray): int64 ``[R]`` minimum kept sensors per region (empty without regions).
        labels (tuple of str): the ``R`` region labels, in the order of :obj:`codes`.
        protected (numpy.ndarray): bool ``[N]``, the protected sensors.
    """

    costs: Optional[np.ndarray]
    budget: Optional[float]
    codes: Optional[np.ndarray]
    minima: np.ndarray
    labels: Tuple[str, ...]
    protected: np.ndarray

    def deficits(self, kept: np.ndarray) -> np.ndarray:
        """Sensors still missing per region for the kept bool array (empty without regions)."""
        if self.codes is None:
            return np.zeros(0, dtype=np.int64)
        have = np.bincount(self.codes[kept], minlength=len(self.labels))
        return np.maximum(self.minima - have, 0)

    def completion(self, kept: np.ndarray, pool: np.ndarray,
                   costs: np.ndarray) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]], Optional[int]]:
        """The cheapest completion of the kept bool array ``kept`` from the bool array ``pool``.

        Returns the deficit per region, the pairs ``(region, indices)`` of the cheapest missing
        sensors added per short region (cheapest first, ties: lower index), and, when nothing is
        kept or missing, the cheapest pool sensor (a selection keeps at least one), else :obj:`None`.

        Raises:
            ValueError: naming the region, when too few candidates are left to reach its minimum.
        """
        d = self.deficits(kept)
        picks = []
        for j in np.flatnonzero(d):
            cand = np.flatnonzero(pool & ~kept & (self.codes == j))
            if cand.size < d[j]:
                raise ValueError(f"region {self.labels[j]!r} needs {int(d[j])} more sensor(s) to reach its "
                                 f"minimum {int(self.minima[j])}, but only {cand.size} candidate(s) are left")
            picks.append((int(j), cand[np.argsort(costs[cand], kind="stable")[: d[j]]]))
        extra = None
        if not kept.any() and not d.any():
            cand = np.flatnonzero(pool)
            if cand.size == 0:
                raise ValueError("no candidate sensor is left to keep")
            extra = int(cand[np.argmin(costs[cand])])
        return d, picks, extra

