"""Baseline selectors: each returns a SensorMask, and none can see val/test data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynst_pyg.datasets import SpatioTemporalDataset, synthetic_road_network
from dynst_pyg.placement import SELECTORS, QRSelector, make_selector, select_sensors


@pytest.fixture(scope="module")
def syn_splits():
    return synthetic_road_network(num_nodes=40, num_steps=600, redundant_fraction=0.3, seed=2).prepare()


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
    scrambled = ds.replace(series=series).prepare()
    a = select_sensors(name, syn_splits, sparsity=0.5)
    b = select_sensors(name, scrambled, sparsity=0.5)
    assert torch.equal(a.keep, b.keep) and torch.allclose(a.scores, b.scores)


def test_degree_and_pagerank_pick_the_hub():
    ds = SpatioTemporalDataset(torch.rand(300, 6, 1), star())
    sp = ds.prepare()
    for name in ("degree", "pagerank", "betweenness"):
        assert select_sensors(name, sp, budget=1).keep.tolist() == [0]


def test_random_is_seeded():
    sp = synthetic_road_network(num_nodes=30, num_steps=300).prepare()
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
    m = QRSelector(budget=2).fit(ds.prepare()).mask_
    assert m.keep.tolist() == [0, 1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        make_selector("oracle", sparsity=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        make_selector("degree")
    ds = synthetic_road_network(num_nodes=20, num_steps=100)
    with pytest.raises(ValueError, match="train_steps"):
        make_selector("qr", sparsity=0.5).fit(ds)
