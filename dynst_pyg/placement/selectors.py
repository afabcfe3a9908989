"""Baseline sensor selectors, each returning a :class:`~dynst_pyg.selection.SensorMask`.

Every selector follows the estimator contract of PySensors: ``fit(splits)`` returns
``self`` and sets the fitted attributes ``scores_`` (importance per sensor, higher =
keep) and ``mask_``; reading them before ``fit`` raises :class:`NotFittedError`. Only the
graph and the **training** steps of the series are ever read (``splits.train_steps``), so
no selector can see validation or test data. Every selector takes ``constraints``
(:class:`~dynst_pyg.selection.SelectionConstraints`) and returns a mask that satisfies them.

* :class:`RandomSelector`: uniform random scores (seeded).
* :class:`DegreeSelector`: weighted in + out degree.
* :class:`PageRankSelector`: PageRank on the weighted directed graph (networkx).
* :class:`BetweennessSelector`: betweenness centrality, edge length ``1 / weight`` (networkx).
* :class:`QRSelector`: pivoted QR on the leading POD modes of the training series, the
  sensor-placement method of Manohar et al. (2018) that PySensors implements; cost-aware
  (CCQR) and region-aware under constraints.
* :class:`BackwardEliminationSelector`: classical sequential backward selection with a ridge
  multi-horizon reconstruction criterion (see :mod:`dynst_pyg.placement.elimination`).

All of them then go through the same sparse fine-tune as DynST (see
:mod:`dynst_pyg.training`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..data.dataset import SpatioTemporalDataset
from ..data.windows import ForecastSplits
from .._checks import check_positive_int
from ..selection.constraints import SelectionConstraints
from ..selection.rules import GreedySelection, constrained_top_k, merge_protected, num_to_keep
from ..selection.mask import SensorMask
from .elimination import elimination_order, training_moments

__all__ = ["Selector", "NotFittedError", "RandomSelector", "DegreeSelector", "PageRankSelector",
           "BetweennessSelector", "QRSelector", "BackwardEliminationSelector", "SELECTORS", "make_selector", "select_sensors", "training_snapshots"]


def _graph_and_train(data: ForecastSplits | SpatioTemporalDataset, train_steps: Optional[int]):
    if isinstance(data, ForecastSplits):
        return data.dataset, data.train_steps
    if isinstance(data, SpatioTemporalDataset):
        if train_steps is None:
            raise ValueError("`train_steps` is required when fitting on a dataset rather than on ForecastSplits")
        if not 1 <= train_steps <= data.num_steps:
            raise ValueError(f"`train_steps` must lie in [1, {data.num_steps}], got {train_steps}")
        return data, int(train_steps)
    raise TypeError(f"`data` must be ForecastSplits or SpatioTemporalDataset, got {type(data).__name__}")


class NotFittedError(AttributeError):
    """Raised when a fitted attribute (``scores_``, ``mask_``) is read before :meth:`Selector.fit`."""


class Selector:
    """Base selector.

    Every selector obeys :obj:`constraints`: the kept set is
    :func:`~dynst_pyg.selection.constrained_top_k` of the selector's scores (QR builds its
    pivots under the constraints instead). Both the count (:obj:`sparsity` / :obj:`budget`)
    and the cost budget apply; with a cost budget the count may be left out, and then as
    many sensors are kept as the budget allows.

    Args:
        sparsity (float, optional): Fraction of sensors removed, in ``[0, 1)``.
        budget (int, optional): Number of sensors kept (instead of ``sparsity``).
        protected (sequence of int, optional): Sensors that are always kept; a shortcut merged
            into :obj:`constraints` (default: none).
        constraints (SelectionConstraints, optional): Costs with a budget, region minima,
            protected sensors (default: :obj:`None`).
    """

    name = "selector"
    #: ranking walk of :func:`~dynst_pyg.selection.constrained_top_k` under a cost budget
    rule = "auto"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None,
                 constraints: Optional[SelectionConstraints] = None) -> None:
        constraints = merge_protected(constraints, protected)
        cost_only = constraints is not None and constraints.cost_budget is not None
        if (sparsity is None) == (budget is None) and not (cost_only and sparsity is None):
            raise ValueError("give exactly one of `sparsity` and `budget` (or neither, with a `cost_budget` "
                             "in `constraints`)")
        self.sparsity = sparsity
        self.budget = budget
        self.constraints = constraints

    def __getattr__(self, name: str):
        # only called when normal lookup fails: fitted attributes before fit()
        if name.endswith("_") and not name.startswith("__"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(data) before reading "
                                 f"{name!r}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def num_kept_for(self, num_nodes: int) -> Optional[int]:
        """The count target for ``N`` sensors, or :obj:`None` (cost budget only)."""
        if self.sparsity is None and self.budget is None:
            return None
        return num_to_keep(num_nodes, self.sparsity, self.budget)

    def _scores(self, dataset: SpatioTemporalDataset, train_steps: int) -> Tensor:
        raise NotImplementedError

    def _select(self, dataset: SpatioTemporalDataset, train_steps: int, k: Optional[int]) -> tuple[Tensor, Tensor]:
        """Scores ``[N]`` and the kept bool mask ``[N]``."""
        scores = self._scores(dataset, train_steps).to(torch.float32)
        return scores, constrained_top_k(scores, k, self.constraints, rule=self.rule)

    def fit(self, data: ForecastSplits | SpatioTemporalDataset, train_steps: Optional[int] = None) -> "Selector":
        """Scores the sensors of ``data`` (graph + training steps only) and builds ``mask_``.

        Returns:
            :obj:`self`, with the fitted attributes ``scores_`` (``[N]``, higher = keep) and
            ``mask_`` (a :class:`~dynst_pyg.selection.SensorMask` that satisfies the constraints).
        """
        dataset, n_train = _graph_and_train(data, train_steps)
        if self.constraints is not None:
            self.constraints.check(dataset.num_nodes)
        k = self.num_kept_for(dataset.num_nodes)
        scores, keep = self._select(dataset, n_train, k)
        meta: dict = {"train_steps": n_train}
        if self.constraints is not None:
            meta["constraints"] = self.constraints.to_dict()
        self.scores_ = scores.to(torch.float32)
        self.mask_ = SensorMask.from_bool(keep, scores=self.scores_, sensor_ids=dataset.sensor_id,
                                          method=self.name, meta=meta)
        return self

    def __repr__(self) -> str:
        parts = []
        if self.sparsity is not None:
            parts.append(f"sparsity={self.sparsity}")
        if self.budget is not None:
            parts.append(f"budget={self.budget}")
        if self.constraints is not None:
            parts.append(f"constraints={self.constraints!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class RandomSelector(Selector):
    """Uniformly random selection (``seed`` fixes it).

    Under constraints the sensors are visited in a random order and each is kept when it
    still fits (never ranked by cost): the choice of an operator who ignores the costs.
    """

    name = "random"
    rule = "score"

    def __init__(self, sparsity=None, budget=None, protected=None, seed: int = 0,
                 constraints: Optional[SelectionConstraints] = None) -> None:
        super().__init__(sparsity, budget, protected, constraints)
        self.seed = seed

    def _scores(self, dataset, train_steps):
        g = torch.Generator().manual_seed(int(self.seed))
        return torch.rand(dataset.num_nodes, generator=g)


class DegreeSelector(Selector):
    """Keeps the sensors with the largest weighted degree (in + out, self-loops excluded)."""

    name = "degree"

    def _scores(self, dataset, train_steps):
        ei, w = dataset.edge_index, dataset.edge_weight
        off = ei[0] != ei[1]
        deg = torch.zeros(dataset.num_nodes)
        deg.index_add_(0, ei[0, off], w[off].float())
        deg.index_add_(0, ei[1, off], w[off].float())
        return deg


def _nx_graph(dataset: SpatioTemporalDataset, length: bool = False):
    import networkx as nx

    G = nx.DiGraph()
    G.add_nodes_from(range(dataset.num_nodes))
    for (u, v), w in zip(dataset.edge_index.t().tolist(), dataset.edge_weight.tolist()):
        if u != v and w > 0:
            G.add_edge(u, v, weight=w, length=1.0 / w)
    return G


class PageRankSelector(Selector):
    """Keeps the sensors with the highest weighted PageRank (damping ``alpha``)."""

    name = "pagerank"

    def __init__(self, sparsity=None, budget=None, protected=None, alpha: float = 0.85,
                 constraints: Optional[SelectionConstraints] = None) -> None:
        super().__init__(sparsity, budget, protected, constraints)
        self.alpha = alpha

    def _scores(self, dataset, train_steps):
        import networkx as nx

        pr = nx.pagerank(_nx_graph(dataset), alpha=self.alpha, weight="weight")
        return torch.tensor([pr[i] for i in range(dataset.num_nodes)])


class BetweennessSelector(Selector):
    """Keeps the sensors with the highest betweenness centrality (edge length ``1 / weight``)."""

    name = "betweenness"

    def _scores(self, dataset, train_steps):
        import networkx as nx

        bc = nx.betweenness_centrality(_nx_graph(dataset), weight="length", normalized=True)
        return torch.tensor([bc[i] for i in range(dataset.num_nodes)])


def training_snapshots(dataset: SpatioTemporalDataset, train_steps: int, feature: int = 0) -> np.ndarray:
    """The centred snapshot matrix ``X [T_train, N]`` of one feature, missing readings filled.

    A reading counts as observed where :meth:`~dynst_pyg.data.SpatioTemporalDataset.null_mask`
    is :obj:`True` and the value is finite. Unobserved cells get the sensor's mean over its
    observed training readings (``0`` for a sensor never observed), so they add nothing to the
    sensor's variance; then every column is centred.
    """
    X = dataset.series[:train_steps, :, feature].double().numpy()
    obs = dataset.null_mask()[:train_steps, :, feature].numpy() & np.isfinite(X)
    count = obs.sum(axis=0)
    mean = np.where(obs, X, 0.0).sum(axis=0) / np.maximum(count, 1)
    X = np.where(obs, X, mean[None, :])
    return X - X.mean(axis=0, keepdims=True)


class QRSelector(Selector):
    r"""Pivoted QR on POD modes of the training series (Manohar et al. 2018; PySensors' ``QR``).

    The training series ``X [T_train, N]`` (feature 0, missing readings filled with the
    sensor's observed mean, centred per sensor, see :func:`training_snapshots`) is reduced to
    its ``r`` leading right singular vectors ``Psi [N, r]`` (``r`` = number of kept sensors,
    capped by the rank; with a cost budget only, ``min(T_train, N)``). A column-pivoted
    Householder QR of ``Psi^T`` picks the sensors one by one: step ``j`` takes the sensor whose
    residual column has the largest norm ``||r_i||``. Sensor ``i``'s score is
    ``1 - position_i / N`` (the kept sensors first, in pivot order).

    Constraints act on every pivot, as in PySensors' cost-constrained QR (CCQR, Clark et al.
    2019) and its general region-constrained QR:

    * protected sensors are pivoted first;
    * only admissible sensors (see :class:`~dynst_pyg.selection.GreedySelection`) may be the
      next pivot, so region minima are met and the cost budget is never exceeded;
    * under a cost budget the pivot maximises ``||r_i|| - lambda * c_i`` with
      ``lambda = cost_penalty * sqrt(r / N) / mean(c)``: a sensor of average cost is charged
      the root-mean-square initial column norm times :obj:`cost_penalty`.

    Args:
        n_modes (int, optional): Number of POD modes ``r`` (default: the number kept).
        cost_penalty (float, optional): Weight of the cost in the pivot rule under a cost
            budget; ``0`` = plain QR that only skips sensors which no longer fit (default: ``1.0``).
    """

    name = "qr"

    def __init__(self, sparsity=None, budget=None, protected=None, n_modes: Optional[int] = None,
                 cost_penalty: float = 1.0, constraints: Optional[SelectionConstraints] = None) -> None:
        super().__init__(sparsity, budget, protected, constraints)
        check_positive_int(n_modes, "n_modes", allow_none=True)
        if not math.isfinite(float(cost_penalty)) or cost_penalty < 0:
            raise ValueError(f"`cost_penalty` must be a finite number >= 0, got {cost_penalty!r}")
        self.n_modes = n_modes
        self.cost_penalty = float(cost_penalty)

    def _select(self, dataset, train_steps, k):
        X = training_snapshots(dataset, train_steps)
        T, N = X.shape
        r = int(self.n_modes or k or min(T, N))
        _, _, vt = np.linalg.svd(X, full_matrices=False)
        r = max(1, min(r, vt.shape[0]))
        psi_t = vt[:r].copy()  # [r, N], orthonormal rows

        c = self.constraints
        penalty = np.zeros(N)
        if c is not None and c.cost_budget is not None and self.cost_penalty > 0:
            costs = c.costs.numpy()
            if costs.mean() > 0:
                penalty = self.cost_penalty * math.sqrt(r / N) * costs / costs.mean()
        greedy = GreedySelection(c, N, k)
        order = _constrained_pivots(psi_t, greedy, penalty, c.protected if c is not None else [])
        pos = np.empty(N, dtype=np.int64)
        pos[order] = np.arange(N)
        return torch.from_numpy(1.0 - pos / N), greedy.kept


def _constrained_pivots(psi_t: np.ndarray, greedy: GreedySelection, penalty: np.ndarray,
                        protected: Sequence[int]) -> np.ndarray:
    """Householder QR with column pivoting; the pivots are chosen under ``greedy``'s rules.

    Returns every sensor in order: the pivots (protected first), then the rest by their final
    pivot key (ties: lower index).
    """
    A = psi_t.copy()
    r, N = A.shape
    row = 0
    order: list[int] = []

    def residual_norms() -> np.ndarray:
        return np.sqrt((A[row:] ** 2).sum(axis=0)) if row < r else np.zeros(N)

    def pivot(p: int) -> None:
        nonlocal row
        order.append(p)
        if row >= r:
            return
        x = A[row:, p]
        alpha = float(np.linalg.norm(x))
        if alpha > 1e-300:
            v = x.copy()
            v[0] += alpha if v[0] >= 0 else -alpha
            v /= np.linalg.norm(v)
            A[row:] -= 2.0 * np.outer(v, v @ A[row:])
        row += 1

    remaining = list(protected)
    while remaining:  # protected sensors first, best first
        key = residual_norms() - penalty
        p = max(remaining, key=lambda i: (key[i], -i))
        remaining.remove(p)
        pivot(p)
    while True:
        adm = greedy.admissible().numpy()
        if not adm.any():
            break
        key = np.where(adm, residual_norms() - penalty, -np.inf)
        p = int(np.argmax(key))  # first maximum: lower index wins ties
        greedy.add(p)
        pivot(p)
    rest = np.setdiff1d(np.arange(N), np.asarray(order, dtype=np.int64))
    key = (residual_norms() - penalty)[rest]
    rest = rest[np.lexsort((rest, -key))]
    return np.concatenate([np.asarray(order, dtype=np.int64), rest])


class BackwardEliminationSelector(Selector):
    r"""Classical sequential backward selection with a ridge multi-horizon reconstruction criterion.

    Starting from all sensors, the sensor whose removal least raises the ridge-regression
    error of reconstructing every sensor's readings ``h`` steps ahead (``h`` in
    :obj:`horizons`) from the remaining sensors' current readings is dropped, again and again
    until one is left (:func:`~dynst_pyg.placement.elimination_order` on the
    :func:`~dynst_pyg.placement.training_moments` of the normalised training series
    ``splits.train_series()``, see :meth:`fit`; missing readings count as the sensor's mean). Sensor ``i``'s
    score is its elimination position rescaled to ``(0, 1]`` (the last survivor gets ``1``),
    and the kept set is :func:`~dynst_pyg.selection.constrained_top_k` of these scores, so
    protected sensors, region minima and a cost budget are obeyed; without constraints it is
    the elimination's own choice of ``K``.

    This is the importance DynST's mask search uses with its default weights
    (``target="all"``, ``recon_weight=1.0``), which gives the reconstruction value all the
    weight; on networks where that value is computed exactly (``recon_method="exact"``, or
    ``"auto"`` on a small, well-posed network) both select the same sensors. The selector
    always runs the exact elimination: ``O(T F N^2 H)`` time for the moments, ``O(N^3)`` for
    the elimination and a few dense ``N x N`` float64 matrices.

    Args:
        sparsity, budget, protected, constraints: As in :class:`Selector`.
        horizons (sequence of int, optional): Steps ahead to reconstruct; those beyond the
            splits' ``t_out`` are left out, and ``(0,)`` (same-step reconstruction) is used
            when none remains (default: ``(1, 3, 6, 12)``).
        ridge (float, optional): Relative ridge strength ``lam = ridge * mean(diag(A^T A))``
            (default: ``1e-3``).
    """

    name = "backward-elimination"

    def __init__(self, sparsity=None, budget=None, protected=None, horizons: Sequence[int] = (1, 3, 6, 12),
                 ridge: float = 1e-3, constraints: Optional[SelectionConstraints] = None) -> None:
        super().__init__(sparsity, budget, protected, constraints)
        hs = tuple(horizons)
        if not hs or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 0 for h in hs):
            raise ValueError(f"`horizons` must be a non-empty sequence of ints >= 0, got {horizons!r}")
        if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not math.isfinite(ridge) or ridge < 0:
            raise ValueError(f"`ridge` must be a finite number >= 0, got {ridge!r}")
        self.horizons = tuple(int(h) for h in hs)
        self.ridge = float(ridge)

    def fit(self, data: ForecastSplits | SpatioTemporalDataset,
            train_steps: Optional[int] = None) -> "BackwardEliminationSelector":
        """Scores the sensors by the elimination on ``data``'s training series and builds ``mask_``.

        On :class:`~dynst_pyg.data.ForecastSplits` the series is ``splits.train_series()``
        (normalised target features) and the horizons beyond ``t_out`` are left out; on a bare
        dataset it is the first ``train_steps`` steps of every feature, unscaled, with every
        horizon. Besides ``scores_`` and ``mask_`` it sets ``horizons_`` (the horizons used) and
        ``moments_`` (``(gram, second)`` of :func:`~dynst_pyg.placement.training_moments`).
        """
        dataset, n_train = _graph_and_train(data, train_steps)
        if isinstance(data, ForecastSplits):
            series, valid = data.train_series()
            self.horizons_ = tuple(h for h in self.horizons if h <= data.t_out) or (0,)
        else:
            series, valid = dataset.series[:n_train], dataset.observed[:n_train]
            self.horizons_ = self.horizons
        self.moments_ = training_moments(series, valid, self.horizons_)
        return super().fit(data, train_steps)

    def _scores(self, dataset, train_steps):
        gram, second = self.moments_
        return elimination_order(gram, torch.ones(dataset.num_nodes, dtype=torch.bool), self.ridge, second)


SELECTORS = {"random": RandomSelector, "degree": DegreeSelector, "pagerank": PageRankSelector,
             "betweenness": BetweennessSelector, "qr": QRSelector,
             "backward-elimination": BackwardEliminationSelector}


def make_selector(name: str, sparsity: Optional[float] = None, budget: Optional[int] = None,
                  protected: Optional[Sequence[int]] = None, seed: int = 0,
                  constraints: Optional[SelectionConstraints] = None, **kwargs) -> Selector:
    """A baseline selector by name (``random``, ``degree``, ``pagerank``, ``betweenness``, ``qr``,
    ``backward-elimination``).

    Args:
        name (str): The selector.
        sparsity, budget, protected, constraints: As in :class:`Selector`.
        seed (int, optional): Seed of the random selector (default: ``0``).
        **kwargs: The selector's own options (``alpha``, ``n_modes``, ``cost_penalty``, ``horizons``,
            ``ridge``).
    """
    if name not in SELECTORS:
        raise ValueError(f"`name` must be one of {sorted(SELECTORS)}, got {name!r}")
    cls = SELECTORS[name]
    if cls is RandomSelector:
        kwargs["seed"] = seed
    return cls(sparsity=sparsity, budget=budget, protected=protected, constraints=constraints, **kwargs)


def select_sensors(name: str, splits: ForecastSplits, sparsity: Optional[float] = None,
                   budget: Optional[int] = None, protected: Optional[Sequence[int]] = None,
                   seed: int = 0, constraints: Optional[SelectionConstraints] = None) -> SensorMask:
    """Shortcut: ``make_selector(...).fit(splits).mask_``."""
    return make_selector(name, sparsity, budget, protected, seed, constraints=constraints).fit(splits).mask_
