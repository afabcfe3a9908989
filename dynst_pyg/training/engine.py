"""The one epoch loop every training phase runs.

:class:`EpochEngine` owns what all phases share — the device, mixed precision, data
parallelism over :mod:`torch.distributed`, the batch order (plain shuffling or a
:mod:`~dynst_pyg.sampling` policy with its loss weights), gradient clipping, a progress
bar, early stopping and a per-epoch hook for checkpoints — and a :class:`Phase` says what
is particular to one phase: the module and optimiser, the per-sample loss of a batch, an
optional penalty, what to do after each optimisation step and how to validate.

Batches are *global*: ``batch_size`` windows are drawn per step (from a permutation seeded
with ``(seed, phase, epoch)``, or from the sampler) and every rank takes its shard
``idx[rank::world_size]`` of each. With equal shards, the gradient that
:class:`~torch.nn.parallel.DistributedDataParallel` averages is the gradient of the global
batch, so one process with batch ``B`` and two with ``B / 2`` each take the same steps.

Progress inside a phase is counted on a fixed grid of ``epochs * S`` steps, ``S`` being the
steps of a full epoch. When a sampler skips windows an epoch runs fewer than ``S`` steps,
and each real step then covers several grid steps (:meth:`Phase.after_step` gets the
range), so schedules keyed on the step still fire every round.
"""

from __future__ import annotations

import copy
import hashlib
import datetime
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["PRECISIONS", "DEFAULT_DDP_TIMEOUT_S", "ddp_timeout_s", "autocast_for", "DistContext", "EpochEngine", "LoopState", "Phase", "epoch_seed", "init_distributed",
           "resolve_device"]

#: Values accepted by ``precision``: full fp32, bfloat16 autocast, float16 autocast + gradient scaling.
PRECISIONS = ("32", "bf16", "16")

_PHASE_IDS = {"warmup": 1, "search": 2, "finetune": 3}


