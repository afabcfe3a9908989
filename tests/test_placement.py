"""Baseline selectors: each returns a SensorMask, and none can see val/test data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dynst_pyg.data import prepare
from dynst_pyg.data import SpatioTemporalDataset
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.placement.selectors import SELECTORS, QRSelector, make_selector, select_sensors


@pytest.fixture(scope="module")
def syn_splits():
    return prepare(synthetic_road_network(num_nodes=40, num_steps=600, redundant_fraction=0.3, seed=2))


def star(n=6):
    # node 0 is the hub of a star, 5 -> 4 a pendant edge
    src = [0] * (n - 1) + list(range(1, n))
    dst = list(range(1, n)) + [0] * (n - 1)
    return torch.tensor([src, dst])


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_returns_a_valid_mask(name, syn_splits):
    m = select_sensors(name, syn_splits, sparsity=0.5, seed=1)
    assert m.num_nodes == 40 and m.num_kept == 20 and m.method == name
    assert m.scores is not None and m.scores.shape == (40,)
    assert m.sensor_ids == syn_splits.dataset.sensor_id
    kept_scores = m.scores[m.keep]
    pruned_scores = m.scores[m.pruned]
    assert float(kept_scores.min()) >= float(pruned_scores.max())
    m2 = make_selector(name, budget=7, protected=[3]).fit(syn_splits).mask_
    assert m2.num_kept == 7 and 3 in m2.keep.tolist()


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_selectors_never_see_val_or_test(name, syn_splits):
    ds = syn_splits.dataset
    n = syn_splits.train_steps
    series = ds.series.clone()
    g = torch.Generator().manual_seed(0)
    series[n:] = torch.rand(series[n:].shape, generator=g) * 100  # scramble everything after training
    scrambled = prepare(ds.replace(series=series))
    a = select_sensors(name, syn_splits, sparsity=0.5)
    b = select_sensors(name, scrambled, sparsity=0.5)
    assert torch.equal(a.keep, b.keep) and torch.allclose(a.scores, b.scores)


def test_degree_and_pagerank_pick_the_hub():
    ds = SpatioTemporalDataset(torch.rand(300, 6, 1), star())
    sp = prepare(ds)
    for name in ("degree", "pagerank", "betweenness"):
        assert select_sensors(name, sp, budget=1).keep.tolist() == [0]


def test_random_is_seeded():
    sp = prepare(synthetic_road_network(num_nodes=30, num_steps=300))
    a = select_sensors("random", sp, sparsity=0.5, seed=3)
    b = select_sensors("random", sp, sparsity=0.5, seed=3)
    c = select_sensors("random", sp, sparsity=0.5, seed=4)
    assert a == b and a != c


def test_qr_picks_informative_sensors_on_low_rank_data():
    # rank-2 signal on 10 sensors: two "source" sensors carry independent signals, the others are
    # scaled copies with tiny weights; QR with 2 modes must pick one sensor per independent direction
    rng = np.random.default_rng(0)
    T = 400
    s1, s2 = rng.standard_normal(T), rng.standard_normal(T)
    cols = [s1 * 5, s2 * 5] + [0.1 * s1 + 0.1 * s2] * 8
    X = np.stack(cols, 1)[:, :, None] + 50
    ds = SpatioTemporalDataset(torch.tensor(X, dtype=torch.float32), star(10))
    m = QRSelector(budget=2).fit(prepare(ds)).mask_
    assert m.keep.tolist() == [0, 1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        make_selector("oracle", sparsity=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        make_selector("degree")
    ds = synthetic_road_network(num_nodes=20, num_steps=100)
    with pytest.raises(ValueError, match="train_steps"):
        make_selector("qr", sparsity=0.5).fit(ds)


# --------------------------------------------------------------------------- constraints
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dynst_pyg.selection.constraints import SelectionConstraints
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.placement.selectors import NotFittedError, RandomSelector, training_snapshots


def region_constraints(n, budget=None):
    g = torch.Generator().manual_seed(5)
    costs = (torch.rand(n, generator=g) * 4 + 0.5).double()
    regions = [f"r{i % 4}" for i in range(n)]
    c = SelectionConstraints(costs=costs, regions=regions, min_per_region=2, protected=[1, 7])
    return c.replace(cost_budget=budget if budget is not None else c.min_cost + 15.0)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_obeys_constraints(name, syn_splits):
    c = region_constraints(40)
    m = select_sensors(name, syn_splits, sparsity=0.5, seed=1, constraints=c)
    assert c.violations(m) == [] and m.num_kept <= 20 and m.method == name
    assert m.constraints == c and m.kept_cost == pytest.approx(c.kept_cost(m.bool_mask))
    assert SensorMask.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    # a cost budget alone is a target: as many sensors as it allows
    sel = make_selector(name, constraints=c, seed=1).fit(syn_splits)
    assert c.violations(sel.mask_) == [] and sel.mask_.num_kept > 8
    assert sel.mask_.kept_cost <= c.cost_budget + 1e-9


@pytest.fixture(scope="module")
def small_ds():
    return synthetic_road_network(num_nodes=20, num_steps=120, seed=3)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(sorted(SELECTORS)))
def test_selectors_satisfy_random_feasible_constraints(small_ds, seed, name):
    n = small_ds.num_nodes
    rng = np.random.default_rng(seed)
    regions = rng.choice(["a", "b", "c"], size=n).tolist()
    minima = {r: int(rng.integers(0, min(3, regions.count(r)) + 1)) for r in set(regions)}
    protected = rng.choice(n, size=int(rng.integers(0, 3)), replace=False).tolist()
    base = SelectionConstraints(costs=rng.integers(0, 5, size=n).astype(float), regions=regions,
                                min_per_region=minima, protected=protected)
    c = base.replace(cost_budget=base.min_cost + float(rng.integers(0, 12)))
    budget = int(rng.integers(c.min_count, n + 1))
    m = make_selector(name, budget=budget, constraints=c, seed=seed).fit(small_ds, train_steps=80).mask_
    assert c.violations(m) == [] and m.num_kept <= budget


def test_fitted_attributes_need_fit(syn_splits):
    sel = QRSelector(budget=3)
    with pytest.raises(NotFittedError, match="QRSelector is not fitted yet: call fit"):
        sel.mask_
    assert not hasattr(sel, "scores_")
    with pytest.raises(AttributeError, match="no attribute 'colour'"):
        sel.colour
    assert sel.fit(syn_splits) is sel and sel.mask_.num_kept == 3 and sel.scores_.shape == (40,)


def rank2_dataset(cols):
    X = np.stack(cols, 1)[:, :, None] + 50
    return SpatioTemporalDataset(torch.tensor(X, dtype=torch.float32), star(len(cols)))


def test_cost_aware_qr_keeps_the_cheap_one_of_two_redundant_sensors():
    # sensors 0 and 1 carry the same signal s1; 0 has a slightly larger loading but costs 10x more
    rng = np.random.default_rng(0)
    T = 400
    s1, s2 = rng.standard_normal(T), rng.standard_normal(T)
    cols = [s1 * 5.0, s1 * 4.9, s2 * 5.0] + [0.1 * s1 + 0.1 * s2] * 5
    sp = prepare(rank2_dataset(cols))
    assert QRSelector(budget=2).fit(sp).mask_.keep.tolist() == [0, 2]
    c = SelectionConstraints(costs=[10.0, 1.0, 1.0] + [1.0] * 5, cost_budget=11.0)
    assert QRSelector(budget=2, constraints=c, cost_penalty=0.0).fit(sp).mask_.keep.tolist() == [0, 2]
    assert QRSelector(budget=2, constraints=c).fit(sp).mask_.keep.tolist() == [1, 2]
    # a budget that cannot pay for sensor 0 excludes it even without a penalty
    tight = c.replace(cost_budget=3.0)
    assert QRSelector(budget=2, constraints=tight, cost_penalty=0.0).fit(sp).mask_.keep.tolist() == [1, 2]


def test_region_aware_qr_meets_minima_and_pivots_protected_first():
    rng = np.random.default_rng(1)
    T = 400
    s1, s2 = rng.standard_normal(T), rng.standard_normal(T)
    cols = [s1 * 5, s2 * 5] + [0.1 * s1 + 0.1 * s2] * 8
    sp = prepare(rank2_dataset(cols))
    c = SelectionConstraints(regions=["a", "a"] + ["b"] * 8, min_per_region={"b": 1})
    m = QRSelector(budget=2, constraints=c).fit(sp).mask_
    assert m.keep.tolist()[0] in (0, 1) and len(m.keep) == 2 and m.keep.tolist()[1] >= 2
    # a protected sensor is the first pivot; the next pivot complements it
    m = QRSelector(budget=2, protected=[1]).fit(sp).mask_
    assert m.keep.tolist() == [0, 1] and float(m.scores[1]) == 1.0


def test_qr_snapshots_ignore_missing_readings():
    series = torch.tensor([[1.0, 2.0], [0.0, 4.0], [3.0, 6.0], [9.0, 9.0]])[:, :, None]
    ds = SpatioTemporalDataset(series, star(2), null_value=0.0)
    X = training_snapshots(ds, train_steps=3)
    # sensor 0: the missing reading becomes the observed mean 2, then centring
    assert X[:, 0].tolist() == [-1.0, 0.0, 1.0] and X[:, 1].tolist() == [-2.0, 0.0, 2.0]
    # the missing cell changes nothing: same mask as the dataset with that cell at the sensor's mean
    full = SpatioTemporalDataset(torch.where(series == 0, torch.tensor(2.0), series), star(2))
    assert np.allclose(training_snapshots(full, 3), X)


def test_random_selector_ignores_costs_in_its_order():
    ds = synthetic_road_network(num_nodes=20, num_steps=100)
    c = SelectionConstraints(costs=[1.0] * 10 + [2.0] * 10, cost_budget=12.0)
    m = RandomSelector(constraints=c, seed=0).fit(ds, train_steps=60).mask_
    order = torch.sort(m.scores, descending=True, stable=True).indices.tolist()
    # walk the random order, keep whatever still fits
    spent, expect = 0.0, []
    for i in order:
        cost = 1.0 if i < 10 else 2.0
        if spent + cost <= 12.0:
            spent += cost
            expect.append(i)
    assert m.keep.tolist() == sorted(expect)


# --------------------------------------------------------------------------- backward elimination
from dynst_pyg.models import GraphWaveNet  # noqa: E402
from dynst_pyg.placement import BackwardEliminationSelector, elimination_order, training_moments  # noqa: E402
from dynst_pyg.training import DynSTConfig, DynSTTrainer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_splits():
    return prepare(synthetic_road_network(num_nodes=24, num_steps=500, redundant_fraction=0.3, seed=1))


def _dynst_default_search(splits, constraints=None):
    cfg = DynSTConfig(sparsity=0.5, schedule="oneshot", target="all", search_epochs=0, warmup_epochs=1,
                      max_batches=2, progress=False, constraints=constraints)
    factory = lambda: GraphWaveNet(24, profile="small", residual_channels=8, dilation_channels=8,  # noqa: E731
                                   skip_channels=16, end_channels=16)
    return DynSTTrainer(factory, splits, cfg).search()


def test_backward_elimination_is_dynsts_default_importance(tiny_splits):
    # DynST's default importance (target="all", recon_weight=1) is the reconstruction value alone:
    # its one-shot mask is the classical selector's, with or without constraints
    dynst = _dynst_default_search(tiny_splits)
    be = select_sensors("backward-elimination", tiny_splits, sparsity=0.5)
    assert be.num_kept == 12 and be.method == "backward-elimination"
    assert torch.equal(be.keep, dynst.keep)
    # a region of the 4 sensors the elimination ranks lowest must keep 2, and its worst sensor is protected
    low = torch.argsort(be.scores)[:4].tolist()
    regions = ["low" if i in low else "rest" for i in range(24)]
    c = SelectionConstraints(regions=regions, min_per_region={"low": 2}, protected=[low[0]])
    dynst_c = _dynst_default_search(tiny_splits, c)
    be_c = select_sensors("backward-elimination", tiny_splits, sparsity=0.5, constraints=c)
    assert c.violations(be_c) == [] and not torch.equal(be_c.keep, be.keep)
    assert torch.equal(be_c.keep, dynst_c.keep)


def test_backward_elimination_scores_are_the_elimination_positions(tiny_splits):
    sel = BackwardEliminationSelector(budget=5).fit(tiny_splits)
    assert sel.horizons_ == (1, 3, 6, 12)  # t_out = 12
    series, valid = tiny_splits.train_series()
    gram, second = training_moments(series, valid, (1, 3, 6, 12))
    expected = elimination_order(gram, torch.ones(24, dtype=torch.bool), 1e-3, second)
    assert torch.equal(sel.scores_, expected)
    assert sorted(sel.scores_.tolist()) == pytest.approx([(i + 1) / 24 for i in range(24)])
    assert sel.mask_.keep.tolist() == sorted(torch.argsort(expected, descending=True)[:5].tolist())
    # horizons beyond t_out are left out; none left means same-step reconstruction
    assert BackwardEliminationSelector(budget=5, horizons=(3, 24)).fit(tiny_splits).horizons_ == (3,)
    assert BackwardEliminationSelector(budget=5, horizons=(24,)).fit(tiny_splits).horizons_ == (0,)


def test_backward_elimination_bad_arguments():
    with pytest.raises(ValueError, match=r"^`horizons` must be a non-empty sequence of ints >= 0, got \(1, -3\)$"):
        BackwardEliminationSelector(sparsity=0.5, horizons=(1, -3))
    with pytest.raises(ValueError, match=r"^`ridge` must be a finite number >= 0, got -1\.0$"):
        BackwardEliminationSelector(sparsity=0.5, ridge=-1.0)
