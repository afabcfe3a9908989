"""Reconstruction value of sensors: which active sensors best predict every sensor's readings.

The value of a sensor for ``target="all"`` is how late it leaves a *backward elimination*
that repeatedly drops the active sensor whose removal least increases the ridge
reconstruction error of all sensors' (normalised, training) series from the active ones.
The ridge lift head of the served model reconstructs pruned sensors with exactly that
regression, so the elimination scores a sensor by what the served model loses without it,
and, being sequential, it keeps one of two near-duplicates.

Two ways to compute it, with the same maths:

* :func:`~dynst_pyg.placement.training_moments` + :func:`~dynst_pyg.placement.elimination_order`
  ("exact"): the elimination over all ``N`` sensors, ``O(T F N^2 H)`` once for the moments and
  ``O(K^3)`` per active set of ``K`` sensors, with several dense ``N x N`` float64 matrices in memory.
* :class:`ReconstructionValue` with ``method="local"``: the same elimination run on graph
  clusters of at most ``m`` sensors (each with a halo of neighbours), merged into one global
  order; ``O(N)`` for a fixed cluster size.

:class:`ReconstructionValue` holds the moments and caches the scores of the last active set.
"""

from __future__ import annotations

import warnings
from typing import List, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .._checks import check_graph
from ..graph.clusters import adjacency, graph_clusters
from ..placement.elimination import centred_series, eliminate, elimination_order, moments_of

__all__ = ["ReconstructionValue"]


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
    (see :func:`~dynst_pyg.placement.elimination_order`).

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
            xc, hs = centred_series(series, valid, horizons)
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
                gram, second = moments_of(xc, hs)
                self._regions.append((torch.arange(n), torch.ones(n, dtype=torch.bool), gram, second))
                self._diag = gram.diagonal().clone()
            else:
                adj = adjacency(edge_index, n)
                self.clusters = graph_clusters(edge_index, n, cluster_size)
                for c in self.clusters:
                    u = torch.from_numpy(_halo(adj, c.numpy(), halo).astype(np.int64))
                    gram, second = moments_of(xc.index_select(1, u), hs)
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
            order, cost = eliminate(gram[a][:, a], second[a][:, a], lam)
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
