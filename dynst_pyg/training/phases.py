"""The three phases of a DynST run: dense warm-up, mask search and sparse fine-tune.

Each phase is a function of the run's :class:`~dynst_pyg.training.context.RunContext` (what
it builds with) and :class:`~dynst_pyg.training.record.RunRecord` (what earlier phases left);
each runs in the one :class:`~dynst_pyg.training.EpochEngine` and checkpoints every epoch.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict
from typing import Optional

import torch
from torch import Tensor, nn

from ..models.served import ServedModel
from ..selection.mask import SensorMask
from ..selection.schedules import Schedule
from .context import RunContext
from .engine import LoopState, Phase, epoch_seed
from .record import DynSTResult, RunRecord

__all__ = ["schedule_key", "full_network_phase", "dense_warmup", "mask_search", "sparse_finetune"]


def schedule_key(schedule: Schedule) -> str:
    """Everything that defines a schedule (its class and every setting), as a string."""
    return f"{type(schedule).__name__}({sorted((k, repr(v)) for k, v in vars(schedule).items())})"


def full_network_phase(ctx: RunContext, record: RunRecord, name: str, model: ServedModel,
                       opt: torch.optim.Optimizer, sampler, epochs: int,
                       schedule: Optional[Schedule] = None) -> Phase:
    """The :class:`~dynst_pyg.training.Phase` of the warm-up (``schedule=None``) or the search.

    The warm-up stops early on validation when ``warmup_patience`` is set (ending in its best
    validated state). During the search the gate is trained, the paired sensor dropout (when configured) records
    marginal values, and ``schedule`` may change the active set after every step.
    """
    c, train, gate = ctx.config, ctx.windows.train, model.gate
    paired = name == "search" and c.paired_dropout
    drop = torch.Generator()  # draws the paired-dropout supports; reseeded every epoch

    def loss(module: nn.Module, idx: Tensor) -> Tensor:
        x, y = train.batch(idx)
        gate.set_loss_scale(ctx.engine.loss_scale)
        if paired:
            on, off, probe = ctx.scorer.supports(gate.active, drop)
            per_on, node_on = ctx.node_loss(module(x, support=on), y, gate)
            per_off, node_off = ctx.node_loss(module(x, support=off), y, gate)
            ctx.scorer.record(gate, node_on, node_off, probe)
            return 0.5 * (per_on + per_off)
        nodes = gate.active.nonzero().view(-1) if c.target == "kept" else None
        return ctx.loss(module(x), y, nodes)

    def on_epoch_start(epoch: int) -> None:
        drop.manual_seed(epoch_seed(c.seed, name, epoch) + 17)

    def after_step(t_first: int, t_last: int, total: int) -> None:
        ctx.dist.average_(gate.statistics())
        if schedule is None:
            return
        for t in range(t_first, t_last + 1):
            new = schedule.step(t, total, gate.importance(), gate.regrow_score.clone(), gate.active.clone())
            if new is not None:
                ctx.set_active(gate, new)

    def on_epoch_end(rec: dict, loop: LoopState) -> None:
        record.log_epoch(rec)
        ctx.save(name, record, model, opt, sampler, loop)

    def penalty() -> Tensor:
        return c.gate_l1 * gate.l1_penalty()

    val = ctx.windows.val
    return Phase(name, model, opt, epochs, len(train), loss,
                 validate=lambda: ctx.evaluate_full(model, val, ctx.val_windows(val)), sampler=sampler,
                 penalty=penalty if name == "search" and c.gate_l1 > 0 else None, after_step=after_step,
                 on_epoch_start=on_epoch_start, on_epoch_end=on_epoch_end,
                 record=lambda: {"sparsity": gate.sparsity},
                 clip_params=list(model.backbone.parameters()) + [gate.gate],
                 patience=c.warmup_patience if name == "warmup" else None)


def dense_warmup(ctx: RunContext, record: RunRecord) -> dict:
    """Trains the dense model for ``warmup_epochs``; returns its state (reused by every selector)."""
    if record.dense_state is not None:
        return record.dense_state
    c = ctx.config
    ck = ctx.checkpoints.load()
    if ck is not None and ck["dense_state"] is not None:
        record.load_state_dict(ck)
        return record.dense_state
    torch.manual_seed(c.seed)
    model = ctx.full_model()
    model.gate.gate.requires_grad_(False)
    opt = ctx.optimizer(model, train_gate=False)
    sampler = ctx.sampler(ctx.windows.train, c.warmup_epochs)
    loop = ctx.resume(ck, record, "warmup", model, opt, sampler, LoopState())
    ctx.engine.run(full_network_phase(ctx, record, "warmup", model, opt, sampler, c.warmup_epochs), loop)
    return record.finish_warmup(model)


def mask_search(ctx: RunContext, record: RunRecord, schedule: Schedule) -> SensorMask:
    """Warm-up (if not done) and the mask search of ``schedule``; returns the selected mask."""
    c = ctx.config
    key = schedule_key(schedule)
    ck = ctx.checkpoints.load()
    if ck is not None and ck["search_key"] not in (None, key):
        ck = None  # the checkpoint holds another schedule's search: this one starts from the dense state
    if ck is not None and ck["search_mask"] is not None:
        record.load_state_dict(ck)
        return record.search_mask
    record.start_search(key)
    model = ctx.full_model(dense_warmup(ctx, record))
    gate = model.gate
    gate.gate.requires_grad_(True)
    opt = ctx.optimizer(model, train_gate=True)
    sampler = ctx.sampler(ctx.windows.train, c.search_epochs)
    loop = ctx.resume(ck, record, "search", model, opt, sampler, LoopState())
    ctx.update_reconstruction(gate)
    if c.search_epochs == 0:
        # no search steps: apply the schedule once on the warm-up statistics
        new = schedule.step(0, 1, gate.importance(), gate.regrow_score, gate.active.clone())
        if new is not None:
            ctx.set_active(gate, new)
    else:
        ctx.engine.run(full_network_phase(ctx, record, "search", model, opt, sampler, c.search_epochs, schedule),
                       loop)
    if not schedule.reached_target(gate.active.cpu()):
        # the schedule must end on target (e.g. a very short search): prune on the final scores
        ctx.set_active(gate, schedule.prune_to(schedule.target_kept(ctx.num_nodes), gate.importance().cpu(),
                                               gate.active.cpu()))
    gate.gate.requires_grad_(False)
    ctx.update_reconstruction(gate)
    mask = SensorMask.from_bool(
        gate.active.cpu(), scores=gate.importance().cpu(), sensor_ids=ctx.splits.dataset.sensor_id,
        method=f"dynst-{schedule.name}", meta={"schedule": repr(schedule), "target": c.target,
                                               "regrow_score": gate.regrow_score.cpu().tolist(),
                                               **({"constraints": schedule.constraints.to_dict()}
                                                  if schedule.constraints is not None else {})})
    record.finish_search(model, mask)
    ctx.save("search", record, model, opt, sampler, LoopState(c.search_epochs))
    return mask


def sparse_finetune(ctx: RunContext, record: RunRecord, mask: SensorMask, state: dict,
                    checkpoint: bool = True) -> DynSTResult:
    """Fine-tunes the model served on ``mask``'s sub-graph from the full-model ``state``.

    Early stopping on validation (``patience``) restores the best epoch; the result carries
    validation and test metrics of that model.
    """
    c = ctx.config
    t0 = time.perf_counter()
    sub = ctx.sub_splits(mask)
    served = ctx.served_model(mask, sub, state)
    served.gate.track_statistics(False)
    served.gate.gate.requires_grad_(True)
    opt = ctx.optimizer(served, train_gate=True, lr=c.finetune_lr)
    sampler = ctx.sampler(sub.train, c.finetune_epochs)
    loop = LoopState(best_state=copy.deepcopy(served.state_dict()))
    ck = ctx.checkpoints.load() if checkpoint else None
    loop = ctx.resume(ck, record, "finetune", served, opt, sampler, loop, mask)

    def validate() -> dict:
        return ctx.evaluate_served(served, sub, "val", ctx.val_windows(sub.val))

    if c.finetune_validate_start and loop.next_epoch == 0 and math.isinf(loop.best):
        # the start is epoch 0 of the early stopping: served unless a fine-tune epoch beats it
        loop.best = float(validate()["mae"])
    full_train = ctx.windows.train

    def loss(module: nn.Module, idx: Tensor) -> Tensor:
        xk, yk = sub.train.batch(idx)
        y = full_train.batch(idx)[1] if served.lift is not None else yk
        return ctx.loss(module(xk), y)

    def on_epoch_end(rec: dict, lp: LoopState) -> None:
        record.log_epoch(rec)
        if checkpoint:
            ctx.save("finetune", record, served, opt, sampler, lp, mask)

    phase = Phase("finetune", served, opt, c.finetune_epochs, len(sub.train), loss,
                  validate=validate,
                  sampler=sampler, on_epoch_end=on_epoch_end, record=lambda: {"sparsity": mask.sparsity},
                  patience=c.patience)
    ctx.engine.run(phase, loop)
    served.eval()
    val = ctx.evaluate_served(served, sub, "val")
    test = ctx.evaluate_served(served, sub, "test")
    return DynSTResult(mask=mask, model=served, history=list(record.history), val_metrics=val, test_metrics=test,
                       config=asdict(c), train_seconds=time.perf_counter() - t0,
                       samples_seen=record.samples_seen, sub_splits=sub)
