"""Pure pruning schedules."""

from __future__ import annotations

import math

import pytest
import torch

from dynst_pyg.selection.schedules import DropRegrow, Iterative, OneShot, make_schedule, num_to_keep, top_k_mask


def test_num_to_keep_and_budget():
    assert num_to_keep(207, sparsity=0.5) == 104
    assert num_to_keep(207, sparsity=0.7) == 63
    assert num_to_keep(10, sparsity=0.0) == 10
    assert num_to_keep(10, budget=3) == 3
    for bad in (dict(sparsity=1.0), dict(sparsity=-0.1), dict(budget=0), dict(budget=11), {}, dict(sparsity=0.5, budget=3)):
        with pytest.raises(ValueError):
            num_to_keep(10, **bad)


def test_top_k_ties_prefer_lower_index_and_forced_count():
    s = torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_k_mask(s, 2).nonzero().view(-1).tolist() == [1, 2]
    forced = torch.tensor([True, False, False, False, False])
    assert top_k_mask(s, 2, forced=forced).nonzero().view(-1).tolist() == [0, 1]
    with pytest.raises(ValueError, match="NaN"):
        top_k_mask(torch.tensor([float("nan"), 1.0]), 1)


def test_oneshot_prunes_once_to_target_keeping_protected():
    N = 20
    scores = torch.arange(N, dtype=torch.float)
    act = torch.ones(N, dtype=torch.bool)
    sch = OneShot(sparsity=0.5, protected=[0])
    assert all(sch.step(t, 100, scores, scores, act) is None for t in range(99))
    assert OneShot(sparsity=0.5, at=3).step(3, 100, scores, scores, act) is not None
    new = sch.step(99, 100, scores, scores, act)
    assert int(new.sum()) == 10 and bool(new[0])
    assert new[11:].all() and not new[1:11].any()


def test_iterative_follows_cubic_ramp():
    N = 100
    sch = Iterative(sparsity=0.8, rounds=4, ramp_end=0.5)
    steps = sch.round_steps(200)
    assert steps[-1] <= 99 and steps == sorted(steps) and len(set(steps)) == 4
    kept = [sch.kept_after_round(r, N) for r in range(1, 5)]
    expected = [round(100 - (1 - (1 - r / 4) ** 3) * 80) for r in range(1, 5)]
    assert kept == expected and kept[-1] == 20
    # pruning happens only on round steps and is monotone; scores decide who goes
    scores = torch.rand(N, generator=torch.Generator().manual_seed(0))
    act = torch.ones(N, dtype=torch.bool)
    history = []
    for t in range(200):
        new = sch.step(t, 200, scores, scores, act)
        if new is not None:
            assert t in steps
            assert not (new & ~act).any()  # never regrows
            act = new
            history.append(int(act.sum()))
    assert history == kept
    assert set(act.nonzero().view(-1).tolist()) == set(scores.topk(20).indices.tolist())


def test_dropregrow_swaps_decay_and_freeze():
    N, total = 50, 100
    sch = DropRegrow(sparsity=0.6, interval=10, alpha=0.4, freeze_at=0.75, start_at=0.0)
    assert sch.swap_fraction(0, total) == pytest.approx(0.4)
    assert sch.swap_fraction(37.5, total) == pytest.approx(0.2)
    assert sch.swap_fraction(80, total) == 0.0
    g = torch.Generator().manual_seed(1)
    scores = torch.rand(N, generator=g)
    regrow = torch.rand(N, generator=g)
    act = sch.step(0, total, scores, regrow, torch.ones(N, dtype=torch.bool))
    assert int(act.sum()) == 20
    new = sch.step(10, total, scores, regrow, act)
    k = math.ceil(sch.swap_fraction(10, total) * 20)
    assert int(new.sum()) == 20 and int((act & ~new).sum()) == k
    dropped = (act & ~new).nonzero().view(-1)
    grown = (new & ~act).nonzero().view(-1)
    # the weakest active went, the best inactive (by regrow score) came
    assert set(dropped.tolist()) == set(torch.where(act, scores, torch.tensor(9.0)).topk(k, largest=False).indices.tolist())
    assert set(grown.tolist()) == set(torch.where(~act, regrow, torch.tensor(-1.0)).topk(k).indices.tolist())
    assert sch.step(11, total, scores, regrow, new) is None
    assert sch.step(80, total, scores, regrow, new) is None  # frozen


def test_dropregrow_never_drops_protected_and_budget():
    sch = DropRegrow(budget=5, protected=[0, 1], interval=1, alpha=1.0, start_at=0.0)
    scores = torch.tensor([0.0, 0.0] + [1.0] * 8)
    act = sch.step(0, 10, scores, scores, torch.ones(10, dtype=torch.bool))
    assert bool(act[0]) and bool(act[1]) and int(act.sum()) == 5
    for t in range(1, 7):
        new = sch.step(t, 10, scores, torch.rand(10), act)
        if new is not None:
            act = new
        assert bool(act[0]) and bool(act[1]) and int(act.sum()) == 5


