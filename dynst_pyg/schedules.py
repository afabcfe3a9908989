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
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ["num_to_keep", "top_k_mask", "Schedule", "OneShot", "Iterative", "DropRegrow", "make_schedule"]


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


class Schedule:
    """Base class. Subclasses implement :meth:`step`.

    Args:
        sparsity (float, optional): Target fraction of sensors removed.
        budget (int, optional): Target number of sensors kept (instead of ``sparsity``).
        protected (sequence of int, optional): Sensors that are never pruned.
    """

    name = "schedule"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None) -> None:
        if sparsity is None and budget is None:
            raise ValueError("give a target: `sparsity` or `budget`")
        if sparsity is not None:
            num_to_keep(10, sparsity=sparsity)  # validates the range
        self.sparsity = sparsity
        self.budget = budget
        self.protected = None if protected is None else sorted({int(p) for p in protected})

    def target_kept(self, num_nodes: int) -> int:
        k = num_to_keep(num_nodes, self.sparsity, self.budget)
        return max(k, len(self.protected or []))

    def protected_mask(self, num_nodes: int) -> Tensor:
        m = torch.zeros(num_nodes, dtype=torch.bool)
        if self.protected:
            p = torch.tensor(self.protected)
            if int(p.min()) < 0 or int(p.max()) >= num_nodes:
                raise ValueError(f"`protected` sensors must lie in 0..{num_nodes - 1}, got {self.protected}")
            m[p] = True
        return m

    def step(self, t: int, total: int, scores: Tensor, regrow: Tensor, active: Tensor) -> Optional[Tensor]:
        raise NotImplementedError

    def prune_to(self, k: int, scores: Tensor, active: Tensor) -> Tensor:
        """The ``k`` best-scoring active sensors (protected ones always among them)."""
        return top_k_mask(scores, k, candidates=active, forced=self.protected_mask(active.numel()) & active)

    def __repr__(self) -> str:
        tgt = f"sparsity={self.sparsity}" if self.sparsity is not None else f"budget={self.budget}"
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
                 protected: Optional[Sequence[int]] = None, at: Optional[int] = None) -> None:
        super().__init__(sparsity, budget, protected)
        self.at = None if at is None else int(at)

    def step(self, t, total, scores, regrow, active):
        last = max(total - 1, 0)
        if t != (last if self.at is None else min(self.at, last)):
            return None
        return self.prune_to(self.target_kept(active.numel()), scores, active)


class Iterative(Schedule):
    """``rounds`` prunings on the cubic sparsity ramp over the first ``ramp_end`` of the search.

    Args:
        rounds (int, optional): Number of pruning rounds ``R`` (default: ``5``).
        ramp_end (float, optional): Fraction of the search by which the target is reached
            (default: ``0.75``).
    """

    name = "iterative"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None, rounds: int = 5, ramp_end: float = 0.75) -> None:
        super().__init__(sparsity, budget, protected)
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"`rounds` must be a positive integer, got {rounds!r}")
        if not 0.0 < ramp_end <= 1.0:
            raise ValueError(f"`ramp_end` must lie in (0, 1], got {ramp_end!r}")
        self.rounds = rounds
        self.ramp_end = ramp_end

    def round_steps(self, total: int) -> list[int]:
        """Search steps at which rounds ``1..R`` happen (round ``R`` no later than ``ramp_end``)."""
        end = max(0, min(total - 1, int(math.floor(self.ramp_end * total)) - 1))
        return [int(round(end * r / self.rounds)) for r in range(1, self.rounds + 1)]

    def kept_after_round(self, r: int, num_nodes: int) -> int:
        """Sensors kept after round ``r`` (cubic ramp from ``N`` to the target)."""
        k_final = self.target_kept(num_nodes)
        frac = 1.0 - (1.0 - r / self.rounds) ** 3
        return int(round(num_nodes - frac * (num_nodes - k_final)))

    def step(self, t, total, scores, regrow, active):
        steps = self.round_steps(total)
        if t not in steps:
            return None
        r = max(i + 1 for i, s in enumerate(steps) if s == t)
        k = self.kept_after_round(r, active.numel())
        if k >= int(active.sum()):
            return None
        return self.prune_to(k, scores, active)


class DropRegrow(Schedule):
    """Fixed budget with periodic swaps of weak active sensors for promising inactive ones.

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
                 freeze_at: float = 0.75, start_at: float = 0.25) -> None:
        super().__init__(sparsity, budget, protected)
        if interval is not None and (not isinstance(interval, int) or interval < 1):
            raise ValueError(f"`interval` must be a positive integer or None, got {interval!r}")
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

    def step(self, t, total, scores, regrow, active):
        n = active.numel()
        k_target = self.target_kept(n)
        t0 = self.start_step(total)
        if t < t0:
            return None  # measuring with every sensor present
        if t == t0 or int(active.sum()) != k_target:
            return self.prune_to(k_target, scores, active)
        if (t - t0) % self.interval_for(total) != 0:
            return None
        frac = self.swap_fraction(t, total)
        if frac <= 0:
            return None
        prot = self.protected_mask(n)
        droppable = active & ~prot
        inactive = ~active
        k = min(int(math.ceil(frac * k_target)), int(droppable.sum()), int(inactive.sum()))
        if k <= 0:
            return None
        drop = top_k_mask(-scores.double(), k, candidates=droppable)
        grow = top_k_mask(regrow, k, candidates=inactive)
        new = (active & ~drop) | grow
        return new


SCHEDULES = {"oneshot": OneShot, "iterative": Iterative, "dropregrow": DropRegrow}


def make_schedule(name: str, sparsity: Optional[float] = None, budget: Optional[int] = None,
                  protected: Optional[Sequence[int]] = None, **kwargs) -> Schedule:
    """Builds a schedule by name: ``"oneshot"``, ``"iterative"`` or ``"dropregrow"``."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in SCHEDULES:
        raise ValueError(f"`name` must be one of {sorted(SCHEDULES)}, got {name!r}")
    return SCHEDULES[key](sparsity=sparsity, budget=budget, protected=protected, **kwargs)
