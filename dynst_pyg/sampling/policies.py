r"""Dynamic training-sample pruning: ST-Prune and its baselines as samplers.

Every policy here is a :class:`torch.utils.data.Sampler` over the ``N`` training
windows of a :class:`~dynst_pyg.data.WindowDataset`, with one shared interface:

* :meth:`~PruningSampler.set_epoch` decides the epoch's kept windows (and their loss
  weights) from a :class:`torch.Generator` seeded with ``(seed, epoch)``: no global
  RNG is used or reseeded, so the same seed and the same loss history give the same
  epochs on every process;
* iterating yields the epoch's kept indices (shuffled), and ``len()`` is the number
  this process yields in the current epoch;
* :attr:`~PruningSampler.weights` (``[N]`` float, 0 for pruned windows) or
  :meth:`~PruningSampler.weight_of` give the per-sample loss weights;
* :meth:`~PruningSampler.update` records the latest per-window losses (all-gathered
  across ranks under :mod:`torch.distributed`).

Policies:

* :class:`FullData` - every window, weight 1.
* :class:`RandomPrune` - uniformly skip a fraction ``r`` of all windows, weights
  ``1/(1 - r)``.
* :class:`InfoBatch` - loss-only scores, skip ``r`` of the below-mean windows at
  random, weights ``1/(1 - r)`` on the kept below-mean ones.
* :class:`STPrune` - ``score = loss * (1 + alpha * complexity)``, where the
  label-free complexity of a window is the mean of the rank-normalised temporal total
  variation and spatial non-smoothness ``x^T L x / x^T x`` on the static graph's
  Laplacian; below-threshold windows are skipped at random with a *per-bin* ratio,
  bins being quantiles of a cheap non-stationarity measure (shift of mean and scale
  between the two halves of the input window), so stationary windows are skipped
  more while the average ratio stays ``r``; kept below-threshold windows of bin ``b``
  get weight ``n_b / (n_b - k_b) = 1 / (1 - r_b)`` (``k_b`` of the ``n_b`` windows
  skipped), which makes the weighted gradient an *exactly* unbiased estimate of the
  full-data gradient inside every bin.

Schedule (all policies): epoch 0 uses all data (score-based policies have seen no
losses yet, and the baselines follow the same schedule so every policy sees the same
number of windows at a given skip target); epochs ``1 .. ceil(delta * E) - 1`` prune;
epochs ``>= ceil(delta * E)`` (annealing) use all data with weights exactly 1. Windows
whose loss was never recorded are never pruned by score-based policies.

Thresholds: by default (``target_ratio=None``) the threshold is the mean score and
``prune_ratio`` is the fraction of below-mean windows skipped, as in InfoBatch. With
``target_ratio=s`` (target-ratio mode, for aggressive budgets) a fraction ``s`` of all
(eligible) windows is skipped per pruning epoch: the threshold is the score quantile
``q = s / r``, and a fraction ``r`` of the windows under it is skipped; ``r`` defaults
to ``s ** 0.75`` and must be ``>= s``. (``r = sqrt(s)`` puts weights ``1 / (1 - r)`` of 4-9 on
the kept low-score windows at ``s ~ 0.6``; with an L1 forecasting loss a learned window's
gradient does not shrink with its loss, so large weights mostly add variance; the
measurements behind the default are in ``benchmarks/README.md``.) Because epoch 0 and the annealing
epochs prune nothing, an *overall* skip fraction over all ``E`` epochs needs a larger
per-epoch fraction: :func:`epoch_skip_ratio` does that conversion
(``s_epoch = s_overall * E / (ceil(delta * E) - 1)``).

Distributed: with ``num_replicas``/``rank`` given, or when :mod:`torch.distributed` is
initialised, every rank computes the same kept set (shared seed, identical score
tables) and yields its own shard ``kept[rank::num_replicas]``. With
``drop_last=False`` (default) the shuffled kept list is padded by repeating its first
entries so shards are equal-sized (a few windows then appear on two ranks, as in
:class:`~torch.utils.data.distributed.DistributedSampler`); with ``drop_last=True`` the
tail is dropped instead (shards disjoint, up to ``num_replicas - 1`` kept windows unseen
that epoch). :meth:`~PruningSampler.update` all-gathers ``(indices, losses)`` when
:mod:`torch.distributed` is initialised with more than one process, so every rank's
score table stays identical.

Example (a plain training loop)::

    import torch
    from dynst_pyg.metrics import masked_mae
    from dynst_pyg.sampling import STPrune, iter_batches

    splits = prepare(ds, t_in=12, t_out=12)
    train = splits.train
    sampler = STPrune.from_windows(train, splits.edge_index, splits.edge_weight,
                                   num_epochs=20, target_ratio=0.5, seed=0)
    for epoch in range(20):
        sampler.set_epoch(epoch)
        for idx in iter_batches(sampler, batch_size=64):
            x, y = train.batch(idx)
            pred = splits.scaler.inverse_transform(model(x, splits.edge_index))
            loss_per_sample = masked_mae(pred, y, splits.null_value, reduction="none")
            optimizer.zero_grad()
            (loss_per_sample * sampler.weight_of(idx)).mean().backward()
            optimizer.step()
            sampler.update(idx, loss_per_sample.detach())

:class:`~dynst_pyg.data.WindowDataset` items do not carry their window index, so
with a plain :class:`torch.utils.data.DataLoader` (``sampler=...``) the loop could not
look up ``weight_of(idx)`` or call ``update(idx, ...)``: use :func:`iter_batches` and
``WindowDataset.batch`` as above, or a dataset that returns ``(index, item)``. The
package's own loop, :class:`~dynst_pyg.training.EpochEngine`, does the former. Call ``set_epoch`` before
each epoch (as with ``DistributedSampler``); the kept set is fixed at that call, so
``update`` during an epoch affects the next one.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterator, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler

__all__ = [
    "PruningSampler",
    "FullData",
    "RandomPrune",
    "InfoBatch",
    "STPrune",
    "iter_batches",
    "epoch_skip_ratio",
    "rank_normalize",
    "window_complexity",
    "window_nonstationarity",
    "make_sampler",
    "POLICIES",
]

_MASK64 = (1 << 63) - 1


def _mix_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for ``(seed, epoch)`` (splitmix64-style mixing, no global state)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & ((1 << 64) - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return (z ^ (z >> 31)) & _MASK64


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) and not (
            isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point()):
        raise TypeError(f"`{name}` must be an int >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value}")
    return value


def _check_ratio(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a float in [0, 1), got {value!r}")
    value = float(value)
    if not (0.0 <= value < 1.0):
        raise ValueError(f"`{name}` must be in [0, 1), got {value}")
    return value


def _check_delta(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`delta` must be a float in (0, 1], got {value!r}")
    value = float(value)
    if not (0.0 < value <= 1.0):
        raise ValueError(f"`delta` must be in (0, 1], got {value}")
    return value


def epoch_skip_ratio(overall_skip: float, num_epochs: int, delta: float = 0.875) -> float:
    r"""Per-pruning-epoch skip fraction that gives ``overall_skip`` averaged over all epochs.

    Epoch 0 and the annealing epochs ``>= ceil(delta * E)`` use all windows, so only
    ``P = ceil(delta * E) - 1`` epochs prune, and ``s_epoch = overall_skip * E / P``.

    Args:
        overall_skip (float): Wanted fraction of window visits skipped over the whole
            run, in ``[0, 1)``.
        num_epochs (int): Number of epochs ``E``.
        delta (float, optional): Annealing fraction, in ``(0, 1]``. (default: ``0.875``)

    Returns:
        float: The per-epoch target ratio to pass as ``target_ratio``.

    Raises:
        ValueError: If no epoch prunes (and ``overall_skip > 0``) or the needed per-epoch
            fraction is ``>= 1``.
    """
    s = _check_ratio("overall_skip", overall_skip)
    e = _check_int("num_epochs", num_epochs, 1)
    d = _check_delta(delta)
    if s == 0.0:
        return 0.0
    pruning = math.ceil(d * e) - 1
    if pruning <= 0:
        raise ValueError(f"no epoch prunes with `num_epochs`={e} and `delta`={d} "
                         f"(epoch 0 and epochs >= ceil(delta * num_epochs) use all data), "
                         f"so `overall_skip`={s} cannot be reached")
    s_epoch = s * e / pruning
    if s_epoch >= 1.0:
        raise ValueError(f"`overall_skip`={s} needs a per-epoch skip of {s_epoch:.3f} >= 1 with "
                         f"`num_epochs`={e}, `delta`={d} ({pruning} pruning epochs); use more epochs, "
                         f"a larger delta or a smaller skip")
    return s_epoch


def iter_batches(sampler: Sampler[int], batch_size: int, drop_last: bool = False) -> Iterator[Tensor]:
    """Yields the sampler's indices in chunks as ``LongTensor`` (for ``WindowDataset.batch``).

    Args:
        sampler (Sampler[int]): Any sampler (e.g. a :class:`PruningSampler`).
        batch_size (int): Chunk size.
        drop_last (bool, optional): Drop a last incomplete chunk. (default: ``False``)
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    if isinstance(sampler, PruningSampler):
        order = sampler.local_indices()
    else:
        order = torch.as_tensor(list(iter(sampler)), dtype=torch.long)
    n = order.numel()
    stop = (n // batch_size) * batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def rank_normalize(values: Tensor) -> Tensor:
    """Average-rank normalisation of a 1-D tensor to ``[0, 1]`` (ties share a rank).

    The smallest value maps to 0 and the largest to 1; a constant tensor maps to 0.
    """
    if values.dim() != 1:
        raise ValueError(f"`values` must be 1-D, got shape {tuple(values.shape)}")
    n = values.numel()
    if n <= 1:
        return torch.zeros(n, dtype=torch.float32)
    v = values.detach().to(torch.float64)
    if torch.isnan(v).any():
        raise ValueError("`values` must not contain NaN")
    uniq, inverse, counts = torch.unique(v, sorted=True, return_inverse=True, return_counts=True)
    if uniq.numel() == 1:
        return torch.zeros(n, dtype=torch.float32)
    start = torch.cumsum(counts, 0) - counts
    avg_rank = start.to(torch.float64) + (counts.to(torch.float64) - 1.0) / 2.0
    return (avg_rank[inverse] / (n - 1)).to(torch.float32)


def _describe(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__


def _check_windows(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"`{name}` must be a tensor [B, T_in, N, F], got {_describe(x)}")


def window_complexity(x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                      eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    r"""Raw temporal and spatial complexity of input windows (label-free).

    * temporal total variation: ``mean_{n,f} sum_t |x[t+1] - x[t]| / (T - 1)``;
    * spatial non-smoothness: ``sum_{t,f} x_t^T L x_t / sum_{t,f} x_t^T x_t`` with the
      combinatorial Laplacian ``L = D - W`` of the symmetrised graph
      ``W = (A + A^T) / 2`` (so ``x^T L x = 1/2 sum_e w_e (x_src - x_dst)^2``).

    Args:
        x (Tensor): Windows ``[B, T_in, N, F]``.
        edge_index (LongTensor): ``[2, E]``.
        edge_weight (Tensor, optional): ``[E]``. (default: ``None``: ones)
        eps (float, optional): Added to the denominator. (default: ``1e-8``)

    Returns:
        (Tensor, Tensor): ``tv [B]`` and ``spatial [B]`` (float32).
    """
    _check_windows(x)
    b, t, n, f = x.shape
    x = x.detach().to(torch.float32)
    if t > 1:
        tv = (x[:, 1:] - x[:, :-1]).abs().sum(dim=1).mean(dim=(1, 2)) / (t - 1)
    else:
        tv = torch.zeros(b)
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`edge_index` must be a LongTensor [2, E], got {_describe(edge_index)}")
    ei = edge_index.to(torch.long)
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
        raise ValueError(f"`edge_index` entries must lie in [0, {n}) for windows with N={n} nodes")
    if edge_weight is None:
        w = torch.ones(ei.size(1))
    else:
        if edge_weight.shape != (ei.size(1),):
            raise ValueError(f"`edge_weight` must have shape [{ei.size(1)}], got {tuple(edge_weight.shape)}")
        w = edge_weight.detach().to(torch.float32)
    diff = x[:, :, ei[0], :] - x[:, :, ei[1], :]                        # [B, T, E, F]
    quad = 0.5 * (diff.pow(2) * w.view(1, 1, -1, 1)).sum(dim=(1, 2, 3))
    energy = x.pow(2).sum(dim=(1, 2, 3))
    spatial = quad / (energy + eps)
    return tv, spatial


def window_nonstationarity(x: Tensor, eps: float = 1e-3) -> Tensor:
    r"""Cheap non-stationarity of input windows: shift of mean and scale between halves.

    For every node and feature, with ``m1, s1`` (``m2, s2``) the mean and standard
    deviation of the first (second) half of the window and ``s`` that of the whole
    window, the measure is ``|m1 - m2| / (s + eps) + |log((s1 + eps) / (s2 + eps))|``,
    averaged over nodes and features. ``eps`` is in the units of ``x`` (normalised
    inputs are O(1)).

    Args:
        x (Tensor): Windows ``[B, T_in, N, F]`` with ``T_in >= 2``.
        eps (float, optional): Stabiliser. (default: ``1e-3``)

    Returns:
        Tensor: ``[B]`` float32, 0 for a perfectly stationary window.
    """
    _check_windows(x)
    t = x.size(1)
    if t < 2:
        return torch.zeros(x.size(0))
    x = x.detach().to(torch.float32)
    h = t // 2
    a, c = x[:, :h], x[:, t - h:]
    m1, m2 = a.mean(dim=1), c.mean(dim=1)
    s1, s2 = a.std(dim=1, unbiased=False), c.std(dim=1, unbiased=False)
    s = x.std(dim=1, unbiased=False)
    shift = (m1 - m2).abs() / (s + eps) + ((s1 + eps) / (s2 + eps)).log().abs()
    return shift.mean(dim=(1, 2))


class PruningSampler(Sampler[int]):
    r"""Base class of the sample-pruning policies (the shared interface).

    Args:
        num_samples (int): Number of training windows ``N``.
        num_epochs (int): Number of training epochs ``E`` (sets the annealing epoch).
        prune_ratio (float, optional): ``r`` in ``[0, 1)``: fraction of the
            below-threshold windows skipped per pruning epoch. (default: ``None``:
            ``0.5`` with the mean threshold, ``target_ratio ** 0.75`` in target-ratio mode)
        target_ratio (float, optional): Target-ratio mode: fraction of all windows
            skipped per pruning epoch, in ``[0, 1)``, through a quantile threshold
            ``q = target_ratio / r`` (requires ``r >= target_ratio``). (default: ``None``:
            mean threshold)
        delta (float, optional): Annealing fraction in ``(0, 1]``; epochs
            ``>= ceil(delta * num_epochs)`` use all windows with weight 1.
            (default: ``0.875``)
        seed (int, optional): Seed of the per-epoch generators. (default: ``0``)
        shuffle (bool, optional): Shuffle the kept indices. (default: ``True``)
        num_replicas (int, optional): Number of distributed ranks. (default: ``None``:
            the world size when :mod:`torch.distributed` is initialised, else 1)
        rank (int, optional): This process's rank. (default: ``None``: the
            distributed rank when initialised, else 0)
        drop_last (bool, optional): Drop the tail of the kept list instead of padding
            it when sharding. (default: ``False``)
        initial_loss (float, optional): Loss assumed for windows never seen.
            (default: ``1.0``)
    """

    #: Name used by the benchmark CLI and JSON.
    policy_name: str = "base"

    def __init__(self, num_samples: int, num_epochs: int, *, prune_ratio: Optional[float] = None,
                 target_ratio: Optional[float] = None, delta: float = 0.875, seed: int = 0,
                 shuffle: bool = True, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 drop_last: bool = False, initial_loss: float = 1.0) -> None:
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.num_epochs = _check_int("num_epochs", num_epochs, 1)
        self.delta = _check_delta(delta)
        self.target_ratio = None if target_ratio is None else _check_ratio("target_ratio", target_ratio)
        if prune_ratio is None:
            prune_ratio = 0.5 if self.target_ratio is None else self.target_ratio ** 0.75
        self.prune_ratio = _check_ratio("prune_ratio", prune_ratio)
        if self.target_ratio is not None and self.prune_ratio < self.target_ratio:
            raise ValueError(f"`prune_ratio` ({self.prune_ratio}) must be >= `target_ratio` "
                             f"({self.target_ratio}): the quantile threshold is target_ratio / prune_ratio")
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if not math.isfinite(float(initial_loss)) or float(initial_loss) < 0:
            raise ValueError(f"`initial_loss` must be finite and >= 0, got {initial_loss}")
        dist_on = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist_on else 1
        if rank is None:
            rank = dist.get_rank() if dist_on else 0
        self.num_replicas = _check_int("num_replicas", num_replicas, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"`rank` must be in [0, {self.num_replicas}), got {self.rank}")
        self._loss = torch.full((self.num_samples,), float(initial_loss), dtype=torch.float64)
        self._seen = torch.zeros(self.num_samples, dtype=torch.bool)
        self._epoch = 0
        self._plan: Optional[tuple[int, Tensor, Tensor, Tensor]] = None  # (epoch, order, weights, local)

    # ----------------------------------------------------------------- schedule
    @property
    def anneal_epoch(self) -> int:
        """First annealing epoch ``ceil(delta * num_epochs)`` (all data, weights 1, from here on)."""
        return math.ceil(self.delta * self.num_epochs)

    def is_pruning_epoch(self, epoch: int) -> bool:
        """Whether ``epoch`` may prune (``1 <= epoch < anneal_epoch``)."""
        return 1 <= int(epoch) < self.anneal_epoch

    @property
    def epoch(self) -> int:
        """The epoch set by :meth:`set_epoch`."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Decides epoch ``epoch``'s kept windows and weights from the current scores.

        Args:
            epoch (int): Epoch number, ``>= 0``.
        """
        self._epoch = _check_int("epoch", epoch, 0)
        self._plan = None
        self._ensure_plan()

    # ----------------------------------------------------------------- scores
    @property
    def losses(self) -> Tensor:
        """Latest recorded loss of every window, ``[N]`` float64 (a copy)."""
        return self._loss.clone()

    @property
    def seen(self) -> Tensor:
        """Whether a loss was ever recorded for each window, ``[N]`` bool (a copy)."""
        return self._seen.clone()

    @property
    def scores(self) -> Tensor:
        """Current score of every window, ``[N]`` float64 (lower = more likely pruned)."""
        return self._scores()

    def _scores(self) -> Tensor:
        return self._loss.clone()

    def _eligible(self) -> Tensor:
        return self._seen.clone()

    def _bin_ids(self) -> Tensor:
        return torch.zeros(self.num_samples, dtype=torch.long)

    def _bin_ratios(self, counts: Tensor, ratio: float) -> Tensor:
        return torch.full((counts.numel(),), ratio, dtype=torch.float64)

    def _below(self, eligible: Tensor, gen: torch.Generator) -> tuple[Tensor, float]:
        """Below-threshold set (bool [N]) and the ratio to apply among it."""
        scores = self._scores()
        idx = eligible.nonzero().view(-1)
        below = torch.zeros(self.num_samples, dtype=torch.bool)
        if idx.numel() == 0:
            return below, 0.0
        s = scores[idx]
        if self.target_ratio is None:
            below[idx[s < s.mean()]] = True
            return below, self.prune_ratio
        if self.target_ratio == 0.0:
            return below, 0.0
        q = self.target_ratio / self.prune_ratio
        k = int(round(q * idx.numel()))
        perm = torch.randperm(idx.numel(), generator=gen)          # random tie-break
        order = perm[torch.argsort(s[perm], stable=True)]
        below[idx[order[:k]]] = True
        return below, self.prune_ratio

    def _ensure_plan(self) -> None:
        if self._plan is not None and self._plan[0] == self._epoch:
            return
        n = self.num_samples
        epoch = self._epoch
        gen = torch.Generator().manual_seed(_mix_seed(self.seed, epoch))
        weights = torch.ones(n, dtype=torch.float32)
        if self.is_pruning_epoch(epoch):
            below, ratio = self._below(self._eligible(), gen)
            if ratio > 0 and bool(below.any()):
                bins = self._bin_ids()
                nb = int(bins.max()) + 1 if bins.numel() else 1
                counts = torch.bincount(bins[below], minlength=nb)
                ratios = self._bin_ratios(counts, ratio)
                for b in range(nb):
                    n_b = int(counts[b])
                    if n_b == 0:
                        continue
                    k_b = min(int(round(float(ratios[b]) * n_b)), n_b - 1)
                    if k_b <= 0:
                        continue
                    members = (below & (bins == b)).nonzero().view(-1)
                    pruned = members[torch.randperm(n_b, generator=gen)[:k_b]]
                    weights[members] = float(n_b) / float(n_b - k_b)
                    weights[pruned] = 0.0
        kept = (weights > 0).nonzero().view(-1)
        order = kept[torch.randperm(kept.numel(), generator=gen)] if self.shuffle else kept
        local = self._shard(order)
        self._plan = (epoch, order, weights, local)

    def _shard(self, order: Tensor) -> Tensor:
        r = self.num_replicas
        if r == 1:
            return order
        k = order.numel()
        if self.drop_last:
            total = (k // r) * r
            order = order[:total]
        else:
            total = -(-k // r) * r
            if total > k:
                reps = -(-total // k)
                order = order.repeat(reps)[:total]
        return order[self.rank:total:r]

    # ----------------------------------------------------------------- the epoch
    @property
    def weights(self) -> Tensor:
        """Loss weights of the current epoch, ``[N]`` float32 (0 = pruned, a copy)."""
        self._ensure_plan()
        return self._plan[2].clone()

    def weight_of(self, indices: Tensor | Sequence[int]) -> Tensor:
        """Loss weights of ``indices`` in the current epoch (float32, same shape)."""
        self._ensure_plan()
        idx = self._check_indices(indices, "indices")
        return self._plan[2][idx]

    @property
    def kept_indices(self) -> Tensor:
        """All kept windows of the current epoch (every rank's), sorted ``LongTensor``."""
        self._ensure_plan()
        return torch.sort(self._plan[1]).values

    @property
    def num_kept(self) -> int:
        """Number of kept windows of the current epoch over all ranks."""
        self._ensure_plan()
        return int(self._plan[1].numel())

    @property
    def skipped_fraction(self) -> float:
        """Fraction of the ``N`` windows skipped in the current epoch."""
        return 1.0 - self.num_kept / self.num_samples

    def local_indices(self) -> Tensor:
        """This rank's indices of the current epoch in iteration order (a copy)."""
        self._ensure_plan()
        return self._plan[3].clone()

    def __iter__(self) -> Iterator[int]:
        return iter(self.local_indices().tolist())

    def __len__(self) -> int:
        self._ensure_plan()
        return int(self._plan[3].numel())

    # ----------------------------------------------------------------- updates
    def _check_indices(self, indices: Any, name: str) -> Tensor:
        idx = torch.as_tensor(indices)
        if idx.is_floating_point() or idx.dtype == torch.bool or idx.is_complex():
            raise TypeError(f"`{name}` must hold integer window indices, got dtype {idx.dtype}")
        idx = idx.to(torch.long).cpu()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.num_samples):
            raise ValueError(f"`{name}` must lie in [0, {self.num_samples}), got min {int(idx.min())} "
                             f"max {int(idx.max())}")
        return idx

    def update(self, indices: Tensor | Sequence[int], per_sample_loss: Tensor,
               gather: Optional[bool] = None) -> None:
        """Records the latest per-window losses (windows not in ``indices`` keep theirs).

        Args:
            indices (LongTensor): Window indices ``[B]``.
            per_sample_loss (Tensor): Loss of each window ``[B]``, finite and ``>= 0``
                (detached internally).
            gather (bool, optional): All-gather ``(indices, losses)`` over the ranks
                first. (default: ``None``: when :mod:`torch.distributed` is initialised
                with world size > 1)
        """
        idx = self._check_indices(indices, "indices")
        if idx.dim() != 1:
            raise ValueError(f"`indices` must be 1-D, got shape {tuple(idx.shape)}")
        if not isinstance(per_sample_loss, Tensor):
            per_sample_loss = torch.as_tensor(per_sample_loss)
        if per_sample_loss.shape != idx.shape:
            raise ValueError(f"`per_sample_loss` must have shape {tuple(idx.shape)} (one loss per index), "
                             f"got {tuple(per_sample_loss.shape)}")
        loss = per_sample_loss.detach().to("cpu", torch.float64)
        if torch.isnan(loss).any():
            raise ValueError("`per_sample_loss` contains NaN")
        if not torch.isfinite(loss).all():
            raise ValueError("`per_sample_loss` contains infinite values")
        if (loss < 0).any():
            raise ValueError("`per_sample_loss` must be >= 0 (e.g. a per-window MAE)")
        if gather is None:
            gather = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if gather:
            idx, loss = self._all_gather(idx, loss)
        if idx.numel() == 0:
            return
        # duplicates: the last occurrence wins (deterministic)
        uniq, inverse = torch.unique(idx, return_inverse=True)
        last = torch.full((uniq.numel(),), -1, dtype=torch.long)
        last = last.scatter_reduce(0, inverse, torch.arange(idx.numel()), reduce="amax")
        self._loss[uniq] = loss[last]
        self._seen[uniq] = True

    @staticmethod
    def _all_gather(idx: Tensor, loss: Tensor) -> tuple[Tensor, Tensor]:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("`gather=True` needs an initialised torch.distributed process group")
        world = dist.get_world_size()
        n = torch.tensor([idx.numel()], dtype=torch.long)
        sizes = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
        dist.all_gather(sizes, n)
        m = max(int(s) for s in sizes)
        pad_i = torch.zeros(m, dtype=torch.long)
        pad_l = torch.zeros(m, dtype=torch.float64)
        pad_i[:idx.numel()] = idx
        pad_l[:loss.numel()] = loss
        all_i = [torch.zeros(m, dtype=torch.long) for _ in range(world)]
        all_l = [torch.zeros(m, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(all_i, pad_i)
        dist.all_gather(all_l, pad_l)
        idx = torch.cat([a[:int(s)] for a, s in zip(all_i, sizes)])
        loss = torch.cat([a[:int(s)] for a, s in zip(all_l, sizes)])
        return idx, loss

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Loss table, seen mask and epoch (for checkpoints)."""
        return {"loss": self._loss.clone(), "seen": self._seen.clone(), "epoch": self._epoch}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict` output."""
        loss = torch.as_tensor(state["loss"], dtype=torch.float64)
        seen = torch.as_tensor(state["seen"], dtype=torch.bool)
        if loss.shape != (self.num_samples,) or seen.shape != (self.num_samples,):
            raise ValueError(f"`state` tables must have shape [{self.num_samples}]")
        self._loss = loss.clone()
        self._seen = seen.clone()
        self.set_epoch(int(state.get("epoch", 0)))

    def extra_repr(self) -> str:
        mode = "mean" if self.target_ratio is None else f"target_ratio={self.target_ratio:g}"
        return (f"num_samples={self.num_samples}, num_epochs={self.num_epochs}, "
                f"prune_ratio={self.prune_ratio:g}, {mode}, delta={self.delta:g}, seed={self.seed}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


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
            prune_ratio = _check_ratio("target_ratio", target_ratio)
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
            weights of the kept stationary windows (measurements: ``benchmarks/README.md``).
            (default: ``0.2``)
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
        self.num_bins = _check_int("num_bins", num_bins, 1)
        self.stationarity_strength = _check_ratio("stationarity_strength", stationarity_strength)
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
        chunk_size = _check_int("chunk_size", chunk_size, 1)
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


#: Policy names used by the benchmark CLI/JSON.
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
    if policy not in POLICIES:
        raise ValueError(f"`policy` must be one of {POLICIES}, got {policy!r}")
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
