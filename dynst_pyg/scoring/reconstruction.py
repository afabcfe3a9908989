"""Reconstruction value of sensors: which active sensors best predict every sensor's readings.

The value of a sensor for ``target="all"`` is how late it leaves a *backward elimination*
that repeatedly drops the active sensor whose removal least increases the ridge
reconstruction error of all sensors' (normalised, training) series from the active ones.
The ridge lift head of the served model reconstructs pruned sensors with exactly that
regression, so the elimination scores a sensor by what the served model loses without it,
and, being sequential, it keeps one of two near-duplicates.

Two ways to compute it, with the same maths:

* :func:`training_moments` + :func:`elimination_order` ("exact"): the elimination over all
  ``N`` sensors, ``O(T F N^2 H)`` once for the moments and ``O(K^3)`` per active set of ``K``
  sensors, with several dense ``N x N`` float64 matrices in memory.
* :class:`ReconstructionValue` with ``method="local"``: the same elimination run on graph
  clusters of at most ``m`` sensors (each with a halo of neighbours), merged into one global
  order; ``O(N)`` for a fixed cluster size.

:class:`ReconstructionValue` holds the moments and caches the scores of the last active set.
"""

from __future__ import annotations

import math
import warnings
from typing import List, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse import csgraph
from torch import Tensor

from .._checks import check_graph

__all__ = ["ReconstructionValue", "elimination_order", "graph_clusters", "training_moments"]


# ------------------------------------------------------------------------------ moments
def _centred(series: Tensor, valid: Optional[Tensor], horizons: Sequence[int]) -> tuple[Tensor, List[int]]:
    """Validated float64 CPU series ``[T, N, F]``, centred per sensor and feature, and sorted horizons."""
    if not isinstance(series, Tensor):
        raise TypeError(f"`series` must be a torch.Tensor [T, N] or [T, N, F], got {type(series).__name__}")
    x = series.unsqueeze(-1) if series.dim() == 2 else series
    if x.dim() != 3:
        raise ValueError(f"`series` must have shape [T, N] or [T, N, F], got {tuple(series.shape)}")
    hs = sorted({int(h) for h in horizons})
    if not hs or hs[0] < 0:
        raise ValueError(f"`horizons` must be non-negative integers, got {tuple(horizons)}")
    if x.size(0) <= hs[-1] + 1:
        raise ValueError(f"`series` has {x.size(0)} steps, too few for horizon {hs[-1]}")
    x = x.detach().to(torch.float64).cpu()
    v = torch.isfinite(x)
    if valid is not None:
        vv = (valid.unsqueeze(-1) if valid.dim() == 2 else valid).cpu()
        if vv.shape != x.shape:
            raise ValueError(f"`valid` must have the shape of `series` {tuple(x.shape)}, got {tuple(valid.shape)}")
        if vv.dtype != torch.bool:
            raise ValueError(f"`valid` must be a bool tensor, got {vv.dtype}")
        v = v & vv
    mean = torch.where(v, x, torch.zeros_like(x)).sum(0) / v.sum(0).clamp_min(1)
    return torch.where(v, x - mean, torch.zeros_like(x)), hs


def _moments_of(xc: Tensor, hs: List[int]) -> tuple[Tensor, Tensor]:
    """``(A^T A, sum_h (A^T Y_h)(A^T Y_h)^T)`` of a centred ``[T, n, F]`` series (see :func:`training_moments`)."""
    t = xc.size(0) - hs[-1]
    a = xc[:t]
    gram = torch.einsum("tif,tjf->ij", a, a)
    second = torch.zeros_like(gram)
    for h in hs:
        cross = torch.einsum("tif,tjf->ij", a, xc[h:h + t])  # [n, n]: A^T Y_h
        second += cross @ cross.t()
    return gram, second


