"""Paired sensor dropout: the vectorised independent set equals the sequential greedy one; attribution."""

from __future__ import annotations

import torch
from hypothesis import given, settings, strategies as st

from dynst_pyg.scoring.gate import SensorGate
from dynst_pyg.scoring.marginal import PairedDropoutScorer, greedy_independent_set


def _sequential(n, edges, active, order):
    nb = [set() for _ in range(n)]
    for u, v in edges:
        if u != v:
            nb[u].add(v)
            nb[v].add(u)
    out, blocked = [False] * n, [not a for a in active]
    for i in order:
        if not blocked[i]:
            out[i] = blocked[i] = True
            for j in nb[i]:
                blocked[j] = True
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
    st.lists(st.booleans(), min_size=n, max_size=n), st.permutations(list(range(n))))))
def test_parallel_greedy_equals_the_sequential_pass(case):
    n, edges, active, order = case
    ei = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    sc = PairedDropoutScorer(ei, n)
    prio = torch.empty(n, dtype=torch.long)
    prio[torch.tensor(order)] = torch.arange(n)
    got = greedy_independent_set(sc.src, sc.dst, torch.tensor(active), prio)
    assert got.tolist() == _sequential(n, edges, active, order)


def test_supports_differ_only_on_an_independent_probe_set():
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])               # path 0-1-2-3-4
    sc = PairedDropoutScorer(ei, 5, keep_prob=0.5)
    active = torch.tensor([True, True, True, True, False])
    on, off, probe = sc.supports(active, torch.Generator().manual_seed(0))
    assert torch.equal(on & ~off, probe) and not bool((off & ~on).any())
    assert not bool((probe & ~active).any())
    p = probe.nonzero().view(-1).tolist()
    assert all(abs(a - b) != 1 for a in p for b in p if a != b)  # no two probed sensors are neighbours
    a, b, c = sc.supports(active, torch.Generator().manual_seed(0))
    assert torch.equal(a, on) and torch.equal(c, probe)             # seeded: the same on every rank


def test_attribution_by_target_and_scope():
    ei = torch.tensor([[0, 1], [1, 2]])                           # path 0-1-2 (directions ignored)
    loss = torch.tensor([1.0, 10.0, 100.0])
    assert PairedDropoutScorer(ei, 3, scope="node").attribute(loss).tolist() == [1.0, 10.0, 100.0]
    assert PairedDropoutScorer(ei, 3).attribute(loss).tolist() == [11.0, 111.0, 110.0]
    assert PairedDropoutScorer(ei, 3, target="kept").attribute(loss).tolist() == [10.0, 50.5, 10.0]
    gate = SensorGate(3)
    PairedDropoutScorer(ei, 3, scope="node").record(gate, loss, loss + torch.tensor([0.0, 2.0, 0.0]),
                                                     torch.tensor([False, True, False]))
    assert gate.marginal.tolist() == [0.0, 2.0, 0.0] and gate.marginal_count.tolist() == [0, 1, 0]
