"""Pure pruning schedules."""

from __future__ import annotations

import math

import pytest
import torch

from dynst_pyg.schedules import DropRegrow, Iterative, OneShot, make_schedule, num_to_keep, top_k_mask


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
    with pytest.raises(ValueError, match="protected"):
        OneShot(sparsity=0.5, protected=[99]).step(0, 1, torch.ones(5), torch.ones(5), torch.ones(5, dtype=torch.bool))
