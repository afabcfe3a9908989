r"""The sample-pruning policies, each a :class:`~dynst_pyg.sampling.PruningSampler`, and the registry by name.

* :class:`FullData` - every window, weight 1.
* :class:`RandomPrune` - uniformly skip a fraction ``r`` of all windows, weights
  ``1/(1 - r)``.
* :class:`InfoBatch` - loss-only scores, skip ``r`` of the below-mean windows at
  random, weights ``1/(1 - r)`` on the kept below-mean ones.
* :class:`STPrune` - ``score = loss * (1 + alpha * complexity)``, where the
  label-free complexity of a window is the mean of the rank-normalised temporal total
  variation and spatial non-smoothness ``x^T L x / x^T x`` on the static graph's
  Laplacian (:mod:`~dynst_pyg.sampling.features`); below-threshold windows are skipped
  at random with a *per-bin* ratio, bins being quantiles of a cheap non-stationarity
  measure (shift of mean and scale between the two halves of the input window), so
  stationary windows are skipped more while the average ratio stays ``r``; kept
  below-threshold windows of bin ``b`` get weight ``n_b / (n_b - k_b) = 1 / (1 - r_b)``
  (``k_b`` of the ``n_b`` windows skipped), which makes the weighted gradient an
  *exactly* unbiased estimate of the full-data gradient inside every bin.

The schedule, the thresholds and the distributed sharding are those of
:class:`~dynst_pyg.sampling.PruningSampler` (:mod:`~dynst_pyg.sampling.base`).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from .._checks import check_choice, check_fraction, check_positive_int
from .base import PruningSampler
from .features import _describe, rank_normalize, window_complexity, window_nonstationarity

__all__ = ["FullData", "RandomPrune", "InfoBatch", "STPrune", "make_sampler", "POLICIES"]


class FullData(PruningSampler):
    """Every window every epoch, weights 1 (the reference policy).

    Args:
        num_samples (int): Number of training windows.
        num_epochs (int, optional): Number of epochs. (default: ``1``)
        **kwargs: ``seed``, ``shuffle``, ``num_replicas``, ``rank``, ``drop_last`` of
            :class:`PruningSampler`.
    """

    policy_name = "full"

    def __init__(self, num_samples: int, num_epochs: int = 1, **kwargs: Any) -> None:
        for key in ("prune_ratio", "target_ratio"):
            if kwargs.get(key):
                raise ValueError(f"`{key}` must be 0/None for FullData, got {kwargs[key]}")
            kwargs.pop(key, None)
        super().__init__(num_samples, num_epochs, prune_ratio=0.0, **kwargs)

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, num_epochs={self.num_epochs}, seed={self.seed}"


class RandomPrune(PruningSampler):
    """Uniformly skip a fraction ``r`` of all windows per pruning epoch, weights ``1/(1 - r)``.

    Args:
        num_samples (int): Number of training windows.
        num_epochs (int): Number of epochs.
        prune_ratio (float, optional): Fraction of all windows skipped, in ``[0, 1)``.
            (default: ``0.5``)
        target_ratio (float, optional): Same meaning as ``prune_ratio`` (overrides it;
            accepted for interface parity). (default: ``None``)
        **kwargs: Other :class:`PruningSampler` arguments.
    """

    policy_name = "random"

    def __init__(self, num_samples: int, num_epochs: int, prune_ratio: Optional[float] = 0.5,
                 target_ratio: Optional[float] = None, **kwargs: Any) -> None:
        if target_ratio is not None:
            prune_ratio = check_fraction(target_ratio, "target_ratio")
        super().__init__(num_samples, num_epochs, prune_ratio=prune_ratio, **kwargs)

    def _eligible(self) -> Tensor:
        return torch.ones(self.num_samples, dtype=torch.bool)

    def _below(self, eligible: Tensor, gen: torch.Generator) -> tuple[Tensor, float]:
        return eligible.clone(), self.prune_ratio

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, num_epochs={self.num_epochs}, "
                f"prune_ratio={self.prune_ratio:g}, delta={self.delta:g}, seed={self.seed}")


class InfoBatch(PruningSampler):
    """InfoBatch: loss-only scores, skip ``r`` of the below-threshold windows, weights ``1/(1 - r)``.

    The threshold is the mean loss; in target-ratio mode it is the loss quantile of
    :class:`PruningSampler` (the same rule :class:`STPrune` uses, with loss-only scores
    and one ratio for every window), so both can be compared at an equal budget.

    Args:
        num_samples (int): Number of training windows.
        num_epochs (int): Number of epochs.
        **kwargs: :class:`PruningSampler` arguments (``prune_ratio``, ``target_ratio``,
            ``delta``, ``seed``, ...).
    """

    policy_name = "infobatch"


class STPrune(PruningSampler):
    r"""ST-Prune: loss x spatio-temporal complexity scores with stationarity-aware rescaling.

    ``score_i = loss_i * (1 + alpha * complexity_i)``. Below-threshold windows (mean
    score, or the quantile in target-ratio mode) are skipped at random with a per-bin
    ratio ``r_b``: windows are put into ``num_bins`` equal-count bins of
    ``nonstationarity`` (bin 0 = most stationary), bin ``b`` gets the multiplier
    ``m_b = 1 + strength * (1 - 2 b / (num_bins - 1))`` and ``r_b = min(c * m_b, r_max)``
    with ``c`` chosen so that the below-threshold-count-weighted average of ``r_b`` is
    ``r`` and ``r_max = 1 - (1 - r) / 2``. Kept below-threshold windows of bin ``b``
    get weight ``n_b / (n_b - k_b)``.

    Args:
        complexity (Tensor): ``[N]`` complexity of every window (e.g. from
            :meth:`from_windows`, in ``[0, 1]``; any non-negative values accepted).
        nonstationarity (Tensor, optional): ``[N]`` non-stationarity of every window.
            (default: ``None``: one bin)
        num_epochs (int): Number of epochs.
        alpha (float, optional): Weight of the complexity in the score, ``>= 0``.
            (default: ``1.0``)
        num_bins (int, optional): Number of stationarity bins. (default: ``4``)
        stationarity_strength (float, optional): How much more stationary bins are
            pruned, in ``[0, 1)`` (0 = same ratio in every bin). Larger values raise the
            weights of the kept stationary windows. (default: ``0.2``)
        **kwargs: :class:`PruningSampler` arguments (``prune_ratio``, ``target_ratio``,
            ``delta``, ``seed``, ``shuffle``, ``num_replicas``, ``rank``, ...).
    """

    policy_name = "stprune"

    def __init__(self, complexity: Tensor, nonstationarity: Optional[Tensor] = None, *, num_epochs: int,
                 alpha: float = 1.0, num_bins: int = 4, stationarity_strength: float = 0.2,
                 **kwargs: Any) -> None:
        if not isinstance(complexity, Tensor) or complexity.dim() != 1 or complexity.numel() == 0:
            raise ValueError(f"`complexity` must be a non-empty 1-D tensor [N], got {_describe(complexity)}")
        comp = complexity.detach().to("cpu", torch.float64).clone()
        if not torch.isfinite(comp).all() or (comp < 0).any():
            raise ValueError("`complexity` must be finite and >= 0")
        n = comp.numel()
        if nonstationarity is not None:
            if not isinstance(nonstationarity, Tensor) or nonstationarity.shape != (n,):
                raise ValueError(f"`nonstationarity` must be a tensor of shape [{n}] (like `complexity`), "
                                 f"got {_describe(nonstationarity)}")
            if not torch.isfinite(nonstationarity).all():
                raise ValueError("`nonstationarity` must be finite")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"`alpha` must be a finite float >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.num_bins = check_positive_int(num_bins, "num_bins")
        self.stationarity_strength = check_fraction(stationarity_strength, "stationarity_strength")
        super().__init__(n, num_epochs, **kwargs)
        self.complexity = comp.to(torch.float32)
        self._factor = 1.0 + self.alpha * comp
        if nonstationarity is None:
            self.nonstationarity = torch.zeros(n)
            self.bins = torch.zeros(n, dtype=torch.long)
        else:
            self.nonstationarity = nonstationarity.detach().to("cpu", torch.float32).clone()
            ranks = rank_normalize(self.nonstationarity)            # [0, 1], ties share
            self.bins = torch.clamp((ranks * self.num_bins).floor().to(torch.long), max=self.num_bins - 1)

    @classmethod
    def from_windows(cls, window_dataset: Any, edge_index: Tensor, edge_weight: Optional[Tensor] = None, *,
                     num_epochs: int, chunk_size: int = 256, features: Optional[Sequence[int]] = None,
                     **kwargs: Any) -> "STPrune":
        r"""Builds an :class:`STPrune` with complexity and stationarity from the input windows.

        Inputs are read with ``window_dataset.batch(idx)`` (``x [B, T_in, N, F]``) in
        chunks of ``chunk_size`` windows; the targets are never used. The complexity is
        the mean of the rank-normalised temporal total variation and spatial
        non-smoothness (:func:`window_complexity`); the non-stationarity is
        :func:`window_nonstationarity`.

        Args:
            window_dataset (WindowDataset): Training windows (anything with ``len`` and
                ``batch``).
            edge_index (LongTensor): Static graph ``[2, E]``.
            edge_weight (Tensor, optional): ``[E]``. (default: ``None``: ones)
            num_epochs (int): Number of epochs.
            chunk_size (int, optional): Windows per chunk (bounds memory).
                (default: ``256``)
            features (Sequence[int], optional): Input features used. (default:
                ``None``: all)
            **kwargs: :class:`STPrune` / :class:`PruningSampler` arguments.
        """
        chunk_size = check_positive_int(chunk_size, "chunk_size")
        n = len(window_dataset)
        if n == 0:
            raise ValueError("`window_dataset` has no windows")
        tvs, sps, nss = [], [], []
        for start in range(0, n, chunk_size):
            idx = torch.arange(start, min(n, start + chunk_size))
            x, _ = window_dataset.batch(idx)
            if features is not None:
                x = x[..., list(features)]
            tv, sp = window_complexity(x, edge_index, edge_weight)
            tvs.append(tv)
            sps.append(sp)
            nss.append(window_nonstationarity(x))
        tv, sp, ns = torch.cat(tvs), torch.cat(sps), torch.cat(nss)
        complexity = 0.5 * (rank_normalize(tv) + rank_normalize(sp))
        sampler = cls(complexity, ns, num_epochs=num_epochs, **kwargs)
        sampler.temporal_variation = tv
        sampler.spatial_roughness = sp
        return sampler

    def _scores(self) -> Tensor:
        return self._loss * self._factor

    def _bin_ids(self) -> Tensor:
        return self.bins

    def bin_multipliers(self) -> Tensor:
        """Relative pruning multiplier ``m_b`` of each stationarity bin (bin 0 most stationary)."""
        b = self.num_bins
        if b == 1:
            return torch.ones(1, dtype=torch.float64)
        pos = torch.arange(b, dtype=torch.float64) / (b - 1)
        return 1.0 + self.stationarity_strength * (1.0 - 2.0 * pos)

    def _bin_ratios(self, counts: Tensor, ratio: float) -> Tensor:
        m = self.bin_multipliers()
        if counts.numel() != m.numel():
            m = torch.ones(counts.numel(), dtype=torch.float64)
        c = counts.to(torch.float64)
        total = float(c.sum())
        if total == 0 or ratio == 0:
            return torch.zeros_like(m)
        r_max = 1.0 - (1.0 - ratio) / 2.0
        goal = ratio * total

        def mass(scale: float) -> float:
            return float((c * torch.clamp(scale * m, 0.0, r_max)).sum())

        lo, hi = 0.0, r_max / float(m[m > 0].min())
        for _ in range(60):                                       # bisection on the scale
            mid = 0.5 * (lo + hi)
            if mass(mid) < goal:
                lo = mid
            else:
                hi = mid
        return torch.clamp(hi * m, 0.0, r_max)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", alpha={self.alpha:g}, num_bins={self.num_bins}, "
                f"stationarity_strength={self.stationarity_strength:g}")


#: Policy names accepted by :func:`make_sampler` (the ``sample_pruning`` choices of the configuration and the CLI).
POLICIES = ("full", "random", "infobatch", "stprune")


def make_sampler(policy: str, num_samples: int, num_epochs: int, *, window_dataset: Any = None,
                 edge_index: Optional[Tensor] = None, edge_weight: Optional[Tensor] = None,
                 **kwargs: Any) -> PruningSampler:
    """Builds a sampler by policy name (``"full"``, ``"random"``, ``"infobatch"``, ``"stprune"``).

    Args:
        policy (str): One of :data:`POLICIES`.
        num_samples (int): Number of windows (checked against ``window_dataset``).
        num_epochs (int): Number of epochs.
        window_dataset (WindowDataset, optional): Needed for ``"stprune"``.
            (default: ``None``)
        edge_index (LongTensor, optional): Needed for ``"stprune"``. (default: ``None``)
        edge_weight (Tensor, optional): For ``"stprune"``. (default: ``None``)
        **kwargs: Policy arguments.
    """
    check_choice(policy, "policy", POLICIES)
    if policy == "full":
        kwargs = {k: v for k, v in kwargs.items() if k not in ("prune_ratio", "target_ratio", "delta")}
        return FullData(num_samples, num_epochs, **kwargs)
    if policy == "random":
        return RandomPrune(num_samples, num_epochs, **kwargs)
    if policy == "infobatch":
        return InfoBatch(num_samples, num_epochs, **kwargs)
    if window_dataset is None or edge_index is None:
        raise ValueError("`window_dataset` and `edge_index` are required for policy 'stprune'")
    if len(window_dataset) != num_samples:
        raise ValueError(f"`num_samples` ({num_samples}) must equal len(window_dataset) ({len(window_dataset)})")
    return STPrune.from_windows(window_dataset, edge_index, edge_weight, num_epochs=num_epochs, **kwargs)
