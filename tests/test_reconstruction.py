"""Reconstruction value: moments, exact backward elimination, graph clusters and the local method."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dynst_pyg.scoring.reconstruction as rec
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.graph import graph_clusters
from dynst_pyg.placement import elimination_order, training_moments
from dynst_pyg.scoring.reconstruction import ReconstructionValue


def _brute_force_order(x, active, horizons, ridge=1e-3):
    """Greedy backward elimination with explicit inverses (the definition)."""
    xc = x - x.mean(0)
    t = x.size(0) - max(horizons)
    a_mat, y = xc[:t], torch.cat([xc[h:h + t] for h in horizons], 1)
    a = [i for i in range(x.size(1)) if active[i]]
    gram = a_mat.t() @ a_mat
    lam = ridge * gram[a][:, a].diagonal().mean()
    order = []
    while a:
        gi = torch.linalg.inv(gram[a][:, a] + lam * torch.eye(len(a), dtype=x.dtype))
        b = gi @ (a_mat[:, a].t() @ y)
        val = (b ** 2).sum(1) / gi.diagonal()
        j = a[int(val.argmin())]
        order.append(j)
        a.remove(j)
    return order


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = torch.argsort(torch.argsort(a)).double()
    rb = torch.argsort(torch.argsort(b)).double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def _path(n: int) -> torch.Tensor:
    s = torch.arange(n - 1)
    return torch.cat([torch.stack([s, s + 1]), torch.stack([s + 1, s])], 1)


# ---------------------------------------------------------------- exact elimination (moved from test_gate)
@pytest.mark.parametrize("horizons", [(0,), (1, 3)])
def test_elimination_order_matches_explicit_greedy(horizons):
    torch.manual_seed(0)
    x = torch.randn(300, 12, dtype=torch.float64) @ torch.randn(12, 12, dtype=torch.float64)
    active = torch.ones(12, dtype=torch.bool)
    active[[3, 7]] = False
    gram, second = training_moments(x, horizons=horizons)
    score = elimination_order(gram, active, second=second)
    assert score[~active].eq(0).all() and score[active].gt(0).all()
    got = [i for i in torch.argsort(score).tolist() if active[i]]
    assert got == _brute_force_order(x, active, horizons)
    assert float(score.max()) == pytest.approx(1.0)


def test_predictive_elimination_drops_noisy_mixes_before_their_sources():
    # sources are persistent AR(1) signals; each mix is their average plus white noise. Same-step
    # reconstruction values the mix (it must reproduce its noise); future-step values the sources.
    g = torch.Generator().manual_seed(1)
    t, n_src = 3000, 6
    src = torch.zeros(t, n_src, dtype=torch.float64)
    eps = torch.randn(t, n_src, generator=g, dtype=torch.float64)
    for i in range(1, t):
        src[i] = 0.97 * src[i - 1] + eps[i]
    mixes = [(src[:, i] + src[:, (i + 1) % n_src]) / 2 + 2.0 * torch.randn(t, generator=g, dtype=torch.float64)
             for i in range(n_src)]
    x = torch.cat([src, torch.stack(mixes, 1)], 1)
    active = torch.ones(2 * n_src, dtype=torch.bool)
    gram, second = training_moments(x, horizons=(1, 3, 6))
    keep = torch.argsort(elimination_order(gram, active, second=second), descending=True)[:n_src]
    assert sorted(keep.tolist()) == list(range(n_src))


def test_training_moments_handles_invalid_readings_and_bad_input():
    x = torch.randn(50, 4)
    valid = torch.ones(50, 4, dtype=torch.bool)
    valid[5, 2] = False
    x2 = x.clone()
    x2[5, 2] = 1e6  # ignored: replaced by the sensor's mean
    g1, _ = training_moments(x2, valid)
    mean2 = x[valid[:, 2], 2].mean()
    x3 = x.clone()
    x3[5, 2] = mean2
    g3, _ = training_moments(x3)
    assert torch.allclose(g1, g3, atol=1e-8)
    with pytest.raises(ValueError, match="horizons"):
        training_moments(x, horizons=(-1,))
    with pytest.raises(ValueError, match="too few"):
        training_moments(x, horizons=(60,))
    with pytest.raises(ValueError, match="valid"):
        training_moments(x, torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="active"):
        elimination_order(g1, torch.ones(4))


# ---------------------------------------------------------------- graph clusters
def test_graph_clusters_of_a_path_are_intervals():
    # BFS from the far end of a path orders it; cuts at the middle of each share
    assert [c.tolist() for c in graph_clusters(_path(8), 8, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [c.tolist() for c in graph_clusters(_path(7), 7, 3)] == [[0, 1], [2, 3, 4], [5, 6]]
    assert [c.tolist() for c in graph_clusters(_path(5), 5, 5)] == [[0, 1, 2, 3, 4]]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), m=st.integers(1, 20), p=st.floats(0.0, 0.3), seed=st.integers(0, 10_000))
def test_graph_clusters_partition_with_bounded_sizes(n, m, p, seed):
    g = torch.Generator().manual_seed(seed)
    ei = (torch.rand(n, n, generator=g) < p).nonzero().t()
    clusters = graph_clusters(ei, n, m)
    flat = torch.cat(clusters)
    assert sorted(flat.tolist()) == list(range(n))  # disjoint and covering
    sizes = [c.numel() for c in clusters]
    assert max(sizes) <= m
    assert len(clusters) == math.ceil(n / m)  # as few clusters as the size bound allows
    if n > m:
        assert min(sizes) >= m // 2


def test_graph_clusters_bad_input():
    with pytest.raises(ValueError, match="max_size"):
        graph_clusters(_path(4), 4, 0)
    with pytest.raises(ValueError, match="num_nodes"):
        graph_clusters(_path(4), 0, 2)
    with pytest.raises(ValueError, match="edge_index"):
        graph_clusters(_path(5), 4, 2)


# ---------------------------------------------------------------- ReconstructionValue
def _series(n: int = 30, t: int = 400, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, n, 2, generator=g, dtype=torch.float64)
    x = x + 0.8 * torch.roll(x, 1, dims=1)  # neighbours on the ring are correlated
    valid = torch.rand(t, n, 2, generator=g) > 0.05
    s = torch.arange(n)
    ring = torch.cat([torch.stack([s, (s + 1) % n]), torch.stack([(s + 1) % n, s])], 1)
    return x, valid, ring


def test_exact_method_equals_elimination_order_on_training_moments():
    x, valid, ring = _series()
    active = torch.rand(30, generator=torch.Generator().manual_seed(3)) < 0.7
    value = ReconstructionValue(x, valid, horizons=(1, 3), ridge=1e-2, method="exact")
    gram, second = training_moments(x, valid, horizons=(1, 3))
    assert torch.equal(value.scores(active), elimination_order(gram, active, 1e-2, second))
    assert value.method == "exact" and len(value.clusters) == 1


@pytest.mark.parametrize("halo", [0, 2])
def test_local_method_with_one_cluster_equals_exact(halo):
    x, valid, ring = _series()
    active = torch.rand(30, generator=torch.Generator().manual_seed(4)) < 0.6
    exact = ReconstructionValue(x, valid, horizons=(0, 2), method="exact")
    local = ReconstructionValue(x, valid, horizons=(0, 2), edge_index=ring, method="local", cluster_size=30, halo=halo)
    assert len(local.clusters) == 1
    assert torch.equal(local.scores(active), exact.scores(active))
    assert torch.equal(local.scores(torch.ones(30, dtype=torch.bool)), exact.scores(torch.ones(30, dtype=torch.bool)))


def test_local_method_on_independent_blocks_merges_like_one_greedy_elimination():
    # two components observed at disjoint times, each centred: the moments are exactly block-diagonal,
    # removing a sensor of one block leaves the other block's increases unchanged, so the global greedy
    # elimination interleaves the blocks' own eliminations, which is what the local method computes
    x = _series(n=10, t=300, seed=5)[0]
    x2 = _series(n=10, t=300, seed=6)[0]
    x, x2 = x - x.mean(0), x2 - x2.mean(0)
    z = torch.zeros_like(x)
    both = torch.cat([torch.cat([x, z], 0), torch.cat([z, x2], 0)], 1)  # [600, 20, 2]
    ring = _series(n=10)[2]
    ring = torch.cat([ring, ring + 10], 1)
    active = torch.ones(20, dtype=torch.bool)
    active[[2, 13]] = False
    exact = ReconstructionValue(both, horizons=(0,), method="exact")
    local = ReconstructionValue(both, horizons=(0,), edge_index=ring, method="local", cluster_size=10, halo=3)
    assert [c.tolist() for c in local.clusters] == [list(range(10)), list(range(10, 20))]
    s_exact, s_local = exact.scores(active), local.scores(active)
    assert torch.equal(s_local, s_exact)
    # and it is a real interleaving, not one block after the other
    first_half = torch.argsort(s_exact)[2:11]
    assert 0 < int((first_half < 10).sum()) < 9


def test_scores_are_positions_and_cached_on_the_active_set(monkeypatch):
    x, valid, ring = _series()
    value = ReconstructionValue(x, valid, edge_index=ring, method="local", cluster_size=8, halo=1)
    calls = []
    real = rec.eliminate
    monkeypatch.setattr(rec, "eliminate", lambda *a: calls.append(1) or real(*a))
    active = torch.ones(30, dtype=torch.bool)
    active[:5] = False
    s = value.scores(active)
    assert s[:5].eq(0).all()
    assert sorted(s[5:].tolist()) == pytest.approx([(i + 1) / 25 for i in range(25)])
    n_calls = len(calls)
    assert n_calls == len(value.clusters)
    s[:] = -1.0  # the caller's copy; the cache is not affected
    again = value.scores(active.clone())
    assert len(calls) == n_calls and again.min() == 0.0
    active[7] = False
    value.scores(active)
    assert len(calls) == 2 * n_calls


def test_auto_picks_by_size_and_rows_and_never_skips_silently():
    x, valid, ring = _series(n=30, t=400)  # 399 rows: 30 sensors are well posed for the exact method
    assert ReconstructionValue(x, exact_max_nodes=30).method == "exact"
    local = ReconstructionValue(x, edge_index=ring, exact_max_nodes=29, cluster_size=8)
    assert local.method == "local" and len(local.clusters) == 4
    assert ReconstructionValue(x, edge_index=ring, exact_max_nodes=29).cluster_size == 66  # 399 // 6
    with pytest.raises(ValueError, match="edge_index"):
        ReconstructionValue(x, exact_max_nodes=29)
    with pytest.warns(UserWarning, match="O\\(N\\^3\\)"):
        ReconstructionValue(x, method="exact", exact_max_nodes=29)
    # 30 sensors for 99 rows (< 4 per sensor): auto goes local with a graph, warns without one
    short = x[:100]
    assert ReconstructionValue(short, edge_index=ring).method == "local"
    with pytest.warns(UserWarning, match="overfit"):
        assert ReconstructionValue(short).method == "exact"


def test_local_agrees_with_exact_on_a_planted_network():
    # 300 sensors, 1,406 training rows (exact is well posed), 5 clusters of <= 64 sensors: the orders
    # agree in Spearman rank correlation >= 0.8 (0.85 measured), the bottom 30 % in >= 95 % of its
    # sensors (98 %), and both rank >= 95 % of the planted redundant sensors in the bottom (99 %)
    ds = synthetic_road_network(num_nodes=300, num_steps=2016, seed=0)
    series = ds.series[:1418]
    series = (series - series.mean()) / series.std()
    planted = ds.meta["redundant"]
    kw = dict(horizons=(1, 3, 6, 12), edge_index=ds.edge_index)
    exact = ReconstructionValue(series, method="exact", **kw)
    local = ReconstructionValue(series, method="local", cluster_size=64, **kw)
    assert exact.num_rows == 1406 and len(local.clusters) == 5 and max(c.numel() for c in local.clusters) <= 64
    full = torch.ones(300, dtype=torch.bool)
    se, sl = exact.scores(full), local.scores(full)
    assert _spearman(se, sl) >= 0.8
    bottom = int(0.3 * 300)
    overlap = torch.isin(torch.argsort(sl)[:bottom], torch.argsort(se)[:bottom]).float().mean()
    assert overlap >= 0.95
    for s in (se, sl):
        assert torch.isin(planted, torch.argsort(s)[:planted.numel()]).float().mean() >= 0.95


def test_reconstruction_value_bad_input():
    x, valid, ring = _series(n=10)
    with pytest.raises(ValueError, match="method"):
        ReconstructionValue(x, method="fast")
    with pytest.raises(ValueError, match="edge_index"):
        ReconstructionValue(x, method="local")
    with pytest.raises(ValueError, match="ridge"):
        ReconstructionValue(x, ridge=-1.0)
    with pytest.raises(ValueError, match="cluster_size"):
        ReconstructionValue(x, edge_index=ring, cluster_size=0)
    with pytest.raises(ValueError, match="valid"):
        ReconstructionValue(x, valid.float())
    with pytest.raises(ValueError, match="edge_index"):
        ReconstructionValue(x, edge_index=ring + 5, method="local")
    value = ReconstructionValue(x)
    with pytest.raises(ValueError, match="active"):
        value.scores(torch.ones(10))
    with pytest.raises(ValueError, match="active"):
        value.scores(torch.ones(11, dtype=torch.bool))