def autocast_for(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (a no-op for ``"32"``)."""
    dtype = {"bf16": torch.bfloat16, "16": torch.float16}.get(precision)
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def epoch_seed(seed: int, phase: str, epoch: int) -> int:
    """The seed of epoch ``epoch`` of ``phase`` (dropout and batch order of that epoch)."""
    pid = _PHASE_IDS.get(phase)
    if pid is None:
        pid = int(hashlib.sha256(phase.encode()).hexdigest()[:6], 16) % 1000 + 10
    return (int(seed) * 1_000_003 + pid * 10_007 + int(epoch)) % (2**31)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` of a ``device`` setting.

    Args:
        device (str or torch.device, optional): ``"auto"`` (CUDA when available, else CPU),
            ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (default: ``"auto"``).
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if d.type not in ("cpu", "cuda"):
        raise ValueError(f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"`device` is {device!r} but CUDA is not available on this machine "
                             "(use 'cpu' or 'auto')")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(f"`device` is {device!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return d


#: Seconds a collective operation waits for the other processes before it fails
#: (``init_distributed(timeout_s=...)``, else the environment variable ``DYNST_DDP_TIMEOUT``).
DEFAULT_DDP_TIMEOUT_S = 300.0


def ddp_timeout_s(timeout_s: Optional[float] = None) -> float:
    """The collective timeout in force: ``timeout_s``, else ``$DYNST_DDP_TIMEOUT``, else 300 s."""
    if timeout_s is None:
        env = os.environ.get("DYNST_DDP_TIMEOUT")
        try:
            timeout_s = float(env) if env else DEFAULT_DDP_TIMEOUT_S
        except ValueError:
            raise ValueError(f"DYNST_DDP_TIMEOUT must be a number of seconds, got {env!r}") from None
    if not timeout_s > 0:
        raise ValueError(f"the DDP timeout must be > 0 seconds, got {timeout_s!r}")
    return float(timeout_s)


def init_distributed(device: str | torch.device | None = "auto", timeout_s: Optional[float] = None) -> torch.device:
    """Joins the process group that ``torchrun`` describes in the environment, if any.

    With ``WORLD_SIZE > 1`` in the environment and no process group yet, initialises one
    (``nccl`` on CUDA, ``gloo`` on CPU) and, on CUDA, pins this process to GPU
    ``LOCAL_RANK``. Every collective of the group fails after :func:`ddp_timeout_s` seconds
    without the other processes (a process that froze stops the run instead of hanging it).
    Returns the device this process should use.
    """
    d = resolve_device(device)
    timeout = datetime.timedelta(seconds=ddp_timeout_s(timeout_s))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if d.type == "cuda":
            d = torch.device("cuda", local if d.index is None else d.index)
            torch.cuda.set_device(d)
        dist.init_process_group("nccl" if d.type == "cuda" else "gloo", timeout=timeout)
    elif d.type == "cuda" and d.index is None and dist.is_available() and dist.is_initialized():
        d = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return d


@dataclass(frozen=True)
class DistContext:
    """This process's place in a :mod:`torch.distributed` run (rank 0 of 1 without one).

    Args:
        rank (int, optional): Rank of this process (default: ``0``).
        world_size (int, optional): Number of processes (default: ``1``).
    """

    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> "DistContext":
        """The context of the initialised process group, or a single process."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    @torch.no_grad()
    def average_(self, tensors: Sequence[Tensor]) -> None:
        """Replaces each floating tensor by its mean over the ranks (in place)."""
        if not self.is_distributed:
            return
        for t in tensors:
            if t.is_floating_point():
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
                t.div_(self.world_size)

    def sum(self, values: Sequence[float]) -> list[float]:
        """Sums a few numbers over the ranks."""
        if not self.is_distributed:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().tolist()

    def assert_same(self, tensor: Tensor, what: str) -> None:
        """Fails on every rank when ``tensor`` differs between ranks (compared by checksum)."""
        if not self.is_distributed:
            return
        digest = hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).digest()
        mine = torch.tensor([int.from_bytes(digest[:7], "little")], dtype=torch.long)
        if dist.get_backend() == "nccl":
            mine = mine.cuda()
        allv = [torch.zeros_like(mine) for _ in range(self.world_size)]
        dist.all_gather(allv, mine)
        vals = [int(v.item()) for v in allv]
        if len(set(vals)) != 1:
            raise RuntimeError(f"the ranks disagree on the {what} (checksums {vals}); every rank must take the same "
                               "decision: check that all ranks run the same configuration and data")


@dataclass
class LoopState:
    """Where a phase's loop stands (checkpointed after every epoch).

    Attributes:
        next_epoch (int): First epoch still to run.
        best (float): Best validation MAE so far (early stopping).
        best_state (dict, optional): Module state at ``best``.
        bad (int): Epochs since ``best`` improved.
    """

    next_epoch: int = 0
    best: float = math.inf
    best_state: Optional[dict] = None
    bad: int = 0

    def state_dict(self) -> dict:
        return {"next_epoch": self.next_epoch, "best": self.best, "best_state": self.best_state, "bad": self.bad}

    @classmethod
    def from_state_dict(cls, state: dict) -> "LoopState":
        return cls(int(state["next_epoch"]), float(state["best"]), state["best_state"], int(state["bad"]))


