"""Pure pruning schedules: scores + step -> the active (kept) set.

Every schedule is a small object with no hidden state beyond its configuration; the
trainer calls :meth:`Schedule.step` once per optimisation step of the mask search with
the current importance scores, the regrow scores, and the current active set, and gets
back either a new active set or :obj:`None` (no change). Steps are counted from the start
of the search (``0 .. total - 1``).

* :class:`OneShot`: prune straight to the target once, by default at the end of the search.
* :class:`Iterative`: ``rounds`` prunings following the cubic ramp
  ``s_r = s * (1 - (1 - r / R)^3)`` (Zhu & Gupta), spread over the first ``ramp_end`` of the search.
* :class:`DropRegrow`: prune to the target at ``start_at`` of the search, then every ``interval`` steps drop the
  ``k`` weakest active sensors and regrow the ``k`` inactive sensors with the highest regrow
  score, ``k = ceil(alpha_t * K)`` with ``alpha_t = alpha / 2 * (1 + cos(pi * t / T_freeze))``;
  the mask freezes at ``freeze_at`` of the search.

Sensors in ``protected`` are always kept; a budget in sensors can replace the sparsity.
Every schedule takes ``constraints`` (:class:`~dynst_pyg.selection.SelectionConstraints`:
costs with a budget, region minima, protected sensors) and obeys them at every pruning and
every swap, through the one selection rule :func:`~dynst_pyg.selection.constrained_top_k`.
Under a cost budget the count target is an upper bound (see :meth:`Schedule.target_kept`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from .._checks import check_positive_int
from .constraints import SelectionConstraints
from .rules import constrained_top_k, merge_protected, num_to_keep, top_k_mask

__all__ = ["num_to_keep", "top_k_mask", "constrained_top_k", "Schedule", "OneShot", "Iterative", "DropRegrow",
           "make_schedule"]


class Schedule:
    """Base class. Subclasses implement :meth:`step`.

    Args:
        sparsity (float, optional): Target fraction of sensors removed.
        budget (int, optional): Target number of sensors kept (instead of ``sparsity``).
        protected (sequence of int, optional): Sensors that are never pruned; a shortcut for
            ``constraints=SelectionConstraints(protected=...)`` (merged with :obj:`constraints`).
        constraints (SelectionConstraints, optional): Costs with a budget, region minima and
            protected sensors obeyed by every pruning and every swap. With a cost budget the
            count target (:obj:`sparsity` / :obj:`budget`) is an upper bound and may be left out.
    """

    name = "schedule"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None,
                 constraints: Optional[SelectionConstraints] = None) -> None:
        constraints = merge_protected(constraints, protected)
        if sparsity is not None and budget is not None:
            raise ValueError("give exactly one of `sparsity` and `budget`")
        if sparsity is None and budget is None and (constraints is None or constraints.cost_budget is None):
            raise ValueError("give a target: `sparsity`, `budget` or constraints with a `cost_budget`")
        if sparsity is not None:
            num_to_keep(10, sparsity=sparsity)  # validates the range
        self.sparsity = sparsity
        self.budget = budget
        self.constraints = constraints

    @property
    def protected(self) -> Optional[list[int]]:
        """Sorted protected sensors, or :obj:`None` when there are none."""
        return (self.constraints.protected or None) if self.constraints is not None else None

    def target_kept(self, num_nodes: int) -> int:
        """Sensors kept at the end of the search for ``N = num_nodes`` sensors.

        Without a cost budget this is exact; under a cost budget it is an upper bound (the
        budget may allow fewer sensors), and ``N`` when only a cost budget is given.

        Raises:
            ValueError: if the count is below what the constraints need (protected sensors
                plus the region minima).
        """
        if self.sparsity is None and self.budget is None:
            k = num_nodes
        else:
            k = num_to_keep(num_nodes, self.sparsity, self.budget)
        if self.constraints is not None:
            need = self.constraints.check(num_nodes).min_count
            if k < need:
                tgt = f"sparsity={self.sparsity}" if self.sparsity is not None else f"budget={self.budget}"
                raise ValueError(f"{tgt} keeps {k} of {num_nodes} sensors, below the {need} the constraints need "
                                 f"({len(self.constraints.protected)} protected + "
                                 f"{need - len(self.constraints.protected)} to meet min_per_region)")
        return k

    def protected_mask(self, num_nodes: int) -> Tensor:
        """BoolTensor ``[N]`` of the protected sensors."""
        m = torch.zeros(num_nodes, dtype=torch.bool)
        if self.constraints is not None:
            p = self.constraints.check(num_nodes).protected
            m[p] = True
        return m

    def reached_target(self, active: Tensor) -> bool:
        """Whether ``active`` is a finished selection: on target and satisfying the constraints.

        On target means exactly :meth:`target_kept` sensors, or at most that many under a
        cost budget.
        """
        n = active.numel()
        k, count = self.target_kept(n), int(active.sum())
        if self.constraints is None:
            return count == k
        on_target = count <= k if self.constraints.cost_budget is not None else count == k
        return on_target and self.constraints.is_satisfied(active.cpu())

    def step(self, t: int, total: int, scores: Tensor, regrow: Tensor, active: Tensor) -> Optional[Tensor]:
        raise NotImplementedError

    def prune_to(self, k: int, scores: Tensor, active: Tensor) -> Tensor:
        """Keeps at most ``k`` of the ``active`` sensors, the best by ``scores`` under the constraints.

        The one selection rule :func:`~dynst_pyg.selection.constrained_top_k` restricted to
        the active sensors (protected sensors always stay).

        Args:
            k (int): Most sensors kept (exactly ``k`` without a cost budget).
            scores (Tensor): Importance per sensor ``[N]``.
            active (BoolTensor): Currently active sensors ``[N]``.

        Returns:
            BoolTensor ``[N]``, a subset of ``active`` plus the protected sensors.
        """
        return constrained_top_k(scores.detach().cpu(), k, self.constraints, candidates=active.cpu())

    def __repr__(self) -> str:
        if self.sparsity is not None:
            tgt = f"sparsity={self.sparsity}"
        elif self.budget is not None:
            tgt = f"budget={self.budget}"
        else:
            tgt = ""
        if self.constraints is not None:
            tgt = f"{tgt}, constraints={self.constraints!r}" if tgt else f"constraints={self.constraints!r}"
        return f"{type(self).__name__}({tgt})"


class OneShot(Schedule):
    """Prune to the target once, at search step ``at``.

    Args:
        at (int, optional): Search step of the pruning; :obj:`None` prunes at the last step,
            so the whole search measures importance with every sensor present
            (default: :obj:`None`).
    """

    name = "oneshot"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None, at: Optional[int] = None,
                 constraints: Optional[SelectionConstraints] = None) -> None:
        super().__init__(sparsity, budget, protected, constraints)
        self.at = None if at is None else int(at)

    def step(self, t, total, scores, regrow, active):
        last = max(total - 1, 0)
        if t != (last if self.at is None else min(self.at, last)):
            return None
        return self.prune_to(self.target_kept(active.numel()), scores, active)


class Iterative(Schedule):
    """``rounds`` prunings on the cubic sparsity ramp over the first ``ramp_end`` of the search.

    Under a cost budget ``B`` the budget follows the same ramp, from the cost ``C`` of all
    sensors: round ``r`` allows ``B + (1 - f_r) (C - B)`` with ``f_r = 1 - (1 - r / R)^3``.
    Rounds before the last also keep the cheapest selection that meets the region minima
    (:meth:`~dynst_pyg.selection.SelectionConstraints.cheapest_selection` among the active
    sensors), so the final budget can always still be met; the last round is free to replace it.

    Args:
        rounds (int, optional): Number of pruning rounds ``R`` (default: ``5``).
        ramp_end (float, optional): Fraction of the search by which the target is reached
            (default: ``0.75``).
    """

    name = "iterative"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None, rounds: int = 5, ramp_end: float = 0.75,
                 constraints: Optional[SelectionConstraints] = None) -> None:
        super().__init__(sparsity, budget, protected, constraints)
        check_positive_int(rounds, "rounds")
        if not 0.0 < ramp_end <= 1.0:
            raise ValueError(f"`ramp_end` must lie in (0, 1], got {ramp_end!r}")
        self.rounds = rounds
        self.ramp_end = ramp_end

    def round_steps(self, total: int) -> list[int]:
        """Search steps at which rounds ``1..R`` happen (round ``R`` no later than ``ramp_end``)."""
        end = max(0, min(total - 1, int(math.floor(self.ramp_end * total)) - 1))
        return [int(round(end * r / self.rounds)) for r in range(1, self.rounds + 1)]

    def _ramp(self, r: int) -> float:
        return 1.0 - (1.0 - r / self.rounds) ** 3

    def kept_after_round(self, r: int, num_nodes: int) -> int:
        """Sensors kept after round ``r`` (cubic ramp from ``N`` to the target)."""
        k_final = self.target_kept(num_nodes)
        return int(round(num_nodes - self._ramp(r) * (num_nodes - k_final)))

    def round_constraints(self, r: int, num_nodes: int) -> Optional[SelectionConstraints]:
        """The constraints of round ``r``: the cost budget on the cubic ramp, the rest unchanged."""
        c = self.constraints
        if c is None or c.cost_budget is None or r >= self.rounds:
            return c
        total = float(c.costs.sum())
        ramped = c.cost_budget + (1.0 - self._ramp(r)) * (total - c.cost_budget)
        return c.replace(cost_budget=max(c.cost_budget, ramped))

    def step(self, t, total, scores, regrow, active):
        steps = self.round_steps(total)
        if t not in steps:
            return None
        r = max(i + 1 for i, s in enumerate(steps) if s == t)
        n = active.numel()
        k = self.kept_after_round(r, n)
        cons = self.round_constraints(r, n)
        if int(active.sum()) <= k and (cons is None or cons.is_satisfied(active.cpu())):
            return None
        forced = None
        if r < self.rounds and self.constraints is not None and self.constraints.cost_budget is not None:
            forced = self.constraints.cheapest_selection(candidates=active.cpu()) & active.cpu()
        return constrained_top_k(scores.detach().cpu(), k, cons, candidates=active.cpu(), forced=forced)


class DropRegrow(Schedule):
    """Fixed budget with periodic swaps of weak active sensors for promising inactive ones.

    With constraints a swap never breaks them: a weak sensor is only dropped while its
    region stays at or above its minimum (and protected sensors never), and the regrowth is
    :func:`~dynst_pyg.selection.constrained_top_k` by regrow score over the inactive
    sensors, on top of the remaining ones, within the cost budget. Under a cost budget a
    swap may regrow fewer (or, up to the target, more) sensors than it dropped; a swap whose
    regrowth cannot meet the constraints (no inactive sensor fits) is skipped.

    Args:
        interval (int, optional): Steps ``delta`` between swaps; :obj:`None` = 5 % of the search
            (default: :obj:`None`).
        alpha (float, optional): Initial swap fraction of the active set (default: ``0.3``).
        freeze_at (float, optional): Fraction of the search after which the mask is frozen
            (default: ``0.75``).
        start_at (float, optional): Fraction of the search spent measuring with every sensor
            before the first pruning (default: ``0.25``).
    """

    name = "dropregrow"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None, interval: Optional[int] = None, alpha: float = 0.3,
                 freeze_at: float = 0.75, start_at: float = 0.25,
                 constraints: Optional[SelectionConstraints] = None) -> None:
        super().__init__(sparsity, budget, protected, constraints)
        check_positive_int(interval, "interval", allow_none=True)
        if not 0.0 <= start_at < freeze_at:
            raise ValueError(f"`start_at` must lie in [0, freeze_at), got {start_at!r}")
        self.start_at = start_at
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must lie in [0, 1], got {alpha!r}")
        if not 0.0 < freeze_at <= 1.0:
            raise ValueError(f"`freeze_at` must lie in (0, 1], got {freeze_at!r}")
        self.interval = interval
        self.alpha = alpha
        self.freeze_at = freeze_at

    def swap_fraction(self, t: int, total: int) -> float:
        """``alpha / 2 * (1 + cos(pi * t / T_freeze))`` before the freeze, ``0`` after."""
        t_freeze = self.freeze_at * total
        if t >= t_freeze or t_freeze <= 0:
            return 0.0
        return self.alpha / 2 * (1 + math.cos(math.pi * t / t_freeze))

    def start_step(self, total: int) -> int:
        """Search step of the first pruning (``start_at`` of the search)."""
        return int(math.floor(self.start_at * total))

    def interval_for(self, total: int) -> int:
        """Steps between swaps: ``interval``, or 5 % of the search when it is :obj:`None`."""
        return self.interval if self.interval is not None else max(1, int(round(0.05 * total)))

    def droppable(self, k: int, scores: Tensor, active: Tensor) -> Tensor:
        """The (at most) ``k`` weakest active sensors that can go without breaking a region minimum.

        Protected sensors never go; ties: lower index first.
        """
        n = active.numel()
        drop = torch.zeros(n, dtype=torch.bool)
        cand = active.cpu() & ~self.protected_mask(n)
        idx = cand.nonzero().view(-1)
        order = idx[torch.sort(scores.detach().cpu()[idx].double(), stable=True).indices]
        c = self.constraints
        spare = None
        if c is not None and c.regions is not None:
            minima = c.region_minima
            labels = c.regions
            have: dict[str, int] = {}
            for i in active.cpu().nonzero().view(-1).tolist():
                have[labels[i]] = have.get(labels[i], 0) + 1
            spare = {lab: have.get(lab, 0) - m for lab, m in minima.items()}
        taken = 0
        for i in order.tolist():
            if taken >= k:
                break
            if spare is not None:
                lab = labels[i]
                if spare[lab] <= 0:
                    continue
                spare[lab] -= 1
            drop[i] = True
            taken += 1
        return drop

    def step(self, t, total, scores, regrow, active):
        n = active.numel()
        k_target = self.target_kept(n)
        t0 = self.start_step(total)
        if t < t0:
            return None  # measuring with every sensor present
        if t == t0 or not self.reached_target(active):
            return self.prune_to(k_target, scores, active)
        if (t - t0) % self.interval_for(total) != 0:
            return None
        frac = self.swap_fraction(t, total)
        if frac <= 0:
            return None
        active = active.cpu()
        inactive = ~active
        k = min(int(math.ceil(frac * k_target)), int(inactive.sum()))
        if k <= 0:
            return None
        drop = self.droppable(k, scores, active)
        if not bool(drop.any()):
            return None
        rest = active & ~drop
        grow_to = min(k_target, int(rest.sum()) + int(drop.sum()))
        try:
            return constrained_top_k(regrow.detach().cpu(), grow_to, self.constraints, candidates=inactive,
                                     forced=rest)
        except ValueError:
            return None  # no inactive sensor can replace the dropped ones under the constraints: no swap


SCHEDULES = {"oneshot": OneShot, "iterative": Iterative, "dropregrow": DropRegrow}


def make_schedule(name: str, sparsity: Optional[float] = None, budget: Optional[int] = None,
                  protected: Optional[Sequence[int]] = None,
                  constraints: Optional[SelectionConstraints] = None, **kwargs) -> Schedule:
    """Builds a schedule by name: ``"oneshot"``, ``"iterative"`` or ``"dropregrow"``.

    Args:
        name (str): The schedule.
        sparsity, budget, protected, constraints: As in :class:`Schedule`.
        **kwargs: The schedule's own options (``rounds``, ``interval``, ...).
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key not in SCHEDULES:
        raise ValueError(f"`name` must be one of {sorted(SCHEDULES)}, got {name!r}")
    return SCHEDULES[key](sparsity=sparsity, budget=budget, protected=protected, constraints=constraints, **kwargs)
