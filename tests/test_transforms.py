"""Tests for dynst_pyg.transforms.DynSTMask."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch_geometric.transforms as T
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import DataLoader

from dynst_pyg.data import prepare
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.graph.subgraph import induced_subgraph
from dynst_pyg.transforms.dynst_mask import DynSTMask


# --------------------------------------------------------------------------- helpers
def make_data(n: int = 5, t: int = 5, f: int = 2, seed: int = 0) -> Data:
    """Node-first window with T == N by default (the PyG dim-0 pitfall)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.arange(n)
    ei = torch.cat([torch.stack([src, (src + 1) % n]), torch.stack([(src + 1) % n, src])], 1)
    return Data(x=torch.randn(n, t, f, generator=g), y=torch.randn(n, 3, 1, generator=g), edge_index=ei,
                edge_weight=torch.rand(ei.size(1), generator=g) + 0.1, pos=torch.randn(n, 2, generator=g),
                sensor_id=[f"s{i}" for i in range(n)], num_nodes=n)


def snapshot(data: Data) -> dict:
    out = {}
    for key, value in data.items():
        out[key] = value.clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
    return out


def assert_same(data: Data, snap: dict) -> None:
    assert set(data.keys()) == set(snap.keys())
    for key, value in snap.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(data[key], value), key
        else:
            assert data[key] == value, key


# --------------------------------------------------------------------------- Data
def test_data_tiny_exact_and_input_unchanged():
    data = make_data()
    snap = snapshot(data)
    mask = SensorMask.from_indices([0, 2, 3], 5, sensor_ids=[f"s{i}" for i in range(5)])
    out = DynSTMask(mask)(data)
    keep = torch.tensor([0, 2, 3])
    assert out.num_nodes == 3
    assert out.x.shape == (3, 5, 2)  # T == N: only the node axis is sliced
    assert torch.equal(out.x, data.x[keep])
    assert torch.equal(out.y, data.y[keep])
    assert torch.equal(out.pos, data.pos[keep])
    assert out.sensor_id == ["s0", "s2", "s3"]
    assert out.n_id.tolist() == [0, 2, 3]
    # ring 0-1-2-3-4-0: kept edges 2<->3 only (0-4 and 0-1 go to pruned nodes)
    emask = torch.tensor([False, False, True, False, False, False, False, True, False, False])
    assert out.edge_index.tolist() == [[1, 2], [2, 1]]
    assert torch.equal(out.edge_weight, data.edge_weight[emask])
    assert_same(data, snap)  # input never modified
    assert out is not data


def test_t_equals_n_slices_node_axis_only():
    n = 6
    x = torch.arange(n * n, dtype=torch.float).view(n, n, 1)  # x[i, t] = i * n + t
    data = Data(x=x, edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=n)
    out = DynSTMask(SensorMask.from_indices([1, 4], n))(data)
    assert out.x.shape == (2, n, 1)
    assert out.x[:, :, 0].tolist() == [[6., 7., 8., 9., 10., 11.], [24., 25., 26., 27., 28., 29.]]


def test_all_mask_forms_agree(tmp_path):
    data = make_data()
    mask = SensorMask.from_indices([1, 2, 4], 5)
    path = tmp_path / "mask.json"
    mask.save(path)
    ref = DynSTMask(mask)(data)
    forms = [mask, torch.tensor([4, 1, 2]), [1, 2, 4], mask.bool_mask, str(path), path,
             mask.bool_mask.numpy()]
    for form in forms:
        out = DynSTMask(form)(data)
        for key in ("x", "y", "pos", "edge_index", "edge_weight", "n_id"):
            assert torch.equal(out[key], ref[key]), (type(form), key)
    assert DynSTMask(torch.tensor([1, 2, 4]), num_nodes=5).mask == SensorMask.from_indices([1, 2, 4], 5)


def test_repr_and_functional_name():
    from torch.utils.data import IterDataPipe
    from torch_geometric.data.datapipes import DatasetAdapter

    mask = SensorMask.from_scores(torch.rand(207), sparsity=0.5)
    assert repr(DynSTMask(mask, reconnect="kron")) == "DynSTMask(kept=104/207, reconnect='kron')"
    assert repr(DynSTMask(mask, reconnect="khop", k=3)) == "DynSTMask(kept=104/207, reconnect='khop', k=3)"
    assert repr(DynSTMask([0, 5])) == "DynSTMask(kept=2/?, reconnect='none')"
    assert "DynSTMask(kept=104/207" in repr(T.Compose([DynSTMask(mask)]))
    # registered as a functional datapipe, like PyG's own transforms
    assert "dynst_mask" in IterDataPipe.functions
    dp = DatasetAdapter([make_data(), make_data(seed=1)]).dynst_mask(SensorMask.from_indices([0, 1], 5))
    outs = list(dp)
    assert [o.num_nodes for o in outs] == [2, 2]


