"""Graph WaveNet's bounded adaptive adjacency (``adaptive_topk``): exactness and row sparsity."""

import pytest
import torch

from dynst_pyg.models import GraphWaveNet

N = 12


def ring(n=N):
    s = torch.arange(n)
    return torch.cat([torch.stack([s, (s + 1) % n]), torch.stack([(s + 1) % n, s])], 1)


def pair(k, **kw):
    """A dense model and a top-k model with the same weights."""
    args = dict(residual_channels=8, dilation_channels=8, skip_channels=16, end_channels=16, blocks=2, layers=2,
                embedding_dim=3, dropout=0.0)
    args.update(kw)
    torch.manual_seed(0)
    dense = GraphWaveNet(N, in_features=1, out_features=1, t_in=8, t_out=2, **args)
    sparse = GraphWaveNet(N, in_features=1, out_features=1, t_in=8, t_out=2, adaptive_topk=k, **args)
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


@pytest.mark.parametrize("k", [N, N + 5])
def test_topk_at_least_n_equals_dense_support_output_and_gradients(k):
    dense, sparse = pair(k)
    s = sparse.adaptive_support()
    assert s.layout == torch.sparse_coo and s._nnz() == N * N
    assert torch.allclose(s.to_dense(), dense.adaptive_support(), atol=1e-6)
    x = torch.randn(2, 8, N, 1)
    yd, ys = dense(x, ring()), sparse(x, ring())
    assert torch.allclose(yd, ys, atol=1e-5)
    yd.square().sum().backward()
    ys.square().sum().backward()
    for name in ("node_emb_source", "node_emb_target"):
        gd, gs = getattr(dense, name).grad, getattr(sparse, name).grad
        assert gs is not None and torch.allclose(gd, gs, atol=1e-4)


def test_topk_rows_keep_k_largest_renormalised():
    k = 3
    dense, sparse = pair(k)
    with torch.no_grad():  # distinct logits, so the top-k set is unique
        sparse.node_emb_source.copy_(torch.randn(N, 3) * 2)
        dense.node_emb_source.copy_(sparse.node_emb_source)
    p = sparse.adaptive_support().to_dense().t()      # row i: where source i sends its weight
    full = dense.adaptive_support().t()
    assert torch.equal((p > 0).sum(1), torch.full((N,), k))
    assert torch.allclose(p.sum(1), torch.ones(N), atol=1e-6)
    top = torch.topk(full, k, dim=1)
    assert torch.equal(torch.sort(top.indices, 1).values, torch.sort((p > 0).nonzero()[:, 1].view(N, k), 1).values)
    kept = torch.gather(p, 1, top.indices)
    assert torch.allclose(kept, top.values / top.values.sum(1, keepdim=True), atol=1e-6)


def test_topk_on_a_subgraph_and_in_row_blocks(monkeypatch):
    _, sparse = pair(4)
    keep = torch.tensor([0, 2, 3, 5, 7, 8, 11])
    s = sparse.adaptive_support(keep)
    assert s.shape == (7, 7) and s._nnz() == 7 * 4
    monkeypatch.setattr(GraphWaveNet, "TOPK_BLOCK_ELEMENTS", 7)  # one row per block
    assert torch.allclose(sparse.adaptive_support(keep).to_dense(), s.to_dense())
    sub = torch.stack([torch.arange(6), torch.arange(1, 7)])
    y = sparse(torch.randn(2, 8, 7, 1), sub, node_index=keep)
    assert y.shape == (2, 2, 7, 1) and torch.isfinite(y).all()


def test_topk_bad_input():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="adaptive_topk"):
            GraphWaveNet(N, adaptive_topk=bad)
