"""Tests for dynst_pyg.models.GraphWaveNet (sub-graph correctness, reference maths, gradients)."""

import pytest
import torch
import torch.nn.functional as F

from dynst_pyg.models import GraphWaveNet, transition_supports

N = 10
KEPT = torch.tensor([0, 2, 3, 5, 7, 8])
PRUNED = torch.tensor([1, 4, 6, 9])


def island_graph(seed=0):
    """Random weighted directed graph where the PRUNED nodes only link among themselves."""
    g = torch.Generator().manual_seed(seed)
    edges = []
    for group in (KEPT, PRUNED):
        for i in group.tolist():
            for j in group.tolist():
                if i != j and torch.rand(1, generator=g) < 0.5:
                    edges.append((i, j))
    ei = torch.tensor(edges).t()
    ew = torch.rand(ei.size(1), generator=g) + 0.1
    # induced sub-graph on KEPT, relabelled
    pos = torch.full((N,), -1)
    pos[KEPT] = torch.arange(KEPT.numel())
    m = (pos[ei[0]] >= 0) & (pos[ei[1]] >= 0)
    return ei, ew, pos[ei[:, m]], ew[m]


def small_model(**kw):
    args = dict(residual_channels=8, dilation_channels=8, skip_channels=16, end_channels=16,
                blocks=2, layers=2, embedding_dim=4)
    args.update(kw)
    return GraphWaveNet(N, in_features=2, out_features=1, t_in=12, t_out=3, **args)


def test_profiles_and_receptive_field():
    ref = GraphWaveNet(207, profile="reference")
    assert ref.receptive_field == 13 and ref.final_length == 1
    h = ref.hparams
    assert (h["residual_channels"], h["skip_channels"], h["end_channels"], h["blocks"], h["layers"],
            h["kernel_size"], h["order"], h["dropout"]) == (32, 256, 512, 4, 2, 2, 2, 0.3)
    small = GraphWaveNet(207, profile="small")
    assert small.receptive_field == 7 and small.final_length == 6
    with pytest.raises(ValueError, match="profile"):
        GraphWaveNet(207, profile="huge")


@pytest.mark.parametrize("b", [1, 3])
def test_shapes(b):
    ei, ew, _, _ = island_graph()
    model = small_model().eval()
    y = model(torch.randn(b, 12, N, 2), ei, ew)
    assert y.shape == (b, 3, N, 1)
    assert torch.isfinite(y).all()


def test_subgraph_equals_full_graph_with_islands_fixed_supports():
    ei, ew, sei, sew = island_graph()
    torch.manual_seed(0)
    model = small_model(adaptive_adjacency=False).eval()
    x = torch.randn(4, 12, N, 2)
    with torch.no_grad():
        full = model(x, ei, ew)[:, :, KEPT]
        sub = model(x[:, :, KEPT], sei, sew, node_index=KEPT)
    assert torch.allclose(full, sub, atol=1e-5)
    # the pruned islands do interact with each other, so the check is not vacuous:
    with torch.no_grad():
        alone = model(x, ei[:, :0], ew[:0])[:, :, KEPT]
    assert not torch.allclose(full, alone, atol=1e-3)


def test_adaptive_adjacency_is_renormalised_restriction():
    model = small_model()
    with torch.no_grad():
        full = model.adaptive_support().t()  # A[v, w], rows sum to 1
        sub = model.adaptive_support(KEPT).t()
    restr = full[KEPT][:, KEPT]
    assert torch.allclose(sub, restr / restr.sum(1, keepdim=True), atol=1e-6)
    assert torch.allclose(sub.sum(1), torch.ones(KEPT.numel()))


