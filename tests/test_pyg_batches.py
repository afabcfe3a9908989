"""PyG windows straight into the backbones: DataLoader over DynSTMask-ed windows -> model(batch)."""
from __future__ import annotations

import pytest
import torch
import torch_geometric.transforms as T
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from dynst_pyg.data import prepare
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.models import (DCRNN, GraphWaveNet, LiftHead, TGTAdapter, dense_from_batch, to_dense_windows,
                              to_node_first, window_layout)
from dynst_pyg.graph.subgraph import induced_subgraph
from dynst_pyg.transforms.dynst_mask import DynSTMask

N, T_IN, T_OUT, B = 20, 6, 3, 4
KEEP = [0, 2, 3, 5, 8, 9, 11, 14, 15, 19]


@pytest.fixture(scope="module")
def splits():
    return prepare(synthetic_road_network(num_nodes=N, num_steps=160, seed=0), t_in=T_IN, t_out=T_OUT)


@pytest.fixture(scope="module")
def mask():
    return SensorMask.from_indices(KEEP, N)


def loader_over(splits, mask, count=8, reconnect="none"):
    transform = T.Compose([DynSTMask(mask, reconnect=reconnect)])
    windows = [transform(splits.train.to_data(i)) for i in range(count)]
    return DataLoader(windows, batch_size=B, shuffle=False)


def dense_reference(model, splits, mask, start, count, reconnect="none", **kwargs):
    """What a user without PyG batches writes: slice x by hand and pass the sub-graph."""
    x, _ = splits.train.batch(torch.arange(start, start + count))
    keep = mask.keep
    sub_ei, sub_ew = induced_subgraph(mask, splits.train.edge_index, splits.train.edge_weight, reconnect=reconnect)
    return model(x[:, :, keep], sub_ei, sub_ew, node_index=keep, **kwargs)


def backbones():
    torch.manual_seed(0)
    return [
        GraphWaveNet(N, t_in=T_IN, t_out=T_OUT, residual_channels=8, dilation_channels=8, skip_channels=16,
                     end_channels=16).eval(),
        DCRNN(N, t_in=T_IN, t_out=T_OUT, hidden=8).eval(),
        TGTAdapter("GConvGRU", N, 1, 1, hidden=8, t_in=T_IN, t_out=T_OUT, K=2).eval(),
    ]


@pytest.mark.parametrize("reconnect", ["none", "kron"])
def test_dataloader_batches_feed_every_backbone_exactly(splits, mask, reconnect):
    k = mask.num_kept
    for model in backbones():
        start = 0
        for batch in loader_over(splits, mask, reconnect=reconnect):
            assert isinstance(batch, Batch) and batch.x.shape == (B * k, T_IN, 1)
            with torch.no_grad():
                out = model(batch)
                ref = dense_reference(model, splits, mask, start, B, reconnect=reconnect)
            assert out.shape == batch.y.shape == (B * k, T_OUT, 1)  # node-first, aligned with batch.y
            assert torch.equal(to_dense_windows(out, B), ref), type(model).__name__
            start += B


def test_single_window_and_lift_head_take_pyg_data(splits, mask):
    model = backbones()[0]
    window = DynSTMask(mask)(splits.train.to_data(5))
    with torch.no_grad():
        out = model(window)
        ref = dense_reference(model, splits, mask, 5, 1)
    assert out.shape == (mask.num_kept, T_OUT, 1) and torch.equal(out, ref[0].transpose(0, 1))
    head = LiftHead(N, splits.train.edge_index, splits.train.edge_weight)
    batch = next(iter(loader_over(splits, mask)))
    with torch.no_grad():
        pred = model(batch)
        full = head(pred, batch)
        full_ref = head(to_dense_windows(pred, B), mask.keep)
    assert full.shape == (B * N, T_OUT, 1)
    assert torch.equal(full, to_node_first(full_ref))
    bound = LiftHead(N, splits.train.edge_index, node_index=mask.keep)
    assert torch.equal(bound(pred, batch), to_node_first(bound(to_dense_windows(pred, B))))


def test_dcrnn_targets_come_node_first_with_a_batch(splits, mask):
    model = DCRNN(N, t_in=T_IN, t_out=T_OUT, hidden=8).train()
    batch = next(iter(loader_over(splits, mask)))
    torch.manual_seed(3)
    out = model(batch, targets=batch.y, teacher_forcing_ratio=0.5)
    torch.manual_seed(3)
    ref = dense_reference(model, splits, mask, 0, B, targets=to_dense_windows(batch.y, B), teacher_forcing_ratio=0.5)
    assert torch.equal(to_dense_windows(out, B), ref)


def test_dense_from_batch_exact_tiny_case():
    from torch_geometric.data import Data

    ei = torch.tensor([[0, 1], [1, 2]])
    windows = [Data(x=torch.arange(6.0).view(3, 2, 1) + 10 * b, edge_index=ei, edge_weight=torch.tensor([0.5, 2.0]),
                    n_id=torch.tensor([4, 7, 9])) for b in range(2)]
    dense = dense_from_batch(Batch.from_data_list(windows))
    assert dense.x.shape == (2, 2, 3, 1)
    assert dense.x[1, :, :, 0].tolist() == [[10.0, 12.0, 14.0], [11.0, 13.0, 15.0]]  # [B, T, K, F]
    assert dense.edge_index.tolist() == [[0, 1], [1, 2]] and dense.edge_weight.tolist() == [0.5, 2.0]
    assert dense.node_index.tolist() == [4, 7, 9]
    b, k, n_id = window_layout(Batch.from_data_list(windows))
    assert (b, k) == (2, 3) and n_id.tolist() == [4, 7, 9]
    single = dense_from_batch(windows[0])
    assert single.x.shape == (1, 2, 3, 1) and single.node_index.tolist() == [4, 7, 9]


def test_windows_that_do_not_share_nodes_or_graph_are_refused(splits, mask):
    a = DynSTMask(mask)(splits.train.to_data(0))
    other = DynSTMask(SensorMask.from_indices(KEEP[:-1] + [18], N))(splits.train.to_data(1))
    fewer = DynSTMask(SensorMask.from_indices(KEEP[:-1], N))(splits.train.to_data(1))
    model = backbones()[1]
    with pytest.raises(ValueError, match="window 1 of the batch keeps other sensors"):
        model(Batch.from_data_list([a, other]))
    with pytest.raises(ValueError, match="different numbers of nodes"):
        model(Batch.from_data_list([a, fewer]))
    cut = a.clone()
    cut.edge_index, cut.edge_weight = a.edge_index[:, 1:], a.edge_weight[1:]
    with pytest.raises(ValueError, match="same graph"):
        model(Batch.from_data_list([a, cut, a]))
    reweighted = a.clone()
    reweighted.edge_weight = a.edge_weight * 2
    with pytest.raises(ValueError, match="window 1 of the batch has other edge weights"):
        model(Batch.from_data_list([a, reweighted]))
    with pytest.raises(TypeError, match="pass it alone"):
        model(Batch.from_data_list([a]), a.edge_index)
    with pytest.raises(TypeError, match="edge_index is required"):
        model(torch.randn(1, T_IN, N, 1))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3))
def test_node_first_and_dense_layouts_are_inverse(b, k, t, f):
    v = torch.randn(b * k, t, f)
    dense = to_dense_windows(v, b)
    assert dense.shape == (b, t, k, f)
    assert torch.equal(dense[b - 1, :, k - 1], v[b * k - 1])  # last node of the last window
    assert torch.equal(to_node_first(dense), v)