@dataclass
class Phase:
    """What is particular to one training phase.

    Args:
        name (str): ``"warmup"``, ``"search"``, ``"finetune"`` or another name (seeds and messages).
        module (nn.Module): The module trained (wrapped in DDP when distributed); its state is
            what early stopping keeps.
        optimizer (torch.optim.Optimizer): Its optimiser.
        epochs (int): Epochs of the phase.
        num_windows (int): Training windows (batches draw indices in ``0 .. num_windows - 1``).
        loss (callable): ``(module, idx) -> [b]`` per-sample loss of the local windows ``idx``,
            computed with ``module`` (the DDP wrapper when distributed).
        validate (callable, optional): ``() -> dict`` with at least ``"mae"``, after every epoch
            (default: none; the record's ``val_mae`` is then NaN).
        sampler (PruningSampler, optional): Batch order and loss weights (built with
            ``num_replicas=1``: the engine shards) (default: plain shuffling).
        penalty (callable, optional): ``() -> scalar`` added to the loss (default: none).
        after_step (callable, optional): ``(t_first, t_last, total)`` after every optimiser
            step: the grid steps this step covers (default: none).
        on_epoch_start (callable, optional): ``(epoch) -> None`` (default: none).
        on_epoch_end (callable, optional): ``(record, loop_state) -> None`` after validation,
            e.g. to append history and checkpoint (default: none).
        record (callable, optional): ``() -> dict`` extra fields of the epoch record (default: none).
        patience (int, optional): Early stopping on validation MAE; the best state is
            restored at the end (default: :obj:`None`, no early stopping).
        clip_params (list of Parameter, optional): Parameters whose gradient norm is clipped
            (default: all of ``module``'s).
    """

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    num_windows: int
    loss: Callable[[nn.Module, Tensor], Tensor]
    validate: Optional[Callable[[], dict]] = None
    sampler: Any = None
    penalty: Optional[Callable[[], Tensor]] = None
    after_step: Optional[Callable[[int, int, int], None]] = None
    on_epoch_start: Optional[Callable[[int], None]] = None
    on_epoch_end: Optional[Callable[[dict, LoopState], None]] = None
    record: Optional[Callable[[], dict]] = None
    patience: Optional[int] = None
    clip_params: Optional[list] = None


