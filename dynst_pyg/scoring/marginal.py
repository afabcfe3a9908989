"""Paired sensor dropout: a zeroth-order estimate of what removing each sensor costs.

During the mask search every batch runs twice, under two supports that differ only on a
*probe set*: a random base support keeps each active sensor with probability
``keep_prob``; a random maximal *independent* set ``S`` of active sensors (no two of them
graph neighbours) is on in the first pass and off in the second. For each probed sensor the
difference of the two passes' losses — the same windows, the same neighbourhood — isolates
that sensor, and :meth:`~dynst_pyg.scoring.SensorGate.record_marginal` merges it into the
gate's marginal value.

Which loss is attributed to a probed sensor:

* ``target="kept"``: the mean loss of its graph neighbours (its own node is not forecast
  once it is pruned);
* ``target="all"``, ``scope="node"``: the loss at its own node;
* ``target="all"``, ``scope="neighbourhood"``: the loss at its node plus the summed loss of
  its neighbours, which also charges a sensor for the neighbours it helps reconstruct.

Everything here is linear in the number of edges: the graph is held as a symmetric edge
list, neighbour sums are scatter-adds, and the independent set is built by rounds of
local minima of random priorities — which yields exactly the set that the sequential
greedy pass over the same random order yields.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PairedDropoutScorer", "greedy_independent_set"]

SCOPES = ("node", "neighbourhood")


def _symmetric_edges(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Unique ``(src, dst)`` pairs of the undirected graph without self-loops, both directions."""
    ei = edge_index.to(torch.long)
    off = ei[0] != ei[1]
    u, v = ei[0, off], ei[1, off]
    both = torch.cat([torch.stack([u, v]), torch.stack([v, u])], dim=1)
    key = torch.unique(both[0] * num_nodes + both[1])
    return key // num_nodes, key % num_nodes


def greedy_independent_set(src: Tensor, dst: Tensor, candidates: Tensor, priority: Tensor) -> Tensor:
    """The maximal independent set that a greedy pass over ``candidates`` in ``priority`` order picks.

    A candidate joins when its priority is lower than that of every candidate neighbour;
    joined nodes and their neighbours leave; repeat. This is the set of the sequential pass
    "visit nodes by increasing priority, take a node unless a taken node is its neighbour".

    Args:
        src (LongTensor): ``[E]`` edge sources of a symmetric graph without self-loops.
        dst (LongTensor): ``[E]`` edge targets.
        candidates (BoolTensor): ``[N]`` nodes that may be taken.
        priority (LongTensor): ``[N]`` distinct priorities (lower first).
    """
    n = candidates.numel()
    cand = candidates.clone()
    out = torch.zeros_like(cand)
    big = torch.full((n,), n, dtype=torch.long, device=cand.device)  # priorities lie in 0 .. n - 1
    while bool(cand.any()):
        nb = torch.where(cand[dst], priority[dst], big[dst])
        lowest = big.clone().scatter_reduce(0, src, nb, reduce="amin")
        join = cand & (priority < lowest)
        out |= join
        hit = torch.zeros_like(cand)
        hit[src[join[dst]]] = True
        cand &= ~join & ~hit
    return out


class PairedDropoutScorer:
    """Probe sets, supports and loss attribution of the paired sensor dropout.

    Args:
        edge_index (LongTensor): ``[2, E]`` graph of the full network (directions and
            self-loops are ignored).
        num_nodes (int): Sensors ``N``.
        keep_prob (float, optional): Probability that an active sensor is on in the base
            support (default: ``0.5``).
        target (str, optional): ``"all"`` or ``"kept"`` (default: ``"all"``).
        scope (str, optional): ``"node"`` or ``"neighbourhood"`` for ``target="all"``
            (default: ``"neighbourhood"``).
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, keep_prob: float = 0.5, target: str = "all",
                 scope: str = "neighbourhood") -> None:
        if not 0.0 < float(keep_prob) <= 1.0:
            raise ValueError(f"`keep_prob` must lie in (0, 1], got {keep_prob!r}")
        if target not in ("all", "kept"):
            raise ValueError(f"`target` must be 'all' or 'kept', got {target!r}")
        if scope not in SCOPES:
            raise ValueError(f"`scope` must be one of {SCOPES}, got {scope!r}")
        self.num_nodes = int(num_nodes)
        self.keep_prob = float(keep_prob)
        self.target = target
        self.scope = scope
        self.src, self.dst = _symmetric_edges(edge_index, self.num_nodes)
        self.degree = torch.bincount(self.src, minlength=self.num_nodes).to(torch.float32)

    def to(self, device: torch.device) -> "PairedDropoutScorer":
        """Moves the graph to ``device`` (in place; returns ``self``)."""
        self.src, self.dst, self.degree = self.src.to(device), self.dst.to(device), self.degree.to(device)
        return self

    def neighbour_sum(self, values: Tensor) -> Tensor:
        """``[N]``: the sum of ``values`` over each node's neighbours."""
        return torch.zeros_like(values).index_add_(0, self.src, values[self.dst])

    def supports(self, active: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(on, off, probe)`` bool ``[N]``: the two supports of one paired step and the probe set.

        ``gen`` (a CPU generator) draws the base support first and then the probe order, so
        a seeded generator gives the same supports on every rank and device.
        """
        dev = active.device
        base = active & (torch.rand(self.num_nodes, generator=gen) < self.keep_prob).to(dev)
        order = torch.randperm(self.num_nodes, generator=gen)
        priority = torch.empty_like(order)
        priority[order] = torch.arange(self.num_nodes)
        probe = greedy_independent_set(self.src, self.dst, active, priority.to(dev))
        on, off = base | probe, base & ~probe
        if not bool(off.any()):
            off = on
        return on, off, probe

    @torch.no_grad()
    def attribute(self, node_loss: Tensor) -> Tensor:
        """``[N]`` loss attributed to each sensor from the per-node loss ``[N]`` of one pass."""
        if self.target == "kept":
            return self.neighbour_sum(node_loss) / self.degree.to(node_loss.dtype).clamp_min(1)
        if self.scope == "neighbourhood":
            return node_loss + self.neighbour_sum(node_loss)
        return node_loss

    @torch.no_grad()
    def record(self, gate, node_loss_on: Tensor, node_loss_off: Tensor, probe: Tensor) -> None:
        """Merges the probed sensors' paired differences into ``gate``'s marginal values."""
        sensors = probe.nonzero().view(-1)
        if sensors.numel():
            on, off = self.attribute(node_loss_on), self.attribute(node_loss_off)
            gate.record_marginal(off[sensors], on[sensors], sensors)

    def __repr__(self) -> str:
        return (f"PairedDropoutScorer(num_nodes={self.num_nodes}, keep_prob={self.keep_prob}, "
                f"target={self.target!r}, scope={self.scope!r})")
