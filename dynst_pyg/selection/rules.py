"""The one selection rule every schedule and selector goes through, and the count of kept sensors.

:func:`constrained_top_k` keeps the best sensors by score while obeying a
:class:`~dynst_pyg.selection.SelectionConstraints`. The cheapest way to meet the region minima
is found exactly: regions are disjoint, so it is the protected sensors plus, in every region,
the cheapest sensors that are still missing. This is what makes the greedy rule of
:class:`GreedySelection` safe: a sensor is only added when the protected sensors, the sensors
added so far, the new one and the cheapest completion of the region minima still fit into both
the count ``K`` and the cost budget ``B``. :func:`num_to_keep` turns a sparsity or a budget in
sensors into ``K``.

Example:
    >>> c = SelectionConstraints(costs=[1., 1., 5., 1.], cost_budget=3.0,
    ...                          regions=["a", "a", "b", "b"], min_per_region=1)
    >>> constrained_top_k(torch.tensor([.9, .8, .7, .1]), 3, c).tolist()
    [True, True, False, True]
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .._checks import check_positive_int, check_scores
from ._args import COST_RTOL, BoolLike, bool_array, fits, fmt_cost
from .constraints import SelectionConstraints

__all__ = ["COST_RTOL", "num_to_keep", "top_k_mask", "GreedySelection", "constrained_top_k", "merge_protected"]


def num_to_keep(num_nodes: int, sparsity: Optional[float] = None, budget: Optional[int] = None) -> int:
    """Sensors kept for a ``sparsity`` in ``[0, 1)`` or a ``budget`` in ``[1, N]`` (exactly one of them)."""
    if (sparsity is None) == (budget is None):
        raise ValueError("give exactly one of `sparsity` and `budget`")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= num_nodes:
            raise ValueError(f"`budget` must be an integer in [1, {num_nodes}], got {budget!r}")
        return budget
    s = float(sparsity)
    if not 0.0 <= s < 1.0 or math.isnan(s):
        raise ValueError(f"`sparsity` must lie in [0, 1), got {sparsity!r}")
    # the achieved sparsity never exceeds the requested one (same rule as SensorMask.from_scores)
    return max(1, num_nodes - int(math.floor(s * num_nodes + 1e-9)))


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
        a = c.arrays(n)
        check_positive_int(k, "k", allow_none=True)
        self._n = n
        self._k = n if k is None else min(int(k), n)
        self._costs = a.costs if a.costs is not None else np.zeros(n)
        self._budget = a.budget if a.budget is not None else math.inf
        self._arrays = a
        kept = a.protected.copy()
        n_prot = int(kept.sum())
        if forced is not None:
            kept |= bool_array(forced, n, "forced")
        self._kept = kept
        self._pool = (np.ones(n, dtype=bool) if candidates is None else bool_array(candidates, n, "candidates")) & ~kept
        self._cache: Optional[np.ndarray] = None
        self._check_start(n_prot)

    def _completion(self) -> Tuple[np.ndarray, np.ndarray, float, bool]:
        """Deficit per region, the cost of the d-th cheapest pool sensor per region, the cost of the
        cheapest completion, and whether the selection is still empty with nothing else required
        (then one sensor, any, is missing)."""
        d, picks, extra = self._arrays.completion(self._kept, self._pool, self._costs)
        tau = np.zeros(0) if self._arrays.codes is None else np.full(len(self._arrays.labels), math.inf)
        total = 0.0
        for j, idx in picks:
            total += float(self._costs[idx].sum())
            tau[j] = self._costs[idx[-1]]
        empty = extra is not None
        if empty:
            total = float(self._costs[extra])
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
        if not fits(kept_cost, self._budget):
            raise ValueError(f"{who} sensors alone cost {fmt_cost(kept_cost)} > cost_budget {fmt_cost(self._budget)}")
        if empty and not fits(completion, self._budget):
            raise ValueError(f"cost_budget {fmt_cost(self._budget)} cannot pay for even the cheapest candidate sensor "
                             f"(cost {fmt_cost(completion)}); a selection keeps at least one sensor")
        if not fits(kept_cost + completion, self._budget):
            raise ValueError(f"meeting min_per_region at the cheapest costs {fmt_cost(kept_cost + completion)} "
                             f"({who} {fmt_cost(kept_cost)} + region minima {fmt_cost(completion)}) > cost_budget "
                             f"{fmt_cost(self._budget)}")

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
            elif self._arrays.codes is not None and d.any():
                codes = self._arrays.codes
                fills = d[codes] > 0
                increase = np.where(fills, np.maximum(self._costs - tau[codes], 0.0), self._costs)
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
    return c is not None and (c.cost_budget is not None or any(c.region_minima.values()))


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
    s = check_scores(scores)
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
            else torch.from_numpy(bool_array(candidates, n, "candidates"))
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
        c_costs = constraints.costs  # a copy per read
        costs = c_costs.numpy() if c_costs is not None else np.ones(n)
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