@torch.no_grad()
def training_moments(series: Tensor, valid: Optional[Tensor] = None,
                     horizons: Sequence[int] = (0,)) -> tuple[Tensor, Tensor]:
    """Second moments of a training series for :func:`elimination_order` (float64, CPU).

    With ``A`` the centred series at steps ``t`` and ``Y_h`` all sensors at ``t + h``,
    returns ``gram = A^T A`` ``[N, N]`` and ``second = sum_h (A^T Y_h)(A^T Y_h)^T`` ``[N, N]``.
    ``horizons=(0,)`` is same-step reconstruction; horizons ``>= 1`` score sensors by how
    well their current readings predict every sensor's *future* readings, which ignores
    white noise (nobody can predict it) and so prefers the sources of a noisy mix to the
    mix itself. Features are centred separately and summed; invalid readings (``valid``
    False or not finite) are replaced by their sensor's mean first.

    Cost: ``O(T F N^2 |horizons|)`` time and two dense ``N x N`` float64 matrices.

    Args:
        series (Tensor): ``[T, N]`` or ``[T, N, F]``; pass training steps only.
        valid (Tensor, optional): Bool mask like ``series`` (default: all valid).
        horizons (sequence of int, optional): Non-negative steps ahead (default: ``(0,)``).
    """
    return _moments_of(*_centred(series, valid, horizons))


