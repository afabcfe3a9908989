"""Partition of a sensor graph into compact clusters of bounded size (recursive breadth-first bisection)."""

from __future__ import annotations

import math
from typing import List

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse import csgraph
from torch import Tensor

from .._checks import check_graph, check_positive_int

__all__ = ["graph_clusters", "adjacency"]


def adjacency(edge_index: Tensor, num_nodes: int) -> sp.csr_matrix:
    """Symmetric unweighted CSR adjacency without self-loops (edge direction ignored)."""
    ei = edge_index.detach().cpu().long().numpy()
    off = ei[0] != ei[1]
    r, c = ei[0, off], ei[1, off]
    a = sp.coo_matrix((np.ones(2 * r.size, dtype=np.int8), (np.r_[r, c], np.r_[c, r])),
                      shape=(num_nodes, num_nodes)).tocsr()
    a.data[:] = 1
    a.sort_indices()
    return a


def _bfs_order(adj: sp.csr_matrix) -> np.ndarray:
    """All nodes of ``adj``, one connected component after another (largest first), each in
    breadth-first order from a pseudo-peripheral node (the last node of a first BFS)."""
    ncomp, labels = csgraph.connected_components(adj, directed=False)
    if ncomp == 1:
        groups = [np.arange(adj.shape[0])]
    else:
        by_label = np.argsort(labels, kind="stable")
        groups = np.split(by_label, np.cumsum(np.bincount(labels, minlength=ncomp))[:-1])
        groups.sort(key=lambda g: (-g.size, int(g[0])))
    out = []
    for nodes in groups:
        if nodes.size <= 2:
            out.append(nodes)
            continue
        sub = adj[nodes][:, nodes]
        first = csgraph.breadth_first_order(sub, 0, directed=False, return_predecessors=False)
        out.append(nodes[csgraph.breadth_first_order(sub, int(first[-1]), directed=False, return_predecessors=False)])
    return np.concatenate(out)


def graph_clusters(edge_index: Tensor, num_nodes: int, max_size: int) -> List[Tensor]:
    """Partition of a graph's nodes into clusters of at most ``max_size`` nodes (recursive BFS bisection).

    A set larger than ``max_size`` is split in two at the middle of its breadth-first order
    from a pseudo-peripheral node (near nodes / far nodes, so both halves stay compact; a
    disconnected set is ordered one component after another, largest first), with
    the cut placed so that each half holds a whole share of the ``ceil(n / max_size)``
    clusters it will become; the halves are split again until they fit. Edge direction and
    weights are ignored; no coordinates are needed. Cost: ``O((N + E) log(N / max_size))``.

    Args:
        edge_index (Tensor): ``[2, E]`` graph.
        num_nodes (int): Number of nodes ``N``.
        max_size (int): Largest cluster size ``m >= 1``.

    Returns:
        list[Tensor]: Sorted long index tensors, disjoint, covering ``0..N-1``, each of size
        ``ceil(m / 2)`` to ``m`` when ``N >= m`` (one cluster of all nodes when ``N <= m``).
    """
    num_nodes = check_positive_int(num_nodes, "num_nodes")
    max_size = check_positive_int(max_size, "max_size")
    check_graph(edge_index, None, num_nodes)
    adj = adjacency(edge_index, num_nodes)
    out: List[np.ndarray] = []
    stack = [np.arange(num_nodes)]
    while stack:
        nodes = stack.pop()
        if nodes.size <= max_size:
            out.append(np.sort(nodes))
            continue
        order = nodes[_bfs_order(adj[nodes][:, nodes])]
        pieces = math.ceil(nodes.size / max_size)
        cut = round(nodes.size * (pieces // 2) / pieces)
        stack.append(order[cut:])
        stack.append(order[:cut])
    out.sort(key=lambda c: int(c[0]))
    return [torch.from_numpy(c.astype(np.int64)) for c in out]
