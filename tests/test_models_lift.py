"""Tests for dynst_pyg.models.LiftHead (target="all" head)."""

import pytest
import torch

from dynst_pyg.models import LiftHead


def path_graph(n):
    ei = torch.tensor([[i, i + 1] for i in range(n - 1)]).t()
    return ei


def test_harmonic_interpolation_on_a_path_exact():
    # 0 - 1 - 2 - 3, kept {0, 3}: harmonic extension x1 = 2/3 x0 + 1/3 x3, x2 = 1/3 x0 + 2/3 x3
    head = LiftHead(4, path_graph(4), damping=1.0)
    kept = torch.tensor([0, 3])
    y = torch.tensor([3.0, 6.0]).view(1, 1, 2, 1)
    out = head(y, kept)
    assert out.shape == (1, 1, 4, 1)
    assert torch.allclose(out.flatten(), torch.tensor([3.0, 4.0, 5.0, 6.0]))
    pruned, w, fb, _ = head.propagation(kept)
    assert pruned.tolist() == [1, 2] and not fb.any()
    assert torch.allclose(w, torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]))


def test_kept_order_and_passthrough():
    head = LiftHead(5, path_graph(5), features=2)
    kept = torch.tensor([4, 0, 2])  # arbitrary order
    y = torch.randn(3, 2, 3, 2)
    out = head(y, kept)
    assert torch.equal(out[:, :, kept], y)
    # pruned rows are convex combinations of kept predictions (damping < 1 renormalised)
    _, w, _, _ = head.propagation(kept)
    assert torch.allclose(w.sum(1), torch.ones(2))
    assert (w >= 0).all()


def test_no_path_falls_back_to_mean_and_is_direction_free():
    # 0 -> 1 directed (treated as undirected), node 2 isolated, node 3 linked only to 2
    ei = torch.tensor([[0, 3], [1, 2]])
    head = LiftHead(4, ei)
    kept = torch.tensor([1, 3])  # node 0 reaches 1 only against the edge direction; node 2 reaches 3
    y = torch.tensor([[2.0], [10.0]]).view(1, 1, 2, 1)
    out = head(y, kept).flatten()
    assert out.tolist() == pytest.approx([2.0, 2.0, 10.0, 10.0])
    head2 = LiftHead(4, torch.tensor([[0], [1]]))
    out2 = head2(y, kept).flatten()  # node 2 has no path to a kept node -> mean 6
    assert out2.tolist() == pytest.approx([2.0, 2.0, 6.0, 10.0])


def test_gradients_and_learnable_correction():
    torch.manual_seed(0)
    head = LiftHead(6, path_graph(6), features=1, hidden=4)
    kept = torch.tensor([0, 5])
    y = torch.randn(2, 3, 2, 1, requires_grad=True)
    head(y, kept).pow(2).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    for name, p in head.named_parameters():
        assert p.grad is not None, name
    assert head.scale.grad[1:5].abs().sum() > 0 and head.scale.grad[[0, 5]].abs().sum() == 0
    assert head.kept_bias.grad[[0, 5]].abs().sum() > 0


def test_all_nodes_kept_is_identity_and_cache():
    head = LiftHead(4, path_graph(4), residual=False)
    y = torch.randn(2, 3, 4, 1)
    assert torch.equal(head(y), y)
    assert torch.equal(head(y, torch.arange(4)), y)
    kept = torch.tensor([0, 2])
    head.prepare(kept)
    first = head.propagation(kept)
    assert head.propagation(kept.clone()) is first  # cached per kept set (by value)