def test_subgraph_equals_full_graph_with_renormalised_adaptive_adjacency():
    ei, ew, sei, sew = island_graph(seed=3)
    model = small_model().eval()
    x = torch.randn(2, 12, N, 2)
    with torch.no_grad():
        sup = model.supports(ei, ew)
        a = sup[-1].t()
        block = torch.zeros_like(a)
        for grp in (KEPT, PRUNED):
            r = a[grp][:, grp]
            block[grp.unsqueeze(1), grp.unsqueeze(0)] = r / r.sum(1, keepdim=True)
        full = model.forward_with_supports(x, sup[:-1] + [block.t()])[:, :, KEPT]
        sub = model(x[:, :, KEPT], sei, sew, node_index=KEPT)
        plain_full = model(x, ei, ew)[:, :, KEPT]
    assert torch.allclose(full, sub, atol=1e-5)
    assert not torch.allclose(plain_full, sub, atol=1e-4)  # the full adaptive adjacency mixes islands


def _reference_forward(model, x, supports):
    """Straightforward Graph WaveNet (Wu et al.): dilated causal convs over all positions, gated
    activation, skip sum over all positions, graph conv = MLP(cat[h, S h, S^2 h, ...]) for every
    layer (including the last one whose output is discarded), end MLP on the final positions."""
    rc = model.hparams["residual_channels"]
    ks = model.kernel_size
    h = x.permute(0, 2, 1, 3)  # [B, K, T, F]
    if h.size(2) < model.receptive_field:
        h = F.pad(h, (0, 0, model.receptive_field - h.size(2), 0))
    h = h @ model.start_conv.weight.t() + model.start_conv.bias
    skip = None
    for i, d in enumerate(model.dilations):
        res = h
        length = h.size(2) - (ks - 1) * d
        w = model.filter_gate[i].weight  # [2*dc, ks*rc]
        acc = model.filter_gate[i].bias
        for j in range(ks):
            acc = acc + h[:, :, j * d: j * d + length] @ w[:, j * rc:(j + 1) * rc].t()
        f, g = acc.chunk(2, dim=-1)
        h = torch.tanh(f) * torch.sigmoid(g)
        s = h @ model.skip_convs[i].weight.t() + model.skip_convs[i].bias
        skip = s if skip is None else s + skip[:, :, -s.size(2):]
        if i == len(model.dilations) - 1:
            break
        outs = [h]
        for sm in supports:
            h1 = h
            for _ in range(model.order):
                h1 = torch.einsum("wv,bvtc->bwtc", sm, h1)
                outs.append(h1)
        h = torch.cat(outs, dim=-1) @ model.gconvs[i].weight + model.gconvs[i].bias
        h = h + res[:, :, -h.size(2):]
        bn = model.bns[i]
        h = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    out = F.relu(F.relu(skip) @ model.end_conv_1.weight.t() + model.end_conv_1.bias)
    out = out.reshape(out.size(0), out.size(1), -1) @ model.end_conv_2.weight.t() + model.end_conv_2.bias
    b, k = out.shape[:2]
    return out.view(b, k, model.t_out, model.out_features).permute(0, 2, 1, 3)


@pytest.mark.parametrize("t_in", [12, 5])  # longer than, and shorter than (padded), the receptive field
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_matches_straightforward_reference(t_in, kernel_size):
    ei, ew, _, _ = island_graph(seed=5)
    torch.manual_seed(1)
    model = GraphWaveNet(N, in_features=2, out_features=2, t_in=t_in, t_out=3, residual_channels=8,
                         dilation_channels=8, skip_channels=16, end_channels=16, blocks=2, layers=2,
                         kernel_size=kernel_size, embedding_dim=4)
    for bn in model.bns:  # non-trivial batch-norm statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(2, t_in, N, 2)
    with torch.no_grad():
        sup = model.supports(ei, ew)
        dense_sup = [s.to_dense() if s.layout != torch.strided else s for s in sup]
        got = model(x, ei, ew)
        want = _reference_forward(model, x, dense_sup)
    assert got.shape == want.shape == (2, 3, N, 2)
    assert torch.allclose(got, want, atol=1e-5)


def test_sparse_and_dense_supports_give_same_output():
    ei, ew, _, _ = island_graph(seed=2)
    torch.manual_seed(0)
    m_dense = small_model(sparse_supports=False).eval()
    m_sparse = small_model(sparse_supports=True).eval()
    m_sparse.load_state_dict(m_dense.state_dict())
    x = torch.randn(2, 12, N, 2)
    with torch.no_grad():
        assert torch.allclose(m_dense(x, ei, ew), m_sparse(x, ei, ew), atol=1e-5)


