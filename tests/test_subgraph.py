"""Tests for dynst_pyg.graph: induced subgraph, k-hop and Kron reconnection, select/scatter_kept."""
from __future__ import annotations

import pickle

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dynst_pyg.graph.reconnect as reconnect_mod
from dynst_pyg.graph import induced_subgraph, khop_reconnect, kron_reduction, scatter_kept, select
from dynst_pyg.selection.mask import SensorMask


# --------------------------------------------------------------------------- helpers
def random_digraph(n: int, m: int, seed: int, self_loops: bool = True):
    """Random directed graph without duplicate edges, weights in (0, 1]."""
    rng = np.random.default_rng(seed)
    m = min(m, n * n if self_loops else n * (n - 1))
    pairs = set()
    while len(pairs) < m:
        u, v = (int(a) for a in rng.integers(0, n, 2))
        if u == v and not self_loops:
            continue
        pairs.add((u, v))
    ei = torch.tensor(sorted(pairs), dtype=torch.long).t().contiguous()
    w = torch.from_numpy(rng.uniform(0.05, 1.0, ei.size(1)))
    return ei, w


def to_nx(ei: torch.Tensor, w: torch.Tensor, n: int) -> nx.DiGraph:
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    for (u, v), x in zip(ei.t().tolist(), w.tolist()):
        G.add_edge(u, v, weight=x)
    return G


def edge_dict(ei: torch.Tensor, w: torch.Tensor) -> dict:
    return {(u, v): x for (u, v), x in zip(ei.t().tolist(), w.tolist())}


def dense_kron(ei: torch.Tensor, w: torch.Tensor, keep: np.ndarray, n: int) -> np.ndarray:
    """Reference: off-diagonal weights -(L_kk - L_kp L_pp^-1 L_pk) of the symmetrised Laplacian."""
    W = np.zeros((n, n))
    np.add.at(W, (ei[0].numpy(), ei[1].numpy()), w.numpy().astype(np.float64))
    np.fill_diagonal(W, 0.0)
    A = (W + W.T) / 2
    L = np.diag(A.sum(1)) - A
    p = np.setdiff1d(np.arange(n), keep)
    S = L[np.ix_(keep, keep)] - L[np.ix_(keep, p)] @ np.linalg.solve(L[np.ix_(p, p)], L[np.ix_(p, keep)])
    R = -S
    np.fill_diagonal(R, 0.0)
    return R


def to_dense(ei: torch.Tensor, w: torch.Tensor, k: int, skip_loops: bool = True) -> np.ndarray:
    R = np.zeros((k, k))
    for (u, v), x in zip(ei.t().tolist(), w.tolist()):
        if skip_loops and u == v:
            continue
        R[u, v] += x
    return R