def test_dropregrow_measures_first_then_swaps_on_an_automatic_interval():
    sch = DropRegrow(sparsity=0.5, alpha=0.5)  # start_at 0.25, interval 5 % of the search
    N, total = 20, 100
    act = torch.ones(N, dtype=torch.bool)
    scores = torch.arange(N, dtype=torch.float)
    assert all(sch.step(t, total, scores, scores, act) is None for t in range(25))
    act = sch.step(25, total, scores, scores, act)
    assert int(act.sum()) == 10 and sch.interval_for(total) == 5
    assert sch.step(27, total, scores, -scores, act) is None
    new = sch.step(30, total, scores, -scores, act)
    assert new is not None and int(new.sum()) == 10 and bool((new & ~act).any())


def test_make_schedule_and_errors():
    assert isinstance(make_schedule("drop-regrow", sparsity=0.5), DropRegrow)
    with pytest.raises(ValueError, match="name"):
        make_schedule("magic", sparsity=0.5)
    with pytest.raises(ValueError, match="sparsity"):
        OneShot(sparsity=1.5)
    with pytest.raises(ValueError, match="rounds"):
        Iterative(sparsity=0.5, rounds=0)
    # counts are checked by the one shared check: a bool or a float is not a count
    with pytest.raises(TypeError, match="`rounds` must be a positive int, got True"):
        Iterative(sparsity=0.5, rounds=True)
    with pytest.raises(TypeError, match="`interval` must be a positive int or None, got 2.0"):
        DropRegrow(sparsity=0.5, interval=2.0)
    with pytest.raises(ValueError, match="protected"):
        OneShot(sparsity=0.5, protected=[99]).step(0, 1, torch.ones(5), torch.ones(5), torch.ones(5, dtype=torch.bool))


# --------------------------------------------------------------------------- constraints
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dynst_pyg.selection.constraints import SelectionConstraints


def test_prune_to_is_public_and_protected_is_a_shortcut_for_constraints():
    sch = OneShot(budget=2, protected=[4])
    assert sch.constraints == SelectionConstraints(protected=[4]) and sch.protected == [4]
    out = sch.prune_to(2, torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]), torch.ones(5, dtype=torch.bool))
    assert out.nonzero().view(-1).tolist() == [0, 4]
    both = OneShot(budget=3, protected=[1], constraints=SelectionConstraints(protected=[0]))
    assert both.protected == [0, 1]
    assert OneShot(sparsity=0.5).protected is None


def test_target_kept_below_what_the_constraints_need_is_an_error():
    c = SelectionConstraints(regions=["a", "a", "b", "b", "c", "c"], min_per_region=1, protected=[0, 1])
    assert OneShot(budget=4, constraints=c).target_kept(6) == 4
    with pytest.raises(ValueError, match=r"budget=3 keeps 3 of 6 sensors, below the 4 the constraints need "
                                         r"\(2 protected \+ 2 to meet min_per_region\)"):
        OneShot(budget=3, constraints=c).target_kept(6)
    with pytest.raises(ValueError, match="give a target"):
        OneShot(constraints=c)
    with pytest.raises(ValueError, match="exactly one"):
        OneShot(sparsity=0.5, budget=3)


def test_oneshot_under_a_cost_budget_keeps_the_cheap_redundant_sensor():
    # sensors 0 and 1 are redundant; 0 scores a little higher but costs 10x more
    c = SelectionConstraints(costs=[10.0, 1.0, 1.0, 1.0, 1.0], cost_budget=3.0)
    sch = OneShot(budget=3, constraints=c)
    scores = torch.tensor([1.0, 0.95, 0.5, 0.4, 0.1])
    act = sch.step(0, 1, scores, scores, torch.ones(5, dtype=torch.bool))
    assert act.nonzero().view(-1).tolist() == [1, 2, 3] and sch.reached_target(act)
    # the cost budget alone is a target too: as many sensors as it allows
    act = OneShot(constraints=c).step(0, 1, scores, scores, torch.ones(5, dtype=torch.bool))
    assert act.nonzero().view(-1).tolist() == [1, 2, 3]


def test_iterative_ramps_the_cost_budget_and_keeps_the_final_budget_reachable():
    # region b: an expensive strong sensor (3) and a cheap weak one (4); only the cheap one fits the final budget.
    # Round 1 could afford sensor 3 and would drop sensor 4, leaving the final budget out of reach.
    c = SelectionConstraints(costs=[1.0, 1.0, 1.0, 9.0, 1.0, 1.0], cost_budget=4.0,
                             regions=["a", "a", "a", "b", "b", "a"], min_per_region={"b": 1})
    sch = Iterative(constraints=c, rounds=5, ramp_end=1.0)
    budgets = [sch.round_constraints(r, 6).cost_budget for r in range(1, 6)]
    assert all(a > b for a, b in zip(budgets, budgets[1:])) and budgets[-1] == 4.0
    assert budgets[0] == pytest.approx(4.0 + 0.8 ** 3 * 10.0)  # all sensors cost 14
    scores = torch.tensor([0.9, 0.8, 0.7, 5.0, 0.0, 0.1])
    act = torch.ones(6, dtype=torch.bool)
    history = []
    for t in range(30):
        new = sch.step(t, 30, scores, scores, act)
        if new is not None:
            assert not (new & ~act).any() and bool(new[4])  # the cheapest way to cover region b stays
            act = new
            history.append(act.nonzero().view(-1).tolist())
    assert history == [[0, 1, 2, 4, 5], [0, 1, 2, 4]] and c.is_satisfied(act) and sch.reached_target(act)