@pytest.mark.parametrize("reconnect", ["khop", "kron"])
def test_reconnect_on_data_matches_operator(reconnect):
    data = make_data(n=12, t=4)
    mask = SensorMask.from_indices([0, 3, 4, 8, 9], 12)
    out = DynSTMask(mask, reconnect=reconnect, k=4)(data)
    ei, ew = induced_subgraph(mask, data.edge_index, data.edge_weight, reconnect=reconnect, k=4)
    assert torch.equal(out.edge_index, ei) and torch.allclose(out.edge_weight, ew)
    # ring stays connected after reconnection
    import networkx as nx

    G = nx.Graph()
    G.add_nodes_from(range(5))
    G.add_edges_from(out.edge_index.t().tolist())
    assert nx.is_connected(G)


def test_edge_attr_handling():
    data = make_data(n=6)
    del data.edge_weight
    data.edge_attr = torch.rand(data.edge_index.size(1)) + 0.5  # PyG-Temporal snapshots keep weights here
    mask = SensorMask.from_indices([0, 2, 4], 6)
    out = DynSTMask(mask, reconnect="kron")(data)
    ei, ew = induced_subgraph(mask, data.edge_index, data.edge_attr, reconnect="kron")
    assert "edge_weight" not in out and torch.allclose(out.edge_attr, ew)
    # multi-dimensional edge features: sliced with 'none', refused with reconnection
    data.edge_attr = torch.randn(data.edge_index.size(1), 3)
    out = DynSTMask(mask)(data)
    _, ea = induced_subgraph(mask, data.edge_index, data.edge_attr)
    assert torch.equal(out.edge_attr, ea)
    with pytest.raises(ValueError, match=r"edge attribute\(s\) \['edge_attr'\]"):
        DynSTMask(mask, reconnect="khop")(data)


def test_other_node_and_graph_attributes():
    n = 5
    data = make_data(n=n)
    data.node_feat = torch.randn(n, 3)           # unknown name, node-level per PyG
    data.mean = torch.randn(n, 2)                # per-node scaler statistics
    data.std = torch.rand(2) + 1.0               # global statistics: left alone
    data.t = torch.arange(n).view(1, n)          # graph-level vector of length N: stored [1, N], as PyG expects
    data.tag = "window-3"
    out = DynSTMask(SensorMask.from_indices([1, 3], n))(data)
    assert torch.equal(out.node_feat, data.node_feat[[1, 3]])
    assert torch.equal(out.mean, data.mean[[1, 3]])
    assert torch.equal(out.std, data.std)
    assert torch.equal(out.t, data.t)
    assert out.tag == "window-3"


def test_n_id_composes():
    data = make_data(n=8, t=3)
    a = SensorMask.from_indices([1, 2, 5, 6, 7], 8)
    b = SensorMask.from_indices([0, 3, 4], 5)
    twice = DynSTMask(b)(DynSTMask(a)(data))
    once = DynSTMask(a.compose(b))(data)
    assert twice.n_id.tolist() == [1, 6, 7]
    for key in ("x", "y", "pos", "edge_index", "edge_weight", "n_id"):
        assert torch.equal(twice[key], once[key]), key
    assert twice.sensor_id == once.sensor_id == ["s1", "s6", "s7"]


def test_attributes_are_classified_by_pyg_data_subgraph():
    data = make_data(n=6)
    data.edge_label = torch.arange(data.edge_index.size(1))  # any edge-level attribute follows the edges
    data.node_label = torch.arange(6) * 10
    mask = SensorMask.from_indices([1, 2, 3], 6)
    out = DynSTMask(mask)(data)
    ref = data.subgraph(mask.keep)
    for key in ("x", "y", "pos", "edge_index", "edge_weight", "edge_label", "node_label"):
        assert torch.equal(out[key], ref[key]), key
    # ring edges (1, 2), (2, 3) and (2, 1), (3, 2) are numbers 1, 2, 7, 8
    assert out.edge_label.tolist() == [1, 2, 7, 8]
    assert out.node_label.tolist() == [10, 20, 30]
    assert out.sensor_id == ["s1", "s2", "s3"] and out.num_nodes == 3