# ------------------------------------------------------------------------------ elimination
def _eliminate(g: Tensor, m: Tensor, lam: float) -> tuple[Tensor, Tensor]:
    """Backward elimination on ``[K, K]`` float64 moments; returns (local index removed at each
    step ``[K]`` long, error increase at that removal ``[K]`` float64).

    Rank-one downdates go through preallocated buffers, and once a fifth of the rows have left
    since the last compaction, the removed rows and columns (all zero but for ``G^{-1}``'s unit
    diagonal) are dropped from both matrices. Every remaining entry sees the same floating-point
    operations as without either, so the order is the same; the compaction cuts the work to about
    ``K^3 / 2.4`` and the buffers avoid allocating ``K x K`` temporaries at every step.
    """
    k = g.size(0)
    gi = torch.linalg.inv(g + lam * torch.eye(k, dtype=torch.float64))
    p = gi @ m @ gi                     # [K, K] = B B^T
    ids = torch.arange(k)               # original local index of each current row
    alive = torch.ones(k, dtype=torch.bool)
    order = torch.empty(k, dtype=torch.long)
    cost = torch.empty(k, dtype=torch.float64)
    b1, b2, b3 = (torch.empty(k, k, dtype=torch.float64) for _ in range(3))
    for step in range(k):
        size = ids.numel()
        if size - (k - step) >= max(1, size // 5):   # compact: keep the alive rows, in order
            keep = torch.nonzero(alive).flatten()
            gi, p, ids = gi[keep][:, keep], p[keep][:, keep], ids[keep]
            alive = torch.ones(keep.numel(), dtype=torch.bool)
            b1, b2, b3 = (torch.empty_like(gi) for _ in range(3))
        val = p.diagonal() / gi.diagonal().clamp_min(1e-300)
        val = torch.where(alive, val, torch.full_like(val, float("inf")))
        j = int(torch.argmin(val))
        order[step], cost[step] = ids[j], val[j]
        alive[j] = False
        col = gi[:, j].clone()
        gj, pj, pjj = col[j], p[:, j].clone(), p[j, j].clone()
        # B' = B - col B_j / gj  =>  P' = P - (col pj^T + pj col^T) / gj + col col^T pjj / gj^2
        torch.outer(col, col, out=b1).mul_(pjj / (gj * gj))
        torch.outer(col, pj, out=b2).add_(torch.outer(pj, col, out=b3)).div_(gj)
        p += b1.sub_(b2)
        gi -= torch.outer(col, col, out=b1).div_(gj)
        gi[j, :] = 0.0
        gi[:, j] = 0.0
        gi[j, j] = 1.0  # keeps the removed row inert (its P row is 0 after the downdate)
        p[j, :] = 0.0
        p[:, j] = 0.0
    return order, cost


@torch.no_grad()
def elimination_order(gram: Tensor, active: Tensor, ridge: float = 1e-3, second: Optional[Tensor] = None) -> Tensor:
    """Backward elimination of active sensors for the ridge regression of every sensor.

    With ``G = gram[a, a] + lam I`` over the remaining active set ``a`` (``lam = ridge *
    mean(diag(gram[a, a]))``, fixed) and ``B = G^{-1} A_a^T Y`` the ridge coefficients of all
    targets on ``a``, removing sensor ``j`` raises the summed squared error by
    ``sum_t B[j, t]^2 / (G^{-1})[j, j] = P[j, j] / (G^{-1})[j, j]`` with ``P = B B^T =
    G^{-1} second[a, a] G^{-1}``. The sensor with the smallest increase leaves, ``G^{-1}``
    and ``P`` are downdated in ``O(K^2)``, and so on until one is left: ``O(K^3)`` in all.

    Args:
        gram (Tensor): ``[N, N]`` from :func:`training_moments`.
        active (Tensor): Bool ``[N]`` sensors taking part.
        ridge (float, optional): Relative ridge strength (default: ``1e-3``).
        second (Tensor, optional): ``[N, N]`` from :func:`training_moments`; :obj:`None` means
            same-step reconstruction of all sensors (``gram @ gram``) (default: :obj:`None`).

    Returns:
        Tensor: ``[N]`` float scores: ``0`` for inactive sensors, and for active ones their
        position in the elimination rescaled to ``(0, 1]`` (the last survivor gets 1), so
        keeping the ``K`` highest is the elimination's choice of ``K``.
    """
    n = gram.size(0)
    if gram.shape != (n, n) or active.shape != (n,) or active.dtype != torch.bool:
        raise ValueError(f"`gram` must be [N, N] and `active` a bool [N], got {tuple(gram.shape)}, "
                         f"{active.dtype} {tuple(active.shape)}")
    if second is not None and second.shape != (n, n):
        raise ValueError(f"`second` must be [{n}, {n}], got {tuple(second.shape)}")
    a = torch.nonzero(active.cpu()).flatten()
    k = a.numel()
    out = torch.zeros(n, dtype=torch.float64)
    if k == 0:
        return out.float()
    c = gram.to(torch.float64).cpu()
    g = c[a][:, a]
    m = (c @ c)[a][:, a] if second is None else second.to(torch.float64).cpu()[a][:, a]
    lam = float(ridge) * float(g.diagonal().mean().clamp_min(1e-12))
    order, _ = _eliminate(g, m, lam)
    out[a[order]] = torch.arange(1, k + 1, dtype=torch.float64) / k
    return out.float()


# ------------------------------------------------------------------------------ clusters
def _adjacency(edge_index: Tensor, num_nodes: int) -> sp.csr_matrix:
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
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise ValueError(f"`num_nodes` must be a positive int, got {num_nodes!r}")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"`max_size` must be a positive int, got {max_size!r}")
    check_graph(edge_index, None, num_nodes)
    adj = _adjacency(edge_index, num_nodes)
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


def _halo(adj: sp.csr_matrix, nodes: np.ndarray, hops: int) -> np.ndarray:
    """Sorted union of ``nodes`` and every node within ``hops`` edges of them."""
    region = np.unique(nodes)
    for _ in range(hops):
        grown = np.union1d(region, adj[region].indices)
        if grown.size == region.size:
            break
        region = grown
    return region


