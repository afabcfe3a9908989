"""Tests for dynst_pyg.models.supports (transition matrices, cache, input checks)."""

import pytest
import torch

from hypothesis import given, settings
from hypothesis import strategies as st

from dynst_pyg.models.supports import (EdgeListSupport, SupportCache, check_forward_inputs, dense_adjacency, diffuse,
                                       random_walk_matrix, to_support_format, transition_supports)


def test_dense_adjacency_sums_duplicates_and_is_directed():
    ei = torch.tensor([[0, 0, 1, 0], [1, 1, 2, 2]])
    ew = torch.tensor([1.0, 2.0, 4.0, 1.0])
    a = dense_adjacency(ei, ew, 4)
    expected = torch.zeros(4, 4)
    expected[0, 1] = 3.0
    expected[1, 2] = 4.0
    expected[0, 2] = 1.0
    assert torch.equal(a, expected)


def test_transition_supports_exact_values_and_isolated_node():
    # 0 -> 1 (w 1), 0 -> 2 (w 3), 1 -> 2 (w 2); node 3 isolated
    ei = torch.tensor([[0, 0, 1], [1, 2, 2]])
    ew = torch.tensor([1.0, 3.0, 2.0])
    fwd, bwd = transition_supports(ei, ew, 4)
    # P_f = D_out^-1 A: row 0 -> [0, .25, .75, 0], row 1 -> [0, 0, 1, 0]
    pf = torch.tensor([[0, .25, .75, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0.]])
    assert torch.allclose(fwd, pf.t())
    # P_b = D_in^-1 A^T: in-degree of 1 is 1, of 2 is 5
    pb = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0], [.6, .4, 0, 0], [0, 0, 0, 0.]])
    assert torch.allclose(bwd, pb.t())
    assert torch.isfinite(fwd).all() and torch.isfinite(bwd).all()
    assert fwd[:, 3].abs().sum() == 0 and fwd[3].abs().sum() == 0
    # one step x' = S x: node 2 receives from 0 (0.75) and 1 (1.0)
    x = torch.tensor([[1.0], [10.0], [100.0], [1000.0]])
    assert torch.allclose(fwd @ x, torch.tensor([[0.0], [0.25], [10.75], [0.0]]))


def test_random_walk_matrix_zero_rows_no_nan():
    a = torch.zeros(3, 3)
    a[0, 1] = 2.0
    p = random_walk_matrix(a)
    assert torch.equal(p, torch.tensor([[0, 1.0, 0], [0, 0, 0], [0, 0, 0]]))


def test_transition_supports_rejects_bad_input():
    with pytest.raises(ValueError, match="edge_index"):
        transition_supports(torch.tensor([[0, 5], [1, 2]]), None, 3)
    with pytest.raises(ValueError, match="edge_weight"):
        transition_supports(torch.tensor([[0], [1]]), torch.ones(2), 3)
    with pytest.raises(ValueError, match="non-negative"):
        transition_supports(torch.tensor([[0], [1]]), torch.tensor([-1.0]), 3)
    with pytest.raises(ValueError, match="kind"):
        transition_supports(torch.tensor([[0], [1]]), None, 3, kind="both")


def test_sparse_and_dense_diffusion_agree():
    torch.manual_seed(1)
    a = torch.rand(6, 6) * (torch.rand(6, 6) < 0.3)
    z = torch.randn(6, 2, 3, 4)
    dense = diffuse(a, z)
    sparse = diffuse(to_support_format(a, True), z)
    assert torch.allclose(dense, sparse, atol=1e-6)
    assert torch.allclose(dense, torch.einsum("vw,wbtc->vbtc", a, z), atol=1e-6)
    assert to_support_format(torch.eye(10), "auto").layout == torch.sparse_csr
    assert to_support_format(torch.ones(3, 3), "auto").layout == torch.strided


def test_support_cache_identity_and_inplace_invalidation():
    cache = SupportCache(maxsize=2)
    ei = torch.tensor([[0, 1], [1, 2]])
    ew = torch.ones(2)
    build = lambda: transition_supports(ei, ew, 3)  # noqa: E731
    s1 = cache.get(ei, ew, 3, ei.device, torch.float32, build)
    s2 = cache.get(ei, ew, 3, ei.device, torch.float32, build)
    assert s1 is s2 and cache.builds == 1
    ew.mul_(2.0)  # in-place change must invalidate
    cache.get(ei, ew, 3, ei.device, torch.float32, build)
    assert cache.builds == 2
    cache.get(ei.clone(), ew, 3, ei.device, torch.float32, build)  # other object
    assert cache.builds == 3 and len(cache) == 2


def test_check_forward_inputs_messages():
    ei = torch.tensor([[0], [1]])
    x = torch.randn(2, 12, 3, 1)
    assert check_forward_inputs(x, ei, None, None, num_nodes=3, in_features=1) == 3
    with pytest.raises(ValueError, match="node_index"):
        check_forward_inputs(x[:, :, :2], ei, None, None, num_nodes=3, in_features=1)
    with pytest.raises(ValueError, match="in_features"):
        check_forward_inputs(x, ei, None, None, num_nodes=3, in_features=2)
    with pytest.raises(ValueError, match="node_index values"):
        check_forward_inputs(x[:, :, :2], ei, None, torch.tensor([0, 7]), num_nodes=3, in_features=1)
    with pytest.raises(ValueError, match="duplicate"):
        check_forward_inputs(x[:, :, :2], ei, None, torch.tensor([1, 1]), num_nodes=3, in_features=1)
    with pytest.raises(ValueError, match=r"\[B, T_in, K, F\]"):
        check_forward_inputs(x[0], ei, None, None, num_nodes=3, in_features=1)


def test_edge_list_support_diffuses_like_the_matrix():
    s = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    e = EdgeListSupport.from_matrix(s)
    assert e.row.tolist() == [0, 0, 1] and e.col.tolist() == [1, 2, 0] and e.value.tolist() == [0.5, 0.5, 1.0]
    assert tuple(e.shape) == (3, 3)
    z = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert torch.equal(diffuse(e, z), torch.tensor([[4.0, 5.0], [1.0, 2.0], [0.0, 0.0]]))  # row 2 has no edge


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 12), density=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_edge_list_support_matches_dense_and_csr(k, density, seed):
    g = torch.Generator().manual_seed(seed)
    s = (torch.rand(k, k, generator=g) < density).float() * torch.rand(k, k, generator=g)
    z = torch.randn(k, 3, 4, generator=g)
    want = diffuse(s, z)
    torch.testing.assert_close(diffuse(EdgeListSupport.from_matrix(s), z), want)
    torch.testing.assert_close(diffuse(EdgeListSupport.from_matrix(s.to_sparse_csr()), z), want)