def test_dropregrow_swaps_never_break_a_region_minimum_or_the_budget():
    c = SelectionConstraints(costs=[1.0, 1.0, 1.0, 1.0, 3.0, 1.0], cost_budget=3.0,
                             regions=["a", "a", "b", "b", "b", "b"], min_per_region=1)
    sch = DropRegrow(budget=3, constraints=c, interval=1, alpha=1.0, start_at=0.0)
    scores = torch.tensor([0.1, 0.9, 0.8, 0.7, 0.0, 0.0])
    act = sch.step(0, 10, scores, scores, torch.ones(6, dtype=torch.bool))
    assert act.nonzero().view(-1).tolist() == [1, 2, 3]
    # sensor 1, the only one of region a, is the weakest now: it may not go; sensor 4 regrows best but is too dear
    scores = torch.tensor([0.5, 0.0, 0.8, 0.1, 0.0, 0.0])
    regrow = torch.tensor([0.0, 0.0, 0.0, 0.0, 9.0, 5.0])
    new = sch.step(1, 10, scores, regrow, act)
    assert new.nonzero().view(-1).tolist() == [1, 2, 5]
    assert c.is_satisfied(new)


SCHEDULE_CLASSES = [OneShot, Iterative, DropRegrow]


@st.composite
def schedule_problems(draw):
    n = draw(st.integers(4, 12))
    costs = [float(v) for v in draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))]
    regions = draw(st.lists(st.sampled_from("xyz"), min_size=n, max_size=n))
    minima = {r: draw(st.integers(0, min(2, regions.count(r)))) for r in set(regions)}
    protected = sorted(draw(st.sets(st.integers(0, n - 1), max_size=2)))
    base = SelectionConstraints(costs=costs, regions=regions, min_per_region=minima, protected=protected)
    budget = draw(st.one_of(st.none(), st.integers(0, 8).map(lambda s: base.min_cost + s)))
    c = base.replace(cost_budget=budget)
    k = draw(st.integers(max(1, c.min_count), n))
    seed = draw(st.integers(0, 10_000))
    return c, k, seed


@settings(max_examples=40, deadline=None)
@given(schedule_problems(), st.sampled_from(SCHEDULE_CLASSES))
def test_every_schedule_step_satisfies_random_feasible_constraints(problem, cls):
    c, k, seed = problem
    n = c.num_nodes
    kwargs = dict(interval=1, alpha=0.8, start_at=0.2) if cls is DropRegrow else {}
    if cls is Iterative:
        kwargs = dict(rounds=3, ramp_end=0.6)
    sch = cls(budget=k, constraints=c, **kwargs)
    g = torch.Generator().manual_seed(seed)
    act = torch.ones(n, dtype=torch.bool)
    total = 20
    pruned = False
    for t in range(total):
        scores, regrow = torch.rand(n, generator=g), torch.rand(n, generator=g)
        new = sch.step(t, total, scores, regrow, act)
        if new is not None:
            act = new
            pruned = True
            if cls is Iterative:
                # intermediate rounds: the ramped budget, the region minima and the protected sensors
                r = sch.round_steps(total).index(t) + 1
                assert sch.round_constraints(r, n).violations(act) == []
            else:
                assert c.violations(act) == [] and int(act.sum()) <= k
    assert pruned or (cls is Iterative and sch.reached_target(torch.ones(n, dtype=torch.bool)))
    if not sch.reached_target(act):  # what the trainer does after a search that did not reach the target
        act = sch.prune_to(sch.target_kept(n), torch.rand(n, generator=g), act)
    assert c.violations(act) == [] and sch.reached_target(act)


def test_dropregrow_skips_a_swap_no_inactive_sensor_can_complete():
    # the only sensor the zero budget pays for is the kept one: dropping it leaves nothing to regrow
    c = SelectionConstraints(costs=[0.0, 1.0, 1.0, 1.0], cost_budget=0.0)
    sch = DropRegrow(budget=1, constraints=c, interval=1, alpha=0.8, start_at=0.2)
    act = sch.step(4, 20, torch.tensor([0.1, 0.9, 0.8, 0.7]), torch.rand(4), torch.ones(4, dtype=torch.bool))
    assert act.tolist() == [True, False, False, False]
    for t in range(5, 20):
        assert sch.step(t, 20, torch.rand(4), torch.tensor([0.0, 1.0, 1.0, 1.0]), act) is None
