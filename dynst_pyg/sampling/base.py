r"""The interface every sample-pruning policy shares: :class:`PruningSampler`, its schedule and its DDP sharding.

A policy is a :class:`torch.utils.data.Sampler` over the ``N`` training windows of a
:class:`~dynst_pyg.data.WindowDataset`:

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
to ``s ** 0.75`` and must be ``>= s``. Kept windows under the threshold get the loss
weight ``1 / (1 - r)``. Because epoch 0 and the annealing epochs prune nothing, an
*overall* skip fraction over all ``E`` epochs needs a larger per-epoch fraction:
:func:`epoch_skip_ratio` does that conversion
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
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler

from .._checks import check_fraction, check_nonnegative_int, check_positive_int

__all__ = ["PruningSampler", "iter_batches", "epoch_skip_ratio"]

_MASK64 = (1 << 63) - 1


def _mix_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for ``(seed, epoch)`` (splitmix64-style mixing, no global state)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & ((1 << 64) - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return (z ^ (z >> 31)) & _MASK64


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
    s = check_fraction(overall_skip, "overall_skip")
    e = check_positive_int(num_epochs, "num_epochs")
    d = check_fraction(delta, "delta", low_open=True, high_open=False)
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
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(sampler, PruningSampler):
        order = sampler.local_indices()
    else:
        order = torch.as_tensor(list(iter(sampler)), dtype=torch.long)
    n = order.numel()
    stop = (n // batch_size) * batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]



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

    #: The policy's name in :data:`~dynst_pyg.sampling.POLICIES` (written to reports and JSON).
    policy_name: str = "base"

    def __init__(self, num_samples: int, num_epochs: int, *, prune_ratio: Optional[float] = None,
                 target_ratio: Optional[float] = None, delta: float = 0.875, seed: int = 0,
                 shuffle: bool = True, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 drop_last: bool = False, initial_loss: float = 1.0) -> None:
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.num_epochs = check_positive_int(num_epochs, "num_epochs")
        self.delta = check_fraction(delta, "delta", low_open=True, high_open=False)
        self.target_ratio = check_fraction(target_ratio, "target_ratio", allow_none=True)
        if prune_ratio is None:
            prune_ratio = 0.5 if self.target_ratio is None else self.target_ratio ** 0.75
        self.prune_ratio = check_fraction(prune_ratio, "prune_ratio")
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
        self.num_replicas = check_positive_int(num_replicas, "num_replicas")
        self.rank = check_nonnegative_int(rank, "rank")
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
        self._epoch = check_nonnegative_int(epoch, "epoch")
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