# ------------------------------------------------------------------------------ the value
class ReconstructionValue:
    r"""Reconstruction value of the active sensors of a network, cached on the active set.

    The value of active sensor ``i`` is its position in a backward elimination that drops, one
    at a time, the active sensor whose removal least raises the ridge reconstruction error of
    every sensor's readings from the remaining active sensors' current readings. With ``A``
    ``[T', N]`` the centred training series at steps ``t`` and ``Y_h`` every sensor at ``t + h``
    (``h`` in ``horizons``; features are summed), the moments are ``G = A^T A`` and
    ``M = sum_h (A^T Y_h)(A^T Y_h)^T``. On the remaining active set ``a``, the ridge
    coefficients of all targets are ``B = (G_aa + lam I)^{-1} A_a^T Y`` and removing sensor
    ``j`` raises the summed squared error by

    .. math::
        \Delta_j = \frac{P_{jj}}{(G_{aa} + \lambda I)^{-1}_{jj}},
        \qquad P = (G_{aa} + \lambda I)^{-1} M_{aa} (G_{aa} + \lambda I)^{-1} = B B^\top,

    with ``lam = ridge * mean(diag(G_aa))`` over the active set passed to :meth:`scores`. The
    sensor of smallest ``Delta`` leaves and both inverses are downdated in ``O(K^2)``
    (see :func:`elimination_order`).

    ``method="exact"`` runs this over all ``N`` sensors: ``O(T F N^2 H)`` once for the moments
    and ``O(K^3)`` per active set, with dense ``N x N`` float64 moments (two kept, four more
    transient while eliminating: about ``6 * 8 N^2`` bytes, 3.6 GB at ``N = 8,600``).

    ``method="local"`` runs the same elimination on graph clusters. The sensors are split by
    :func:`graph_clusters` into clusters ``C`` of at most ``cluster_size = m`` sensors; each
    cluster's region ``U = C + halo`` adds the nodes within ``halo`` graph hops. The moments of
    a region are those of the series restricted to ``U`` (predictors *and* targets in ``U``:
    a sensor mostly predicts its neighbourhood), and the elimination runs over the active
    sensors of ``U``, so a near-duplicate pair across a cluster border is decided with both
    members present in both regions. Each sensor of ``C`` gets the key
    ``max(Delta_1, ..., Delta_s)``, the largest increase up to its own removal at step ``s`` of
    its region's elimination. Sorting all active sensors by key (ties by step) merges the
    regions' sequences exactly as one global greedy elimination would if the regions did not
    interact (it always removes the region whose next increase is smallest), and the global
    position rescaled to ``(0, 1]`` is the score. With one cluster covering the graph the
    result equals ``"exact"``. With ``u = |U| <= m + halo border``: time ``O(N / m * (T F u^2 H
    + u^3))`` and memory ``O(T N F + N / m * u^2)`` (the region moments are kept), both linear in
    ``N`` for fixed ``m``; the partition costs ``O((N + E) log(N / m))``.

    ``method="auto"`` is ``"exact"`` when ``N <= exact_max_nodes`` *and* ``N <= T' / 4``, and
    ``"local"`` otherwise (which needs ``edge_index``: without a graph it raises instead of
    skipping the value, and below ``exact_max_nodes`` it falls back to ``"exact"`` with a
    warning). The second condition is statistical, not about cost: with ``K`` predictors and
    only ``T'`` regression rows (training steps minus the largest horizon), the in-sample
    reconstruction is nearly perfect for *any* large enough set once ``K`` approaches ``T'``,
    so the early eliminations of the exact method become noise, while regions of a few hundred
    sensors stay well posed. For the same reason the default cluster size is
    ``min(256, T' / 6)``, which keeps regions near ``T' / 4`` sensors.

    Args:
        series (Tensor): Normalised training series ``[T, N, F]`` (or ``[T, N]``); training
            steps only.
        valid (Tensor, optional): Bool ``[T, N, F]`` validity of ``series``; invalid or
            non-finite readings are replaced by their sensor's mean (default: :obj:`None`, all valid).
        horizons (sequence of int, optional): Steps ahead to reconstruct; ``0`` is the same
            step (default: ``(0,)``).
        ridge (float, optional): Relative ridge strength ``>= 0`` (default: ``1e-3``).
        edge_index (Tensor, optional): ``[2, E]`` sensor graph, needed by ``"local"``
            (default: :obj:`None`).
        method (str, optional): ``"auto"``, ``"exact"`` or ``"local"`` (default: ``"auto"``).
        cluster_size (int, optional): Largest cluster ``m`` for ``"local"`` (default:
            :obj:`None`, ``max(8, min(256, T' // 6))``).
        halo (int, optional): Graph hops added around each cluster for ``"local"``
            (default: ``2``).
        exact_max_nodes (int, optional): Largest ``N`` for which ``"auto"`` picks ``"exact"``
            (default: ``1000``).

    Example:
        >>> value = ReconstructionValue(series, valid, horizons=(1, 3), edge_index=ei)
        >>> scores = value.scores(active)   # [N]: 0 inactive, (0, 1] elimination position
    """

    METHODS = ("auto", "exact", "local")
    #: regression rows per sensor below which the exact elimination over all sensors overfits
    ROWS_PER_SENSOR = 4

    def __init__(self, series: Tensor, valid: Optional[Tensor] = None, horizons: Sequence[int] = (0,),
                 ridge: float = 1e-3, edge_index: Optional[Tensor] = None, *, method: str = "auto",
                 cluster_size: Optional[int] = None, halo: int = 2, exact_max_nodes: int = 1000) -> None:
        if method not in self.METHODS:
            raise ValueError(f"`method` must be one of {self.METHODS}, got {method!r}")
        if not isinstance(ridge, (int, float)) or isinstance(ridge, bool) or not ridge >= 0:
            raise ValueError(f"`ridge` must be a number >= 0, got {ridge!r}")
        for name, val, lo in (("cluster_size", 1 if cluster_size is None else cluster_size, 1), ("halo", halo, 0),
                              ("exact_max_nodes", exact_max_nodes, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < lo:
                raise ValueError(f"`{name}` must be an int >= {lo}, got {val!r}")
        with torch.no_grad():
            xc, hs = _centred(series, valid, horizons)
        n = xc.size(1)
        rows = xc.size(0) - hs[-1]
        if edge_index is not None:
            check_graph(edge_index, None, n)
        if cluster_size is None:
            cluster_size = max(8, min(256, rows // 6))
        well_posed = n * self.ROWS_PER_SENSOR <= rows
        if method == "auto":
            if n <= exact_max_nodes and (well_posed or edge_index is None):
                method = "exact"
            elif edge_index is None:
                raise ValueError(f"the series has {n} sensors, more than `exact_max_nodes`={exact_max_nodes}: pass "
                                 f"`edge_index` for the local (linear-cost) method, or method='exact' to accept "
                                 f"O(N^3) time and ~{6 * 8 * n * n / 1e9:.1f} GB")
            else:
                method = "local"
        if method == "local" and edge_index is None:
            raise ValueError("method='local' needs the sensor graph: pass `edge_index` [2, E]")
        if method == "exact" and (n > exact_max_nodes or not well_posed):
            cost = (f"O(N^3) time per active set and ~{6 * 8 * n * n / 1e9:.1f} GB of dense moments"
                    if n > exact_max_nodes else "")
            fit = (f"{n} sensors for {rows} regression rows (fewer than {self.ROWS_PER_SENSOR} per sensor) overfit "
                   f"the exact elimination" if not well_posed else "")
            warnings.warn(f"exact reconstruction value on {n} sensors: " + "; ".join(x for x in (cost, fit) if x)
                          + "; method='local' with `edge_index` avoids this", stacklevel=2)
        self.num_nodes = n
        #: regression rows ``T'`` (training steps minus the largest horizon)
        self.num_rows = rows
        self.horizons = tuple(hs)
        self.ridge = float(ridge)
        self.method = method
        self.cluster_size = cluster_size
        self.halo = halo
        #: clusters ``C`` (sorted long tensors partitioning the sensors); one cluster for ``"exact"``
        self.clusters: List[Tensor] = []
        self._regions: List[tuple[Tensor, Tensor, Tensor, Tensor]] = []  # (U, C-in-U bool, gram_U, second_U)
        self._diag = torch.zeros(n, dtype=torch.float64)
        with torch.no_grad():
            if method == "exact":
                self.clusters = [torch.arange(n)]
                gram, second = _moments_of(xc, hs)
                self._regions.append((torch.arange(n), torch.ones(n, dtype=torch.bool), gram, second))
                self._diag = gram.diagonal().clone()
            else:
                adj = _adjacency(edge_index, n)
                self.clusters = graph_clusters(edge_index, n, cluster_size)
                for c in self.clusters:
                    u = torch.from_numpy(_halo(adj, c.numpy(), halo).astype(np.int64))
                    gram, second = _moments_of(xc.index_select(1, u), hs)
                    in_c = torch.isin(u, c)
                    self._diag[u[in_c]] = gram.diagonal()[in_c]
                    self._regions.append((u, in_c, gram, second))
        self._last_active: Optional[Tensor] = None
        self._last_scores: Optional[Tensor] = None

    @property
    def region_sizes(self) -> List[int]:
        """Sensors ``|U|`` in each cluster's region (cluster plus halo)."""
        return [int(r[0].numel()) for r in self._regions]

    @torch.no_grad()
    def scores(self, active: Tensor) -> Tensor:
        """Reconstruction value of the active sensors.

        Recomputed only when ``active`` differs from the previous call's.

        Args:
            active (Tensor): Bool ``[N]`` current active set.

        Returns:
            Tensor: ``[N]`` float32 on the CPU: ``0`` for inactive sensors and the elimination
            position rescaled to ``(0, 1]`` for active ones (the last survivor gets ``1``), so
            keeping the ``K`` highest is the elimination's choice of ``K``.
        """
        if not isinstance(active, Tensor) or active.dtype != torch.bool or active.shape != (self.num_nodes,):
            got = f"{active.dtype} {tuple(active.shape)}" if isinstance(active, Tensor) else type(active).__name__
            raise ValueError(f"`active` must be a bool tensor of shape [{self.num_nodes}], got {got}")
        key = active.detach().cpu()
        if self._last_active is not None and torch.equal(key, self._last_active):
            return self._last_scores.clone()
        out = self._compute(key)
        self._last_active, self._last_scores = key.clone(), out
        return out.clone()

    def _compute(self, active: Tensor) -> Tensor:
        n = self.num_nodes
        out = torch.zeros(n, dtype=torch.float64)
        k = int(active.sum())
        if k == 0:
            return out.float()
        if self.method == "exact":
            _, _, gram, second = self._regions[0]
            return elimination_order(gram, active, self.ridge, second)
        lam = self.ridge * float(self._diag[active].mean().clamp_min(1e-12))
        nodes, keys, steps = [], [], []
        for u, in_c, gram, second in self._regions:
            act = active[u]
            if not bool((act & in_c).any()):
                continue
            a = torch.nonzero(act).flatten()
            order, cost = _eliminate(gram[a][:, a], second[a][:, a], lam)
            seq = a[order]                               # region-local ids in removal order
            mine = in_c[seq]
            nodes.append(u[seq[mine]])
            keys.append(torch.cummax(cost, 0).values[mine])
            steps.append(torch.nonzero(mine).flatten())
        node, key, step = torch.cat(nodes), torch.cat(keys), torch.cat(steps)
        # global order: by key, then by step within the region, then by sensor id (stable sorts)
        perm = torch.argsort(node, stable=True)
        perm = perm[torch.argsort(step[perm], stable=True)]
        perm = perm[torch.argsort(key[perm], stable=True)]
        out[node[perm]] = torch.arange(1, k + 1, dtype=torch.float64) / k
        return out.float()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_nodes={self.num_nodes}, method={self.method!r}, "
                f"clusters={len(self.clusters)}, horizons={self.horizons})")
