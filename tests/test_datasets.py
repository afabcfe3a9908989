"""Dataset object, windows, splits and scaler."""

from __future__ import annotations

import math

import pytest
import torch

from dynst_pyg.data import prepare
from dynst_pyg.data import SpatioTemporalDataset, StandardScaler, num_windows
from dynst_pyg.datasets import from_arrays, synthetic_road_network


def line_graph(n: int) -> torch.Tensor:
    src = torch.arange(n - 1)
    return torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])


def small(T: int = 60, N: int = 4, F: int = 1) -> SpatioTemporalDataset:
    series = torch.arange(T * N * F, dtype=torch.float32).reshape(T, N, F)
    return SpatioTemporalDataset(series, line_graph(N))


# ---------------------------------------------------------------- real data
@pytest.mark.data
def test_los_loop_shape_windows_and_splits(los_loop, los_loop_splits):
    assert (los_loop.num_steps, los_loop.num_nodes, los_loop.num_features) == (2016, 207, 1)
    assert num_windows(los_loop.num_steps, 12, 12, 1) == 1993
    sp = los_loop_splits
    # 7:1:2 of 1993 windows; val/test lose the 11 windows whose targets would overlap the previous split
    assert len(sp.train) == round(0.7 * 1993)
    assert len(sp.test) == round(0.2 * 1993) - 11
    assert len(sp.train) + len(sp.val) + len(sp.test) + 22 == 1993

    def target_steps(w):
        return set((w.starts[:, None] + 12 + torch.arange(12)).reshape(-1).tolist())

    tr, va, te = target_steps(sp.train), target_steps(sp.val), target_steps(sp.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert max(tr) < min(va) and max(va) < min(te)


@pytest.mark.data
def test_los_loop_coordinates_match_locations_file(los_loop):
    from conftest import require_data
    import csv

    with open(require_data("metr-la/graph_sensor_locations.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["sensor_id"] for r in rows] == los_loop.sensor_id
    lon = torch.tensor([float(r["longitude"]) for r in rows])
    lat = torch.tensor([float(r["latitude"]) for r in rows])
    assert torch.allclose(los_loop.pos[:, 0], lon) and torch.allclose(los_loop.pos[:, 1], lat)
    assert los_loop.series[0, :5, 0].tolist() == pytest.approx([64.375, 67.625, 67.125, 61.5, 66.875])


@pytest.mark.data
def test_los_loop_scaler_uses_training_steps_only(los_loop):
    sp = prepare(los_loop)
    n = sp.train_steps
    assert n == len(sp.train) - 1 + 24
    # perturbing the steps after the training part must not change the scaler
    series = los_loop.series.clone()
    series[n:] += 100.0
    sp2 = prepare(los_loop.replace(series=series))
    assert torch.equal(sp.scaler.mean, sp2.scaler.mean) and torch.equal(sp.scaler.std, sp2.scaler.std)
    expected = los_loop.series[:n].mean()
    assert float(sp.scaler.mean[0]) == pytest.approx(float(expected), rel=1e-5)


# ---------------------------------------------------------------- windows
def test_windows_batch_equals_items_and_layout():
    ds = small(T=40, N=3)
    sp = prepare(ds, t_in=4, t_out=2, ratios=(0.6, 0.2, 0.2))
    x, y = sp.train.batch(torch.tensor([0, 5]))
    assert x.shape == (2, 4, 3, 1) and y.shape == (2, 2, 3, 1)
    x5, y5 = sp.train[5]
    assert torch.equal(x[1], x5) and torch.equal(y[1], y5)
    # y is on the raw scale: window 5 starts at step 5, its targets are steps 9 and 10
    assert torch.equal(y5, ds.series[9:11])
    assert torch.allclose(sp.scaler.inverse_transform(x5), ds.series[5:9], atol=1e-4)


def test_to_data_is_node_first_even_when_T_equals_N():
    ds = small(T=120, N=12)
    sp = prepare(ds, t_in=12, t_out=12, ratios=(0.6, 0.2, 0.2))
    d = sp.train.to_data(3)
    assert d.x.shape == (12, 12, 1) and d.y.shape == (12, 12, 1) and d.num_nodes == 12
    x, _ = sp.train[3]
    assert torch.equal(d.x[:, :, 0], x[:, :, 0].t())
    assert d.sensor_id == ds.sensor_id


def test_stride_and_gap():
    ds = small(T=100, N=2)
    sp = prepare(ds, t_in=6, t_out=6, stride=3, ratios=(0.5, 0.25, 0.25))
    assert torch.all(sp.train.starts % 3 == 0)
    last_train_target = int(sp.train.starts[-1]) + 11
    assert int(sp.val.starts[0]) + 6 > last_train_target
    last_val_target = int(sp.val.starts[-1]) + 11
    assert int(sp.test.starts[0]) + 6 > last_val_target


def test_time_features():
    ds = small(T=600, N=2)
    sp = prepare(ds, time_features=True)
    x, _ = sp.train[0]
    assert x.shape[-1] == 3
    tod = x[:, 0, 1]
    assert tod[0] == 0 and tod[1] == pytest.approx(5 / 1440)
    x2, _ = sp.train[288]  # one day later: same time of day, next day of week
    assert torch.allclose(x2[:, 0, 1], tod) and x2[0, 0, 2] == pytest.approx(1 / 7)


def test_scaler_inverse_is_exact_and_per_node():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(50, 4, 2, generator=g) * 3 + 7
    for per_node in (False, True):
        sc = StandardScaler.fit(s, per_node=per_node)
        assert torch.allclose(sc.inverse_transform(sc.transform(s), features=None), s, atol=1e-5)
    sc = StandardScaler.fit(s, per_node=True)
    assert sc.mean.shape == (4, 2)
    assert torch.allclose(sc.transform(s).mean(0), torch.zeros(4, 2), atol=1e-5)
    sub = sc.select_nodes(torch.tensor([1, 3]))
    assert torch.equal(sub.mean, sc.mean[[1, 3]])


def test_scaler_ignores_nulls():
    s = torch.tensor([[[0.0], [2.0]], [[4.0], [0.0]]])
    sc = StandardScaler.fit(s, null_value=0.0)
    assert float(sc.mean[0]) == pytest.approx(3.0) and float(sc.std[0]) == pytest.approx(1.0)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    (dict(series=torch.zeros(5)), "series"),
    (dict(series=torch.full((10, 3, 1), float("inf"))), "infinite"),
    (dict(observed=torch.ones(10, 3, 1)), "bool"),
    (dict(observed=torch.ones(10, 2, 1, dtype=torch.bool)), "observed"),
    (dict(edge_index=torch.tensor([[0, 5], [1, 2]])), "N = 3"),
    (dict(edge_index=torch.tensor([0, 1, 2])), "edge_index"),
    (dict(edge_weight=torch.ones(7)), "edge_weight"),
    (dict(pos=torch.zeros(2, 2)), "pos"),
    (dict(sensor_id=["a", "b"]), "sensor_id"),
    (dict(sensor_id=["a", "a", "b"]), "unique"),
    (dict(interval_minutes=0), "interval_minutes"),
])
def test_bad_input_names_the_argument(kwargs, match):
    base = dict(series=torch.ones(10, 3, 1), edge_index=line_graph(3))
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        SpatioTemporalDataset(**base)


def test_inputs_are_copied_not_aliased():
    s = torch.ones(30, 3, 1)
    ei = line_graph(3)
    ds = SpatioTemporalDataset(s, ei)
    s += 5
    ei[0, 0] = 2
    assert float(ds.series.max()) == 1.0 and int(ds.edge_index[0, 0]) == 0


def test_too_short_for_one_window_and_bad_prepare_args():
    ds = small(T=20, N=2)
    with pytest.raises(ValueError, match="too short"):
        prepare(ds, t_in=12, t_out=12)
    with pytest.raises(ValueError, match="ratios"):
        prepare(small(T=100), ratios=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="target_features"):
        prepare(small(T=100), target_features=(3,))
    with pytest.raises(ValueError, match="t_in"):
        prepare(small(T=100), t_in=0)


def test_from_arrays_and_networkx_and_signal_roundtrip():
    import networkx as nx
    import numpy as np

    from dynst_pyg.datasets import from_networkx, from_static_signal, to_static_signal, to_temporal_signal

    rng = np.random.default_rng(0)
    series = rng.random((30, 5, 2)).astype("float32")
    G = nx.path_graph(5)
    for n in G.nodes:
        G.nodes[n]["pos"] = (float(n), 0.5 * n)
    nx.set_edge_attributes(G, {e: 0.5 for e in G.edges}, "weight")
    ds = from_networkx(G, series)
    assert ds.num_edges == 8 and torch.allclose(ds.edge_weight, torch.full((8,), 0.5))
    assert ds.pos[3].tolist() == [3.0, 1.5]
    ds2 = from_arrays(series, ds.edge_index, ds.edge_weight, interval=5)
    assert torch.equal(ds.series, ds2.series)

    sig = to_static_signal(ds)
    back = from_static_signal(sig)
    assert torch.equal(back.series, ds.series)
    assert torch.equal(back.edge_index, ds.edge_index) and torch.allclose(back.edge_weight, ds.edge_weight)
    snap = next(iter(to_temporal_signal(ds, t_in=4, t_out=2)))
    assert tuple(snap.x.shape) == (5, 4, 2) and tuple(snap.y.shape) == (5, 2, 2)
    assert torch.allclose(snap.x, ds.series[:4].permute(1, 0, 2))


# ---------------------------------------------------------------- synthetic
def test_synthetic_is_deterministic_and_plants_redundant_sensors():
    a = synthetic_road_network(num_nodes=60, num_steps=400, redundant_fraction=0.4, seed=3)
    b = synthetic_road_network(num_nodes=60, num_steps=400, redundant_fraction=0.4, seed=3)
    c = synthetic_road_network(num_nodes=60, num_steps=400, redundant_fraction=0.4, seed=4)
    assert torch.equal(a.series, b.series) and torch.equal(a.edge_index, b.edge_index)
    assert not torch.equal(a.series, c.series)
    red = a.meta["redundant"]
    assert red.numel() == round(0.4 * 60)
    # each planted sensor is (nearly) a convex mix of its sources, which are observed neighbours
    edges = set(map(tuple, a.edge_index.t().tolist()))
    for i, src in a.meta["sources"].items():
        assert len(src) >= 2 and all((i, j) in edges for j in src)
        assert not set(src) & set(red.tolist())
        x = a.series[:, src, 0]
        coef = torch.linalg.lstsq(x, a.series[:, i, 0:1]).solution
        resid = a.series[:, i, 0:1] - x @ coef
        # what is left after regressing on the sources is the planted white noise, 0.05 * 60 = 3 mph
        assert 2.4 < float(resid.std()) < 3.6
    assert a.pos.shape == (60, 2)


@pytest.mark.parametrize("n", [20, 3000])
def test_synthetic_sizes(n):
    ds = synthetic_road_network(num_nodes=n, num_steps=50, redundant_fraction=0.2)
    assert ds.num_nodes == n and ds.meta["redundant"].numel() == round(0.2 * n)
    assert int(ds.edge_index.max()) == n - 1


def test_synthetic_bad_args():
    with pytest.raises(ValueError, match="num_nodes"):
        synthetic_road_network(num_nodes=5)
    with pytest.raises(ValueError, match="redundant_fraction"):
        synthetic_road_network(redundant_fraction=0.9)