def connected_random_graph(n: int, extra: int, seed: int):
    """Random directed graph that contains a Hamiltonian path, so the symmetrised graph is connected."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    ring = [(int(perm[i]), int(perm[i + 1])) for i in range(n - 1)]
    pairs = set(ring)
    while len(pairs) < n - 1 + extra:
        u, v = (int(a) for a in rng.integers(0, n, 2))
        if u != v:
            pairs.add((u, v))
    ei = torch.tensor(sorted(pairs), dtype=torch.long).t().contiguous()
    w = torch.from_numpy(rng.uniform(0.1, 1.0, ei.size(1)))
    return ei, w


# --------------------------------------------------------------------------- induced ("none")
def test_induced_tiny_exact():
    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0],
                       [1, 0, 2, 1, 3, 2, 0, 3]])
    w = torch.tensor([1., 2., 3., 4., 5., 6., 7., 8.])
    attr = torch.arange(16, dtype=torch.float).view(8, 2)
    out_ei, out_w, emask = induced_subgraph(torch.tensor([1, 2, 3]), ei, w, num_nodes=4, return_edge_mask=True)
    assert out_ei.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert out_w.tolist() == [3., 4., 5., 6.]
    assert emask.tolist() == [False, False, True, True, True, True, False, False]
    # multi-dimensional edge features follow the kept edges, as in torch_geometric.utils.subgraph
    a_ei, out_a = induced_subgraph(torch.tensor([1, 2, 3]), ei, attr, num_nodes=4)
    assert torch.equal(a_ei, out_ei) and out_a.tolist() == attr[2:6].tolist()
    # original ids with relabel_nodes=False
    o_ei, _ = induced_subgraph(torch.tensor([1, 2, 3]), ei, w, num_nodes=4, relabel_nodes=False)
    assert o_ei.tolist() == [[1, 2, 2, 3], [2, 1, 3, 2]]
    # boolean mask and SensorMask give the same result
    m = SensorMask.from_indices([1, 2, 3], 4)
    for keep in (m, m.bool_mask):
        e2, w2 = induced_subgraph(keep, ei, w, num_nodes=4)
        assert torch.equal(e2, out_ei) and torch.equal(w2, out_w)
    # no weight in, no weight out
    e3, w3 = induced_subgraph(m, ei, None)
    assert torch.equal(e3, out_ei) and w3 is None
    # an unsorted index tensor relabels in the order given (node keep[i] -> i), as PyG does
    e4, w4 = induced_subgraph(torch.tensor([3, 1, 2]), ei, w, num_nodes=4)
    assert e4.tolist() == [[1, 2, 2, 0], [2, 1, 0, 2]] and w4.tolist() == [3., 4., 5., 6.]


@pytest.mark.parametrize("seed", range(6))
def test_induced_equals_networkx_random(seed):
    n = 30 + 7 * seed
    ei, w = random_digraph(n, 4 * n, seed)
    rng = np.random.default_rng(100 + seed)
    keep = np.sort(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False))
    out_ei, out_w = induced_subgraph(SensorMask.from_indices(keep, n), ei, w, num_nodes=n)
    H = to_nx(ei, w, n).subgraph(keep.tolist())
    relabel = {int(v): i for i, v in enumerate(keep)}
    expected = {(relabel[u], relabel[v]): d["weight"] for u, v, d in H.edges(data=True)}
    got = edge_dict(out_ei, out_w)
    assert out_ei.size(1) == len(got)  # no duplicates
    assert got == expected


def _metr_la_edges(path):
    with open(path, "rb") as fh:
        _, _, adj = pickle.load(fh, encoding="latin1")
    adj = np.asarray(adj, dtype=np.float64)
    r, c = np.nonzero(adj)
    return (torch.from_numpy(np.stack([r, c]).astype(np.int64)), torch.from_numpy(adj[r, c]), adj.shape[0])


@pytest.mark.data
def test_induced_equals_networkx_metr_la(metr_la_adj_path):
    ei, w, n = _metr_la_edges(metr_la_adj_path)
    assert n == 207 and ei.size(1) == 1722
    G = to_nx(ei, w, n)
    for seed in range(3):
        keep = SensorMask.from_scores(torch.from_numpy(np.random.default_rng(seed).random(n)), sparsity=0.5)
        out_ei, out_w = induced_subgraph(keep, ei, w, num_nodes=n)
        kept = keep.keep.tolist()
        relabel = {v: i for i, v in enumerate(kept)}
        expected = {(relabel[u], relabel[v]): d["weight"] for u, v, d in G.subgraph(kept).edges(data=True)}
        assert edge_dict(out_ei, out_w) == expected
        assert out_ei.size(1) == len(expected)


# --------------------------------------------------------------------------- khop
def test_khop_tiny_exact():
    # 0 -> 1 -> 2 (pruned 1), 0 -> 3 -> 4 -> 2 (pruned 3, 4), 2 -> 1 -> 0
    ei = torch.tensor([[0, 1, 0, 3, 4, 2, 1, 0],
                       [1, 2, 3, 4, 2, 1, 0, 5]])
    w = torch.tensor([0.5, 0.4, 0.9, 0.9, 0.9, 1.0, 0.3, 0.7])
    keep = SensorMask.from_indices([0, 2, 5], 6)
    add_ei, add_w = khop_reconnect(keep, ei, w, k=2, relabel_nodes=False)
    assert add_ei.tolist() == [[0, 2], [2, 0]]
    assert add_w.tolist() == pytest.approx([0.5 * 0.4, 1.0 * 0.3])
    # relabelled by default: kept 0, 2, 5 -> 0, 1, 2
    assert khop_reconnect(keep, ei, w, k=2)[0].tolist() == [[0, 1], [1, 0]]
    # with 3 hops the path 0->3->4->2 (0.729) beats 0->1->2 (0.2)
    add_ei, add_w = khop_reconnect(keep, ei, w, k=3, relabel_nodes=False)
    assert add_ei.tolist() == [[0, 2], [2, 0]]
    assert add_w.tolist() == pytest.approx([0.9 ** 3, 0.3])
    # relabelled and appended after the induced edges
    out_ei, out_w = induced_subgraph(keep, ei, w, reconnect="khop", k=3)
    assert out_ei.tolist() == [[0, 0, 1], [2, 1, 0]]
    assert out_w.tolist() == pytest.approx([0.7, 0.729, 0.3])
    # k=1 adds nothing
    e1, w1 = induced_subgraph(keep, ei, w, reconnect="khop", k=1)
    e0, w0 = induced_subgraph(keep, ei, w)
    assert torch.equal(e1, e0) and torch.allclose(w1, w0)


def test_khop_skips_existing_edges_and_self_loops():
    ei = torch.tensor([[0, 1, 0, 2, 1],
                       [1, 2, 2, 1, 0]])
    w = torch.tensor([1.0, 1.0, 0.1, 1.0, 1.0])
    keep = SensorMask.from_indices([0, 2], 3)
    add_ei, add_w = khop_reconnect(keep, ei, w, k=2, relabel_nodes=False)
    # 0 -> 2 exists directly (kept weight 0.1); 2 -> 1 -> 0 is new; 0 -> 1 -> 0 is a loop (skipped)
    assert add_ei.tolist() == [[2], [0]]
    out_ei, out_w = induced_subgraph(keep, ei, w, reconnect="khop")
    assert edge_dict(out_ei, out_w) == {(0, 1): pytest.approx(0.1), (1, 0): 1.0}


@pytest.mark.parametrize("seed", range(5))
def test_khop_preserves_directed_reachability(seed):
    n = 40
    ei, w = random_digraph(n, 70, seed, self_loops=False)
    rng = np.random.default_rng(seed)
    keep = SensorMask.from_indices(np.sort(rng.choice(n, 24, replace=False)), n)
    G = to_nx(ei, w, n)
    pruned = keep.pruned.tolist()
    longest_run = max((len(c) for c in nx.weakly_connected_components(G.subgraph(pruned))), default=0)
    out_ei, out_w = induced_subgraph(keep, ei, w, reconnect="khop", k=longest_run + 1)
    H = to_nx(out_ei, out_w, keep.num_kept)
    kept = keep.keep.tolist()
    for i, u in enumerate(kept):
        reach_g = {kept.index(v) for v in nx.descendants(G, u) if v in kept and v != u}
        reach_h = set(nx.descendants(H, i)) - {i}
        assert reach_g == reach_h
    # the plain induced subgraph loses some reachability on these graphs (the test is meaningful)
    if seed == 0:
        e0, w0 = induced_subgraph(keep, ei, w)
        assert to_nx(e0, w0, keep.num_kept).number_of_edges() < H.number_of_edges()


def test_khop_weights_are_best_products_bruteforce():
    n = 12
    ei, w = random_digraph(n, 40, 7, self_loops=False)
    keep = SensorMask.from_indices([0, 3, 5, 8, 11], n)
    k = 4
    add_ei, add_w = khop_reconnect(keep, ei, w, k=k, relabel_nodes=False)
    G = to_nx(ei, w, n)
    kept = set(keep.keep.tolist())
    best = {}
    for u in kept:
        for v in kept:
            if u == v or G.has_edge(u, v):
                continue
            for path in nx.all_simple_paths(G, u, v, cutoff=k):
                if any(p in kept for p in path[1:-1]) or len(path) < 3:
                    continue
                prod = float(np.prod([G[a][b]["weight"] for a, b in zip(path[:-1], path[1:])]))
                best[(u, v)] = max(best.get((u, v), 0.0), prod)
    got = edge_dict(add_ei, add_w)
    assert got.keys() == best.keys()
    for key in best:
        assert got[key] == pytest.approx(best[key])


# --------------------------------------------------------------------------- kron
def test_kron_series_and_parallel_exact():
    # path 0 -a- 1 -b- 2, prune 1: conductances in series -> ab / (a + b)
    ei = torch.tensor([[0, 1], [1, 2]])
    w = torch.tensor([2.0, 3.0], dtype=torch.float64)
    out_ei, out_w = kron_reduction(torch.tensor([0, 2]), ei, w, num_nodes=3)
    # symmetrisation halves directed weights: (1 * 1.5) / 2.5
    assert out_ei.tolist() == [[0, 1], [1, 0]]
    assert out_w.tolist() == pytest.approx([0.6, 0.6])
    # undirected (both directions given) star with centre pruned
    ei = torch.tensor([[0, 1, 0, 2, 0, 3], [1, 0, 2, 0, 3, 0]])
    w = torch.tensor([1., 1., 2., 2., 3., 3.])
    out_ei, out_w = induced_subgraph(SensorMask.from_indices([1, 2, 3], 4), ei, w, reconnect="kron")
    R = to_dense(out_ei, out_w, 3)
    expected = np.outer([1, 2, 3], [1, 2, 3]) / 6.0
    np.fill_diagonal(expected, 0)
    assert np.allclose(R, expected, atol=1e-12)
    assert out_w.dtype == torch.float32


@pytest.mark.parametrize("seed", range(8))
def test_kron_equals_dense_schur_complement(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 60))
    ei, w = connected_random_graph(n, 2 * n, seed)
    keep = np.sort(rng.choice(n, size=int(rng.integers(1, n)), replace=False))
    out_ei, out_w = kron_reduction(torch.from_numpy(keep), ei, w, num_nodes=n, tol=0.0)
    R = to_dense(out_ei, out_w, len(keep))
    assert np.abs(R - dense_kron(ei, w, keep, n)).max() < 1e-6
    assert np.allclose(R, R.T)
    assert bool((out_w > 0).all())


@pytest.mark.parametrize("block_max, trsm_max, out_max", [
    (0, 10 ** 9, 10 ** 9),      # every component via splu, dense triangular solves, dense output
    (0, 0, 0),                  # splu solves, sparse (COO) output
    (10 ** 9, 0, 0),            # every component as a batched dense inverse, COO output
])
def test_kron_all_code_paths_agree_with_dense(monkeypatch, block_max, trsm_max, out_max):
    monkeypatch.setattr(reconnect_mod, "_DENSE_BLOCK_MAX", block_max)
    monkeypatch.setattr(reconnect_mod, "_DENSE_TRSM_MAX", trsm_max)
    monkeypatch.setattr(reconnect_mod, "_DENSE_OUT_MAX", out_max)
    for seed in range(3):
        n = 150
        ei, w = connected_random_graph(n, 4 * n, seed)
        keep = np.sort(np.random.default_rng(seed).choice(n, 60, replace=False))
        out_ei, out_w = kron_reduction(torch.from_numpy(keep), ei, w, num_nodes=n, tol=0.0)
        R = to_dense(out_ei, out_w, len(keep))
        assert np.abs(R - dense_kron(ei, w, keep, n)).max() < 1e-6
        # sorted by (source, target)
        key = out_ei[0] * len(keep) + out_ei[1]
        assert bool((key[1:] > key[:-1]).all())


def test_kron_long_pruned_chain_uses_sparse_lu():
    # 0 - 1 - ... - 101 with unit weights in both directions; keep the two ends:
    # 101 unit conductances in series -> 1/101 (component of 100 pruned nodes > dense block size)
    n = 102
    src = torch.arange(n - 1)
    ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], 1)
    out_ei, out_w = kron_reduction(SensorMask.from_indices([0, n - 1], n), ei, None)
    assert out_ei.tolist() == [[0, 1], [1, 0]]
    assert out_w.dtype == torch.float32  # default dtype when edge_weight is None
    assert out_w.tolist() == pytest.approx([1 / 101] * 2, rel=1e-6)


def test_kron_keeps_self_loops_and_ignores_isolated_pruned_components():
    # kept 0, 2 joined via pruned 1; pruned 3 - 4 touch no kept node (singular block, ignored)
    ei = torch.tensor([[0, 1, 1, 2, 0, 3, 4, 2],
                       [1, 0, 2, 1, 0, 4, 3, 2]])
    w = torch.tensor([1., 1., 1., 1., 0.7, 1., 1., 0.2])
    out_ei, out_w = induced_subgraph(SensorMask.from_indices([0, 2], 5), ei, w, reconnect="kron")
    assert edge_dict(out_ei, out_w) == {(0, 0): pytest.approx(0.7), (0, 1): pytest.approx(0.5),
                                        (1, 0): pytest.approx(0.5), (1, 1): pytest.approx(0.2)}


def test_kron_tolerance_sparsifies():
    ei = torch.tensor([[0, 1], [1, 2]])
    w = torch.tensor([1e-3, 1e-3], dtype=torch.float64)
    keep = torch.tensor([0, 2])
    assert kron_reduction(keep, ei, w, num_nodes=3, tol=0.0)[0].size(1) == 2
    assert kron_reduction(keep, ei, w, num_nodes=3, tol=1e-3)[0].size(1) == 0


@pytest.mark.parametrize("seed", range(5))
def test_kron_preserves_connectivity(seed):
    n = 60
    rng = np.random.default_rng(seed)
    ei, w = random_digraph(n, 70, seed, self_loops=False)  # several components
    keep = SensorMask.from_indices(np.sort(rng.choice(n, 30, replace=False)), n)
    out_ei, out_w = induced_subgraph(keep, ei, w, reconnect="kron")
    G = to_nx(ei, w, n).to_undirected()
    H = to_nx(out_ei, out_w, keep.num_kept).to_undirected()
    kept = keep.keep.tolist()
    comp_g = {}
    for c, nodes in enumerate(nx.connected_components(G)):
        for v in nodes:
            comp_g[v] = c
    for i, u in enumerate(kept):
        for j, v in enumerate(kept):
            assert (comp_g[u] == comp_g[v]) == nx.has_path(H, i, j)


def test_kron_is_transitive():
    """Kron-reducing in two steps equals reducing once (quotient property of the Schur complement)."""
    n = 80
    ei, w = connected_random_graph(n, 3 * n, 3)
    a = SensorMask.from_indices(np.sort(np.random.default_rng(0).choice(n, 50, replace=False)), n)
    inner = SensorMask.from_indices(np.sort(np.random.default_rng(1).choice(50, 20, replace=False)), 50)
    e1, w1 = induced_subgraph(a, ei, w, reconnect="kron", tol=0.0)
    e2, w2 = induced_subgraph(inner, e1, w1, reconnect="kron", tol=0.0)
    e3, w3 = induced_subgraph(a.compose(inner), ei, w, reconnect="kron", tol=0.0)
    assert np.abs(to_dense(e2, w2, 20) - to_dense(e3, w3, 20)).max() < 1e-6


# --------------------------------------------------------------------------- composition (none)
@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.data())
def test_masking_twice_equals_composed_mask(n, data):
    seed = data.draw(st.integers(0, 10_000))
    ei, w = random_digraph(n, 3 * n, seed)
    keep_a = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    a = SensorMask.from_indices(keep_a, n)
    keep_b = data.draw(st.lists(st.integers(0, a.num_kept - 1), min_size=1, max_size=a.num_kept, unique=True))
    b = SensorMask.from_indices(keep_b, a.num_kept)
    e1, w1 = induced_subgraph(a, ei, w)
    e2, w2 = induced_subgraph(b, e1, w1)
    e3, w3 = induced_subgraph(a.compose(b), ei, w)
    assert torch.equal(e2, e3) and torch.equal(w2, w3)
    # n_id maps back: node i of the result is original node a.keep[b.keep[i]]
    n_id = a.keep[b.keep]
    orig = edge_dict(ei, w)
    for (u, v), x in edge_dict(e2, w2).items():
        assert orig[(int(n_id[u]), int(n_id[v]))] == x


# --------------------------------------------------------------------------- select / scatter_kept
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 4), st.data())
def test_lift_select_roundtrip(n, b, data):
    keep_list = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    mask = SensorMask.from_indices(keep_list, n)
    fill = data.draw(st.floats(-3, 3, allow_nan=False))
    x = torch.randn(b, 5, n, 2)
    xs = select(x, mask)
    assert xs.shape == (b, 5, mask.num_kept, 2)
    y = scatter_kept(xs, mask, fill=fill)
    km = mask.bool_mask
    assert torch.equal(y[:, :, km], x[:, :, km])
    assert bool((y[:, :, ~km] == torch.tensor(fill, dtype=x.dtype)).all())
    # index and boolean forms agree; other node axes work
    assert torch.equal(select(x, mask.keep), xs) and torch.equal(select(x, km), xs)
    assert torch.equal(scatter_kept(xs, mask.keep, n, fill=fill), y)
    x0 = torch.randn(n, 3)
    assert torch.equal(scatter_kept(select(x0, mask, dim=0), mask, dim=0)[km], x0[km])


def test_select_lift_errors_and_no_mutation():
    x = torch.randn(2, 3, 5, 1)
    x_before = x.clone()
    m = SensorMask.from_indices([0, 3], 5)
    with pytest.raises(ValueError, match="SensorMask over 5 nodes.*'x' has 3"):
        select(x, m, dim=1)
    with pytest.raises(ValueError, match="'dim'"):
        select(x, m, dim=4)
    with pytest.raises(ValueError, match="'subset' holds index 7"):
        select(x, torch.tensor([7]))
    with pytest.raises(ValueError, match="'y_kept' has 3 entries"):
        scatter_kept(torch.randn(2, 3, 1), m, dim=1)
    with pytest.raises(ValueError, match="'num_nodes' is required"):
        scatter_kept(torch.randn(2, 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="duplicate"):
        scatter_kept(torch.randn(2, 1), torch.tensor([1, 1]), 4)
    with pytest.raises(TypeError, match="'x'"):
        select([1, 2], m)
    assert torch.equal(x, x_before)


# --------------------------------------------------------------------------- bad input
def test_induced_subgraph_bad_input_raises_and_leaves_inputs_unchanged():
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    w = torch.tensor([1.0, -0.5, 2.0])
    ei0, w0 = ei.clone(), w.clone()
    keep = torch.tensor([2, 0])
    cases = [
        (dict(reconnect="bogus"), ValueError, "`reconnect` must be one of none, khop, kron, got 'bogus'"),
        (dict(reconnect="khop", k=0), ValueError, "`k` must be a positive int"),
        (dict(reconnect="khop", k=True), TypeError, "`k` must be a positive int"),
        (dict(reconnect="kron"), ValueError, "'subset' must be sorted"),
    ]
    for kw, exc, match in cases:
        with pytest.raises(exc, match=match):
            induced_subgraph(keep, ei, w, num_nodes=3, **kw)
    sk = torch.tensor([0, 2])
    with pytest.raises(ValueError, match="non-negative"):
        induced_subgraph(sk, ei, w, num_nodes=3, reconnect="kron")
    with pytest.raises(ValueError, match="non-negative"):
        induced_subgraph(sk, ei, w, num_nodes=3, reconnect="khop")
    with pytest.raises(ValueError, match="'edge_attr' must be a tensor with E=3 rows"):
        induced_subgraph(sk, ei, w[:2], num_nodes=3)
    with pytest.raises(ValueError, match=r"`edge_index` has node indices in \[0, 2\] but the graph has 2 nodes"):
        induced_subgraph(sk.new_tensor([0, 1]), ei, w, num_nodes=2)
    with pytest.raises(ValueError, match=r"`edge_index` must have shape \[2, E\]"):
        induced_subgraph(sk, ei.t(), w, num_nodes=3)
    with pytest.raises(TypeError, match="`edge_index` must be an integer"):
        induced_subgraph(sk, ei.float(), w, num_nodes=3)
    with pytest.raises(TypeError, match="`edge_weight` must be a float tensor"):
        induced_subgraph(sk, ei, torch.tensor([1, 2, 3]), num_nodes=3, reconnect="kron")
    with pytest.raises(ValueError, match=r"`edge_weight` must have shape \[E\] = \[3\]"):
        khop_reconnect(sk, ei, w[:2].abs(), num_nodes=3)
    with pytest.raises(ValueError, match="empty selection"):
        induced_subgraph(torch.tensor([], dtype=torch.long), ei, w, num_nodes=3)
    with pytest.raises(ValueError, match="duplicate"):
        induced_subgraph(torch.tensor([0, 0]), ei, w, num_nodes=3)
    with pytest.raises(ValueError, match="'num_nodes' is required"):
        induced_subgraph(sk, ei, w)
    with pytest.raises(ValueError, match="'edge_attr' must be 1-D edge weights"):
        induced_subgraph(sk, ei, torch.ones(3, 2), num_nodes=3, reconnect="kron")
    with pytest.raises(ValueError, match="'return_edge_mask' needs reconnect='none'"):
        induced_subgraph(sk, ei, w.abs(), num_nodes=3, reconnect="khop", return_edge_mask=True)
    with pytest.raises(TypeError):  # everything after edge_attr is keyword-only, as in PyG
        induced_subgraph(sk, ei, w, 3)
    with pytest.raises(ValueError, match="'subset' is a SensorMask over 3 nodes but num_nodes=4"):
        induced_subgraph(SensorMask.from_indices([0], 3), ei, w, num_nodes=4)
    with pytest.raises(ValueError, match="'tol'"):
        kron_reduction(sk, ei, w.abs(), num_nodes=3, tol=-1.0)
    nan_w = torch.tensor([1.0, float("nan"), 1.0])
    with pytest.raises(ValueError, match="finite"):
        induced_subgraph(sk, ei, nan_w, num_nodes=3, reconnect="kron")
    assert torch.equal(ei, ei0) and torch.equal(w, w0)


# --------------------------------------------------------------------------- relabelling, argument order
def test_kron_relabel_nodes_false_returns_original_ids():
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    w = torch.tensor([1., 1., 1., 1., 1., 1.])
    keep = SensorMask.from_indices([0, 3], 4)
    r_ei, r_w = kron_reduction(keep, ei, w)
    o_ei, o_w = kron_reduction(keep, ei, w, relabel_nodes=False)
    assert r_ei.tolist() == [[0, 1], [1, 0]] and o_ei.tolist() == [[0, 3], [3, 0]]
    assert torch.equal(r_w, o_w) and r_w.tolist() == pytest.approx([1 / 3, 1 / 3])
    for mode in ("khop", "kron"):  # the same edges either way, only the numbering differs
        a_ei, a_w = induced_subgraph(keep, ei, w, reconnect=mode)
        b_ei, b_w = induced_subgraph(keep, ei, w, reconnect=mode, relabel_nodes=False)
        assert torch.equal(keep.keep[a_ei], b_ei) and torch.equal(a_w, b_w)


def test_former_argument_order_is_refused_naming_subset():
    ei, w = connected_random_graph(12, 20, 0)
    keep = SensorMask.from_indices([0, 3, 4, 8, 9], 12)
    with pytest.raises(ValueError, match="`subset` must be 1-D"):  # an edge_index where the kept set goes
        induced_subgraph(ei, w, keep)
    with pytest.raises(ValueError, match="`subset` must be 1-D"):
        khop_reconnect(ei, w, keep)
    with pytest.raises(TypeError, match="keep"):  # the former keyword is gone
        kron_reduction(edge_index=ei, edge_weight=w, keep=keep)
    with pytest.raises(TypeError, match="keep"):
        select(torch.randn(2, 12), keep=keep, dim=1)
