"""Baseline sensor selectors, each returning a :class:`~dynst_pyg.mask.SensorMask`.

Every selector follows the estimator contract of PySensors: ``fit(splits)`` returns
``self`` and sets the fitted attributes ``scores_`` (importance per sensor, higher =
keep) and ``mask_``. Only the graph and the **training** steps of the series are ever
read (``splits.train_steps``), so no selector can see validation or test data.

* :class:`RandomSelector`: uniform random scores (seeded).
* :class:`DegreeSelector`: weighted in + out degree.
* :class:`PageRankSelector`: PageRank on the weighted directed graph (networkx).
* :class:`BetweennessSelector`: betweenness centrality, edge length ``1 / weight`` (networkx).
* :class:`QRSelector`: pivoted QR on the leading POD modes of the training series, the
  sensor-placement method of Manohar et al. (2018) that PySensors implements, via
  :func:`scipy.linalg.qr` with column pivoting.

All of them then go through the same sparse fine-tune as DynST (see
:mod:`dynst_pyg.trainer`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .datasets.core import SpatioTemporalDataset
from .datasets.windows import ForecastSplits
from .mask import SensorMask

__all__ = ["Selector", "RandomSelector", "DegreeSelector", "PageRankSelector", "BetweennessSelector",
           "QRSelector", "SELECTORS", "make_selector", "select_sensors"]


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


class Selector:
    """Base selector.

    Args:
        sparsity (float, optional): Fraction of sensors removed, in ``[0, 1)``.
        budget (int, optional): Number of sensors kept (instead of ``sparsity``).
        protected (sequence of int, optional): Sensors that are always kept (default: none).
    """

    name = "selector"

    def __init__(self, sparsity: Optional[float] = None, budget: Optional[int] = None,
                 protected: Optional[Sequence[int]] = None) -> None:
        if (sparsity is None) == (budget is None):
            raise ValueError("give exactly one of `sparsity` and `budget`")
        self.sparsity = sparsity
        self.budget = budget
        self.protected = protected

    def _scores(self, dataset: SpatioTemporalDataset, train_steps: int) -> Tensor:
        raise NotImplementedError

    def fit(self, data: ForecastSplits | SpatioTemporalDataset, train_steps: Optional[int] = None) -> "Selector":
        """Scores the sensors of ``data`` (graph + training steps only) and builds ``mask_``."""
        dataset, n_train = _graph_and_train(data, train_steps)
        scores = self._scores(dataset, n_train).to(torch.float32)
        self.scores_ = scores
        self.mask_ = SensorMask.from_scores(scores, sparsity=self.sparsity, budget=self.budget,
                                            protected=self.protected, sensor_ids=dataset.sensor_id,
                                            method=self.name, meta={"train_steps": n_train})
        return self

    def __repr__(self) -> str:
        tgt = f"sparsity={self.sparsity}" if self.sparsity is not None else f"budget={self.budget}"
        return f"{type(self).__name__}({tgt})"


class RandomSelector(Selector):
    """Uniformly random selection (``seed`` fixes it)."""

    name = "random"

    def __init__(self, sparsity=None, budget=None, protected=None, seed: int = 0) -> None:
        super().__init__(sparsity, budget, protected)
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

    def __init__(self, sparsity=None, budget=None, protected=None, alpha: float = 0.85) -> None:
        super().__init__(sparsity, budget, protected)
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


class QRSelector(Selector):
    """Pivoted QR on POD modes of the training series (Manohar et al. 2018; PySensors' ``QR``).

    The training series ``X [T_train, N]`` (feature 0, centred per sensor) is reduced to its
    ``r`` leading right singular vectors ``Psi [N, r]`` (``r`` = number of kept sensors,
    capped by the rank); column-pivoted QR of ``Psi^T`` orders the sensors, and the first
    ``K`` pivots are kept. Sensor ``i``'s score is ``1 - position_i / N``.

    Args:
        n_modes (int, optional): Number of POD modes ``r`` (default: the number kept).
    """

    name = "qr"

    def __init__(self, sparsity=None, budget=None, protected=None, n_modes: Optional[int] = None) -> None:
        super().__init__(sparsity, budget, protected)
        self.n_modes = n_modes

    def _scores(self, dataset, train_steps):
        from scipy.linalg import qr

        from .schedules import num_to_keep

        X = dataset.series[:train_steps, :, 0].double().numpy()
        if dataset.null_value is not None:
            # fill missing readings with the sensor's training mean before the SVD
            miss = X == dataset.null_value
            if miss.any():
                col = np.where(miss, np.nan, X)
                means = np.nan_to_num(np.nanmean(col, axis=0))
                X = np.where(miss, means[None, :], X)
        X = X - X.mean(axis=0, keepdims=True)
        N = X.shape[1]
        k = num_to_keep(N, self.sparsity, self.budget)
        r = int(self.n_modes or k)
        _, _, vt = np.linalg.svd(X, full_matrices=False)
        r = max(1, min(r, vt.shape[0]))
        psi_t = vt[:r]  # [r, N]
        _, _, piv = qr(psi_t, pivoting=True, mode="economic")
        pos = np.empty(N, dtype=np.int64)
        pos[piv] = np.arange(N)
        return torch.from_numpy(1.0 - pos / N)


SELECTORS = {"random": RandomSelector, "degree": DegreeSelector, "pagerank": PageRankSelector,
             "betweenness": BetweennessSelector, "qr": QRSelector}


def make_selector(name: str, sparsity: Optional[float] = None, budget: Optional[int] = None,
                  protected: Optional[Sequence[int]] = None, seed: int = 0, **kwargs) -> Selector:
    """A baseline selector by name (``random``, ``degree``, ``pagerank``, ``betweenness``, ``qr``)."""
    if name not in SELECTORS:
        raise ValueError(f"`name` must be one of {sorted(SELECTORS)}, got {name!r}")
    cls = SELECTORS[name]
    if cls is RandomSelector:
        kwargs["seed"] = seed
    return cls(sparsity=sparsity, budget=budget, protected=protected, **kwargs)


def select_sensors(name: str, splits: ForecastSplits, sparsity: Optional[float] = None,
                   budget: Optional[int] = None, protected: Optional[Sequence[int]] = None,
                   seed: int = 0) -> SensorMask:
    """Shortcut: ``make_selector(...).fit(splits).mask_``."""
    return make_selector(name, sparsity, budget, protected, seed).fit(splits).mask_