def test_gradients_reach_every_parameter():
    ei, ew, _, _ = island_graph()
    model = small_model(dropout=0.1).train()
    y = model(torch.randn(3, 12, N, 2), ei, ew)
    y.pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_subgraph_gradients_only_touch_kept_embeddings():
    _, _, sei, sew = island_graph()
    model = small_model().train()
    model(torch.randn(2, 12, KEPT.numel(), 2), sei, sew, node_index=KEPT).sum().backward()
    g = model.node_emb_source.grad
    assert g[KEPT].abs().sum() > 0 and g[PRUNED].abs().sum() == 0


def test_single_node_and_isolated_nodes_are_finite():
    model = small_model().eval()
    empty = torch.zeros(2, 0, dtype=torch.long)
    with torch.no_grad():
        y = model(torch.randn(2, 12, 1, 2), empty, None, node_index=torch.tensor([4]))
        assert y.shape == (2, 3, 1, 1) and torch.isfinite(y).all()
        # graph where node 9 has no edges at all
        ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
        y = model(torch.randn(2, 12, N, 2), ei, None)
        assert torch.isfinite(y).all()


def test_cpu_determinism_under_seed():
    ei, ew, _, _ = island_graph()
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = small_model()
        x = torch.randn(2, 12, N, 2)
        model.train()
        outs.append(model(x, ei, ew))  # dropout included
    assert torch.equal(outs[0], outs[1])


def test_support_cache_and_prepare_graph():
    ei, ew, sei, sew = island_graph()
    model = small_model().eval()
    sup = model.prepare_graph(sei, sew, KEPT)
    assert len(sup) == 2 and model.support_cache.builds == 1
    x = torch.randn(1, 12, KEPT.numel(), 2)
    with torch.no_grad():
        model(x, sei, sew, node_index=KEPT)
        model(x, sei, sew, node_index=KEPT)
    assert model.support_cache.builds == 1
    with torch.no_grad():
        model(torch.randn(1, 12, N, 2), ei, ew)
    assert model.support_cache.builds == 2
    model.clear_graph_cache()
    assert len(model.support_cache) == 0


def test_clear_errors():
    ei, ew, sei, sew = island_graph()
    model = small_model()
    with pytest.raises(ValueError, match="node_index"):
        model(torch.randn(1, 12, KEPT.numel(), 2), sei, sew)
    with pytest.raises(ValueError, match="in_features"):
        model(torch.randn(1, 12, N, 3), ei, ew)
    with pytest.raises(ValueError, match="t_in"):
        model(torch.randn(1, 7, N, 2), ei, ew)
    with pytest.raises(ValueError, match="edge_index"):
        model(torch.randn(1, 12, KEPT.numel(), 2), ei, ew, node_index=KEPT)  # full-graph ids on a sub-graph
    with pytest.raises(ValueError, match="adaptive_adjacency"):
        GraphWaveNet(N, adaptive_adjacency=False, graph_supports=False)
    with pytest.raises(ValueError, match="dropout"):
        GraphWaveNet(N, dropout=1.5)
    with pytest.raises(ValueError, match="num_nodes"):
        GraphWaveNet(0)


def test_inputs_are_not_modified():
    ei, ew, _, _ = island_graph()
    x = torch.randn(2, 12, N, 2)
    copies = (x.clone(), ei.clone(), ew.clone())
    small_model().train()(x, ei, ew).sum().backward()
    assert torch.equal(x, copies[0]) and torch.equal(ei, copies[1]) and torch.equal(ew, copies[2])


def test_transition_supports_used_are_rebuilt_from_subgraph():
    _, _, sei, sew = island_graph()
    model = small_model(adaptive_adjacency=False)
    sup = [s.to_dense() if s.layout != torch.strided else s for s in model.prepare_graph(sei, sew, KEPT)]
    ref = transition_supports(sei, sew, KEPT.numel())
    assert all(torch.allclose(a, b) for a, b in zip(sup, ref))