def test_edge_cache_holds_no_copies_and_notices_in_place_edits(monkeypatch):
    import dynst_pyg.transforms.dynst_mask as tmod

    calls = []
    real = tmod.induced_subgraph
    monkeypatch.setattr(tmod, "induced_subgraph", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    data = make_data(n=12, t=3)
    mask = SensorMask.from_indices([0, 3, 4, 8, 9], 12)
    tf = DynSTMask(mask, reconnect="kron")
    first = tf(data)
    again = tf(data.clone())  # equal edges in other tensors: reused
    assert len(calls) == 1 and torch.equal(first.edge_weight, again.edge_weight)
    first.edge_weight.zero_()  # an output edited in place does not leak into the next one
    assert torch.equal(tf(data).edge_weight, again.edge_weight) and len(calls) == 1
    data.edge_weight.mul_(2.0)  # the input the cache was built from changed in place: rebuilt
    doubled = tf(data)
    assert len(calls) == 2 and torch.allclose(doubled.edge_weight, 2 * again.edge_weight)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 16), st.data())
def test_composition_property(n, data_st):
    data = make_data(n=n, t=3, seed=n)
    ka = data_st.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    a = SensorMask.from_indices(ka, n)
    kb = data_st.draw(st.lists(st.integers(0, a.num_kept - 1), min_size=1, max_size=a.num_kept, unique=True))
    b = SensorMask.from_indices(kb, a.num_kept)
    twice = DynSTMask(b)(DynSTMask(a)(data))
    once = DynSTMask(a.compose(b))(data)
    for key in ("x", "y", "pos", "edge_index", "edge_weight", "n_id"):
        assert torch.equal(twice[key], once[key]), key
    # n_id maps back: every kept node carries the original node's features
    assert torch.equal(twice.x, data.x[twice.n_id])
    assert [data.sensor_id[i] for i in twice.n_id.tolist()] == twice.sensor_id


# --------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors_and_leave_data_unchanged(tmp_path):
    data = make_data()
    snap = snapshot(data)
    with pytest.raises(ValueError, match="mask covers 7 sensors but the data has 5 nodes"):
        DynSTMask(SensorMask.from_indices([0], 7))(data)
    with pytest.raises(ValueError, match="keeps index 9 but the data has only 5"):
        DynSTMask([0, 9])(data)
    with pytest.raises(ValueError, match="other sensor ids"):
        DynSTMask(SensorMask.from_indices([0], 5, sensor_ids=list("abcde")))(data)
    bad = make_data()
    bad.y = torch.randn(3, 5, 1)  # not node-first
    with pytest.raises(ValueError, match=r"data.y must be node-first with 5 entries"):
        DynSTMask(SensorMask.from_indices([0], 5))(bad)
    with pytest.raises(TypeError, match="HeteroData"):
        DynSTMask([0])(HeteroData())
    with pytest.raises(TypeError, match="got dict"):
        DynSTMask([0])({"x": 1})
    with pytest.raises(ValueError, match="`reconnect` must be one of"):
        DynSTMask([0], reconnect="full")
    with pytest.raises(ValueError, match="`k` must be a positive int"):
        DynSTMask([0], reconnect="khop", k=0)
    with pytest.raises(ValueError, match="duplicate"):
        DynSTMask([0, 0])
    with pytest.raises(ValueError, match="empty selection"):
        DynSTMask(torch.zeros(4, dtype=torch.bool))
    with pytest.raises(FileNotFoundError, match="missing.json"):
        DynSTMask(str(tmp_path / "missing.json"))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        DynSTMask(corrupt)
    wrong = tmp_path / "wrong.json"
    obj = SensorMask.from_indices([0], 5).to_dict()
    obj["format_version"] = 0
    wrong.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match="format_version"):
        DynSTMask(wrong)
    neg = make_data()
    neg.edge_weight = -neg.edge_weight
    neg_snap = snapshot(neg)
    with pytest.raises(ValueError, match="non-negative"):
        DynSTMask(SensorMask.from_indices([0, 2], 5), reconnect="kron")(neg)
    assert_same(neg, neg_snap)
    assert_same(data, snap)