class _Bar:
    """A tqdm bar on a terminal, nothing otherwise (logs get no carriage-return updates)."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def step(self, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(**postfix, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class EpochEngine:
    """The epoch loop shared by every phase.

    Args:
        device (torch.device, optional): Where modules and batches live (default: CPU).
        precision (str, optional): ``"32"``, ``"bf16"`` or ``"16"`` (autocast; ``"16"`` also
            scales the loss) (default: ``"32"``).
        batch_size (int, optional): Global batch (split over the ranks) (default: ``64``).
        max_batches (int, optional): Cap on steps per epoch (default: all).
        clip_grad (float, optional): Gradient-norm clip, ``0`` for none (default: ``5.0``).
        seed (int, optional): Seed of the batch orders (default: ``0``).
        progress (bool, optional): Bars on a terminal and one line per epoch (default: :obj:`True`).
        dist (DistContext, optional): The process group (default: :meth:`DistContext.current`).
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "32"
    batch_size: int = 64
    max_batches: Optional[int] = None
    clip_grad: float = 5.0
    seed: int = 0
    progress: bool = True
    dist: DistContext = field(default_factory=DistContext.current)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size < self.dist.world_size:
            raise ValueError(f"`batch_size` ({self.batch_size}) must be at least the number of processes "
                             f"({self.dist.world_size}): it is the global batch, split over the ranks")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "16")

    # ------------------------------------------------------------------ batches
    def global_batches(self, num_windows: int, seed: int, sampler: Any = None) -> list[Tensor]:
        """The epoch's global batches: from ``sampler`` (after its ``set_epoch``) or a seeded permutation."""
        if sampler is not None:
            from ..sampling import iter_batches

            batches = list(iter_batches(sampler, self.batch_size))
        else:
            perm = torch.randperm(num_windows, generator=torch.Generator().manual_seed(seed))
            batches = list(perm.split(self.batch_size))
        return batches if self.max_batches is None else batches[: self.max_batches]

    def shard(self, idx: Tensor) -> Tensor:
        """This rank's part of a global batch."""
        return idx[self.dist.rank::self.dist.world_size] if self.dist.is_distributed else idx

    def steps_per_epoch(self, num_windows: int) -> int:
        """Steps of a full (unpruned) epoch: the unit of the progress grid."""
        full = math.ceil(num_windows / self.batch_size)
        return full if self.max_batches is None else min(full, self.max_batches)

    def autocast(self):
        """The autocast context of ``precision`` (a no-op for ``"32"``)."""
        return autocast_for(self.device, self.precision)

    @property
    def loss_scale(self) -> float:
        """Factor by which gradients are currently scaled (``1`` unless ``precision="16"``)."""
        return float(self.scaler.get_scale()) if self.scaler.is_enabled() else 1.0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` inside :class:`~torch.nn.parallel.DistributedDataParallel` when distributed."""
        if not self.dist.is_distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # ------------------------------------------------------------------ the loop
    def run(self, phase: Phase, state: Optional[LoopState] = None) -> LoopState:
        """Runs the remaining epochs of ``phase`` from ``state``; returns the final loop state.

        With ``phase.patience`` the module ends in its best validated state.
        """
        state = state or LoopState()
        if phase.patience is not None and phase.validate is None:
            raise ValueError(f"phase {phase.name!r}: early stopping (`patience`) needs `validate`")
        module = self.wrap(phase.module)
        params = phase.clip_params if phase.clip_params is not None else list(phase.module.parameters())
        grid = self.steps_per_epoch(phase.num_windows)
        total = max(1, phase.epochs * grid)
        show = self.progress and self.dist.is_main
        bar = _Bar(max(0, phase.epochs - state.next_epoch) * grid, phase.name, show)
        try:
            for epoch in range(state.next_epoch, phase.epochs):
                seed = epoch_seed(self.seed, phase.name, epoch)
                torch.manual_seed(seed)
                if phase.sampler is not None:
                    phase.sampler.set_epoch(epoch)
                if phase.on_epoch_start is not None:
                    phase.on_epoch_start(epoch)
                phase.module.train()
                batches = self.global_batches(phase.num_windows, seed, phase.sampler)
                loss_sum, steps, seen = 0.0, 0, 0
                t_done = epoch * grid - 1
                for i, gidx in enumerate(batches):
                    idx = self.shard(gidx)
                    per = self._step(phase, module, params, idx)
                    loss_sum += float(per.detach().float().mean())
                    steps += 1
                    seen += idx.numel()
                    if phase.after_step is not None:
                        t_last = epoch * grid + math.ceil((i + 1) * grid / len(batches)) - 1
                        phase.after_step(t_done + 1, t_last, total)
                        t_done = t_last
                    bar.step(loss=f"{loss_sum / steps:.3f}")
                loss_sum, steps, seen = self.dist.sum([loss_sum, steps, seen])
                # batch-norm running statistics saw only each rank's shard: average them, so every
                # rank validates (and checkpoints) the same model
                self.dist.average_([b for b in phase.module.buffers() if b is not None])
                val = phase.validate() if phase.validate is not None else {"mae": math.nan}
                rec = {"phase": phase.name, "epoch": epoch, "train_mae": loss_sum / max(1.0, steps),
                       "val_mae": val["mae"], "samples": int(seen), **(phase.record() if phase.record else {})}
                state.next_epoch = epoch + 1
                stop = False
                if phase.patience is not None:
                    if val["mae"] < state.best - 1e-6:
                        state.best, state.bad = val["mae"], 0
                        state.best_state = copy.deepcopy(phase.module.state_dict())
                    else:
                        state.bad += 1
                    stop = state.bad >= phase.patience
                if show:
                    extra = "".join(f", {k} {v:.2f}" for k, v in rec.items()
                                    if k not in ("phase", "epoch", "train_mae", "val_mae", "samples")
                                    and isinstance(v, float))
                    print(f"[dynst] {phase.name} epoch {epoch + 1}/{phase.epochs}: train MAE {rec['train_mae']:.3f}, "
                          f"val MAE {val['mae']:.3f}{extra}", file=sys.stderr, flush=True)
                if phase.on_epoch_end is not None:
                    phase.on_epoch_end(rec, state)
                if stop:
                    break
        finally:
            bar.close()
        if phase.patience is not None and state.best_state is not None:
            phase.module.load_state_dict(state.best_state)
        return state

    def _step(self, phase: Phase, module: nn.Module, params: list, idx: Tensor) -> Tensor:
        opt = phase.optimizer
        with self.autocast():
            per = phase.loss(module, idx)
        per = per.float()
        if phase.sampler is not None:
            loss = (per * phase.sampler.weight_of(idx).to(per.device, per.dtype)).mean()
        else:
            loss = per.mean()
        if phase.penalty is not None:
            loss = loss + phase.penalty()
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.clip_grad:
            self.scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, self.clip_grad)
        self.scaler.step(opt)
        self.scaler.update()
        if phase.sampler is not None:
            phase.sampler.update(idx, per.detach())
        return per