def test_errors_and_no_mutation():
    ei = path_graph(4)
    ei_copy = ei.clone()
    head = LiftHead(4, ei)
    ei[0, 0] = 3  # the head kept its own copy
    assert torch.equal(head.edge_index, ei_copy)
    y = torch.randn(1, 1, 2, 1)
    with pytest.raises(ValueError, match="node_index"):
        head(y, torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="node_index"):
        head(y, torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="K=2"):
        head(y, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="features"):
        head(torch.randn(1, 1, 2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="damping"):
        LiftHead(4, path_graph(4), damping=0.0)
    with pytest.raises(ValueError, match="edge_index"):
        LiftHead(3, path_graph(4))


# ---------------------------------------------------------------- bound head, ridge fit
def test_bound_head_starts_harmonic_and_rejects_other_kept_sets():
    kept = torch.tensor([0, 3])
    free = LiftHead(4, path_graph(4), damping=1.0)
    bound = LiftHead(4, path_graph(4), damping=1.0, node_index=kept)
    y = torch.randn(2, 3, 2, 1)
    assert torch.allclose(bound(y, kept), free(y, kept))
    assert torch.allclose(bound(y), free(y, kept))  # node_index defaults to the bound set
    assert bound.prop_weight.shape == (2, 2) and bound.prop_weight.requires_grad
    with pytest.raises(ValueError, match="bound"):
        bound(y, torch.tensor([0, 2]))
    with pytest.raises(RuntimeError, match="bound head"):
        free.fit_ridge(torch.randn(10, 4))


def test_fit_ridge_recovers_an_exact_linear_relation_and_ignores_invalid_readings():
    g = torch.Generator().manual_seed(0)
    t = 400
    k0, k1, k2 = (torch.randn(t, generator=g) for _ in range(3))
    p1 = 0.3 * k0 + 0.7 * k1 + 2.0
    p3 = -0.5 * k2 + 0.2 * k0 - 1.0
    series = torch.stack([k0, p1, k1, p3, k2], 1).unsqueeze(-1)  # nodes 1, 3 pruned
    valid = torch.ones_like(series, dtype=torch.bool)
    corrupt = series.clone()
    corrupt[7, 1, 0] = 1e4  # a missing reading stored as garbage
    valid[7, 1, 0] = False
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    head = LiftHead(5, ei, node_index=torch.tensor([0, 2, 4]))
    before = corrupt.clone()
    head.fit_ridge(corrupt, ridge=1e-9, valid=valid)
    assert torch.equal(corrupt, before)  # the caller's series is untouched
    y = series[:5, torch.tensor([0, 2, 4])].unsqueeze(0)  # [1, 5, 3, 1]
    out = head(y)
    assert torch.allclose(out[0, :, [1, 3]], series[:5, [1, 3]], atol=1e-3)
    assert torch.allclose(out[0, :, [0, 2, 4]], y[0] + head.kept_bias[[0, 2, 4]])


def test_fit_ridge_bad_input_and_state_dict_roundtrip():
    kept = torch.tensor([0, 2])
    head = LiftHead(3, path_graph(3), node_index=kept)
    with pytest.raises(ValueError, match="series must have shape"):
        head.fit_ridge(torch.randn(10, 4))
    with pytest.raises(ValueError, match="ridge"):
        head.fit_ridge(torch.randn(10, 3), ridge=-1.0)
    with pytest.raises(ValueError, match="valid"):
        head.fit_ridge(torch.randn(10, 3), valid=torch.ones(9, 3, dtype=torch.bool))
    head.fit_ridge(torch.randn(50, 3))
    again = LiftHead(3, path_graph(3), node_index=kept)
    again.load_state_dict(head.state_dict())
    y = torch.randn(2, 2, 2, 1)
    assert torch.equal(again(y), head(y))
    assert "bound" in repr(head)


def test_old_state_dicts_load():
    kept = torch.tensor([0, 2])
    with pytest.raises(TypeError):
        LiftHead(3, path_graph(3), kept=kept)  # the 0.1 alias is gone
    old = LiftHead(3, path_graph(3), node_index=kept)
    old.fit_ridge(torch.randn(40, 3))
    state = {("bound_kept" if k == "bound_node_index" else "bound_pruned" if k == "bound_pruned_index" else k): v
             for k, v in old.state_dict().items()}  # buffer names of earlier versions
    new = LiftHead(3, path_graph(3), node_index=kept)
    new.load_state_dict(state)
    y = torch.randn(2, 2, 2, 1)
    assert torch.equal(new(y), old(y)) and new.propagation(kept).pruned_index.tolist() == [1]


def test_ridge_solve_tiny_exact_and_bad_input():
    from dynst_pyg.linalg import ridge_penalty, ridge_solve

    gram = torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    rhs = torch.tensor([[7.0, 1.0], [11.0, 2.0]], dtype=torch.float64)
    assert ridge_penalty(gram, 0.5) == 1.5  # relative: 0.5 * mean(diag) = 0.5 * 3
    w = ridge_solve(gram, rhs, 0.5)
    assert w.tolist() == [[2.0, 1 / 3.5], [2.0, 2 / 5.5]]
    assert torch.equal(ridge_solve(gram, rhs[:, 0], 0.0), torch.tensor([3.5, 2.75], dtype=torch.float64))
    with pytest.raises(ValueError, match="'ridge' must be a number >= 0"):
        ridge_solve(gram, rhs, -1.0)
    with pytest.raises(ValueError, match="'gram' must be a square"):
        ridge_solve(torch.ones(2, 3), rhs, 0.1)
    with pytest.raises(ValueError, match="'rhs' must be a \\[K\\] or \\[K, M\\] tensor with K=2"):
        ridge_solve(gram, torch.ones(3, 1), 0.1)