# --------------------------------------------------------------------------- dataset & signal
def test_spatiotemporal_dataset():
    from dynst_pyg.datasets import synthetic_road_network

    ds = synthetic_road_network(num_nodes=30, num_steps=120, seed=1)
    series0, ei0 = ds.series.clone(), ds.edge_index.clone()
    mask = SensorMask.from_scores(torch.rand(30, generator=torch.Generator().manual_seed(0)), sparsity=0.4,
                                  sensor_ids=ds.sensor_id)
    small = DynSTMask(mask, reconnect="kron")(ds)
    keep = mask.keep
    assert small.num_nodes == 18
    assert torch.equal(small.series, ds.series[:, keep])
    assert torch.equal(small.pos, ds.pos[keep])
    assert small.sensor_id == [ds.sensor_id[i] for i in keep.tolist()]
    assert torch.equal(small.meta["n_id"], keep)
    ei, ew = induced_subgraph(mask, ds.edge_index, ds.edge_weight, reconnect="kron")
    assert torch.equal(small.edge_index, ei) and torch.allclose(small.edge_weight, ew)
    assert torch.equal(ds.series, series0) and torch.equal(ds.edge_index, ei0) and ds.num_nodes == 30
    # the window pipeline runs on K nodes
    x, y = prepare(small, t_in=6, t_out=3).train[0]
    assert x.shape[1] == 18 and y.shape[1] == 18
    # masking again composes n_id
    inner = SensorMask.from_indices([0, 5], 18)
    smaller = DynSTMask(inner)(small)
    assert smaller.meta["n_id"].tolist() == keep[[0, 5]].tolist()


def test_static_graph_temporal_signal():
    from torch_geometric_temporal.signal import StaticGraphTemporalSignal

    n, steps = 6, 4
    rng = np.random.default_rng(0)
    ei = np.array([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    ew = rng.random(6).astype(np.float32)
    feats = [rng.random((n, 3)).astype(np.float32) for _ in range(steps)]
    targs = [rng.random(n).astype(np.float32) for _ in range(steps)]
    sig = StaticGraphTemporalSignal(ei, ew, feats, targs)
    feats0 = [f.copy() for f in feats]
    mask = SensorMask.from_indices([0, 1, 3], n)
    out = DynSTMask(mask)(sig)
    assert isinstance(out, StaticGraphTemporalSignal) and out is not sig
    assert out.snapshot_count == steps
    assert out.edge_index.tolist() == [[0], [1]] and np.allclose(out.edge_weight, ew[[0]])
    snaps = list(out)
    assert len(snaps) == steps
    for t, snap in enumerate(snaps):
        assert snap.x.shape == (3, 3)
        assert np.allclose(snap.x.numpy(), feats[t][[0, 1, 3]])
        assert np.allclose(snap.y.numpy(), targs[t][[0, 1, 3]])
        assert snap.n_id.tolist() == [0, 1, 3]
    # reconnection on a signal and the original left alone
    kr = DynSTMask(mask, reconnect="khop", k=3)(sig)
    assert sorted(map(tuple, kr.edge_index.T.tolist())) == [(0, 1), (1, 2), (2, 0)]
    assert all(np.array_equal(a, b) for a, b in zip(sig.features, feats0))
    assert sig.edge_index.shape == (2, 6) and sig.snapshot_count == steps
    with pytest.raises(ValueError, match="covers 7 sensors but the signal has 6"):
        DynSTMask(SensorMask.from_indices([0], 7))(sig)


# --------------------------------------------------------------------------- Los-loop DataLoader
class _Windows(torch.utils.data.Dataset):
    def __init__(self, wd, idx, transform):
        self.wd, self.idx, self.transform = wd, idx, transform

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, i):
        return self.transform(self.wd.to_data(self.idx[i]))


@pytest.mark.data
@pytest.mark.parametrize("reconnect", ["none", "kron"])
def test_dataloader_over_los_loop_windows(los_loop_splits, reconnect):
    splits = los_loop_splits
    wd = splits.train
    n = splits.num_nodes
    ids = list(splits.dataset.sensor_id)
    g = torch.Generator().manual_seed(0)
    mask = SensorMask.from_scores(torch.rand(n, generator=g), sparsity=0.5, sensor_ids=ids)
    k = mask.num_kept
    transform = T.Compose([DynSTMask(mask, reconnect=reconnect)])
    loader = DataLoader(_Windows(wd, list(range(0, 40, 5)), transform), batch_size=4, shuffle=False)
    batches = list(loader)
    assert len(batches) == 2
    for batch in batches:
        assert batch.num_graphs == 4
        assert batch.num_nodes == 4 * k
        assert batch.x.shape[:2] == (4 * k, wd.t_in)
        assert torch.bincount(batch.batch).tolist() == [k] * 4
        assert torch.equal(batch.n_id.view(4, k), mask.keep.repeat(4, 1))
        assert int(batch.edge_index.max()) < 4 * k
    x0, _ = wd[0]
    first = batches[0].get_example(0)
    assert torch.equal(first.x, x0.permute(1, 0, 2)[mask.keep])
    assert first.sensor_id == mask.kept_sensor_ids
