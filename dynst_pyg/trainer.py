"""The DynST run: dense warm-up -> mask search -> sparse fine-tune on the physical sub-graph.

1. **Dense warm-up** (``warmup_epochs``): the backbone trains on all ``N`` sensors; the
   :class:`~dynst_pyg.gate.SensorGate` is fixed at 1 but already accumulates saliency.
2. **Mask search** (``search_epochs``): the gate is trainable, every batch runs under
   paired sensor dropout (:class:`~dynst_pyg.scoring.PairedDropoutScorer`), the
   reconstruction value (:class:`~dynst_pyg.reconstruction.ReconstructionValue`) scores the
   active set, and a :mod:`~dynst_pyg.schedules` policy turns the gate's importance / regrow
   scores into the active set after every step. Pruned sensors' inputs are exactly 0; the
   backbone still runs on the full graph during the search.
3. **Sparse fine-tune** (``finetune_epochs``, early stopping on validation): the selected
   sensors are *removed* with :class:`~dynst_pyg.transforms.DynSTMask`, and the backbone
   (plus, for ``target="all"``, a :class:`~dynst_pyg.models.lift.LiftHead` that maps its
   output to all ``N`` sensors) trains on the ``K``-node sub-graph with ``node_index`` = the
   kept ids. Validation and test metrics are those of this served model.

Every phase runs in the one :class:`~dynst_pyg.engine.EpochEngine` (device, mixed
precision, DDP under ``torchrun``, sampler weights, clipping, progress, early stopping) and
checkpoints through a :class:`~dynst_pyg.checkpoint.Checkpointer` stamped with the run's
fingerprint. Baseline selectors skip step 2: :meth:`DynSTTrainer.finetune` takes any
:class:`~dynst_pyg.mask.SensorMask` and runs step 3 from the same dense warm-up.

Determinism: every epoch reseeds torch's global generator from ``(seed, phase, epoch)``
(dropout) and draws batches and dropout supports from generators of its own, so a run, and
a run resumed from a checkpoint, repeat exactly on the CPU.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointMismatchError, Checkpointer, run_fingerprint
from .config import DynSTConfig
from .datasets.windows import ForecastSplits, WindowDataset
from .engine import DistContext, EpochEngine, LoopState, Phase, epoch_seed, resolve_device
from .gate import SensorGate
from .mask import SensorMask
from .metrics import forecast_metrics, masked_mae, valid_mask
from .schedules import Schedule, make_schedule
from .scoring import PairedDropoutScorer

__all__ = ["CheckpointMismatchError", "DynSTConfig", "DynSTResult", "DynSTTrainer", "ServedModel",
           "measure_inference_speedup"]

ModelFactory = Callable[[], nn.Module]

@dataclass
class DynSTResult:
    """What a run returns: the mask, the model as served on ``K`` nodes, history and metrics."""

    mask: SensorMask
    model: "ServedModel"
    history: list
    val_metrics: dict
    test_metrics: dict
    config: dict
    train_seconds: float = 0.0
    samples_seen: int = 0
    sub_splits: Optional[ForecastSplits] = None

    def summary(self) -> str:
        m = self.test_metrics
        return (f"{self.mask.method}: kept {self.mask.num_kept}/{self.mask.num_nodes} "
                f"(sparsity {self.mask.sparsity:.2f}), target={self.config['target']}: "
                f"test MAE {m['mae']:.3f} (h3 {m['mae_h3']:.3f}, h6 {m['mae_h6']:.3f}, h12 {m['mae_h12']:.3f})")


class ServedModel(nn.Module):
    """Gate + backbone on a sensor subset (+ lift head): the pruned forecaster as deployed.

    ``forward(x [B, T_in, K, F])`` returns normalised forecasts ``[B, T_out, K, F_out]``
    (no lift head, ``target="kept"``) or ``[B, T_out, N, F_out]`` (with one, ``target="all"``).
    With ``keep=None`` it is the full-network model that the warm-up and the search train.

    Args:
        gate (SensorGate): The per-sensor gate of the full network.
        backbone (nn.Module): A backbone following the model interface.
        keep (LongTensor, optional): Original ids of the sensors present (default: all).
        edge_index (LongTensor): Graph of the sensors present.
        edge_weight (Tensor): Its weights.
        lift (nn.Module, optional): Lift head to all ``N`` sensors (default: none).
    """

    def __init__(self, gate: SensorGate, backbone: nn.Module, keep: Optional[Tensor], edge_index: Tensor,
                 edge_weight: Tensor, lift: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.gate = gate
        self.backbone = backbone
        self.lift = lift
        self.register_buffer("keep", None if keep is None else keep.clone())
        self.register_buffer("edge_index", edge_index.clone())
        self.register_buffer("edge_weight", edge_weight.clone())

    @property
    def target(self) -> str:
        return "kept" if self.lift is None else "all"

    def forward(self, x: Tensor, support: Optional[Tensor] = None) -> Tensor:
        """``support`` (bool ``[N]``) replaces the gate's active set for this call (paired dropout)."""
        h = self.gate(x, node_index=self.keep, support=support)
        out = self.backbone(h, self.edge_index, self.edge_weight, node_index=self.keep)
        if self.lift is not None:
            out = self.lift(out, self.keep)
        return out


class DynSTTrainer:
    """Runs DynST (or a baseline mask) end to end on one dataset.

    Args:
        model_factory (callable): Returns a fresh backbone that follows the model interface
            (``forward(x, edge_index, edge_weight=None, node_index=None)``), built for the
            *full* network (``num_nodes = N``).
        splits (ForecastSplits): The full-network windows (``dataset.prepare(...)``).
        config (DynSTConfig, optional): Hyperparameters (default: ``DynSTConfig()``).
        lift_factory (callable, optional): ``(num_nodes, edge_index, edge_weight, out_features)``
            -> lift head for ``target="all"`` (default: :class:`~dynst_pyg.models.lift.LiftHead`).
        fingerprint_extra (dict, optional): More fields that identify the run in its
            checkpoints, e.g. the baseline selector (default: none).

    Under ``torchrun`` (an initialised :mod:`torch.distributed` process group) batches are
    sharded over the ranks, the statistics the mask is decided from are averaged after every
    step, every rank checks that it holds the same active set, and rank 0 alone writes.

    Example:
        >>> from dynst_pyg.models import GraphWaveNet
        >>> splits = load_los_loop().prepare()
        >>> trainer = DynSTTrainer(lambda: GraphWaveNet(207, profile="small"), splits,
        ...                        DynSTConfig(sparsity=0.5, schedule="dropregrow"))
        >>> result = trainer.fit()
        >>> result.mask.save("mask.json")
    """

    def __init__(self, model_factory: ModelFactory, splits: ForecastSplits, config: Optional[DynSTConfig] = None,
                 lift_factory: Optional[Callable[..., nn.Module]] = None,
                 fingerprint_extra: Optional[dict] = None) -> None:
        c = config or DynSTConfig()
        c.validate(splits.num_nodes)
        self.config = c
        self.make_schedule().target_kept(splits.num_nodes)  # infeasible targets fail before any training
        self.model_factory = model_factory
        self.lift_factory = lift_factory
        self.splits = splits
        self.N = splits.num_nodes
        self.device = resolve_device(c.device)
        self.dist = DistContext.current()
        #: the full-network windows on the run's device (one copy of the series, sliced per batch)
        self.windows = splits.to(self.device)
        self.engine = EpochEngine(self.device, c.precision, c.batch_size, c.max_batches, c.clip_grad, c.seed,
                                  c.progress, self.dist)
        self.checkpoints = Checkpointer(c.checkpoint_dir, run_fingerprint(c, splits, model_factory(),
                                                                          fingerprint_extra), self.dist)
        self.scorer = PairedDropoutScorer(splits.edge_index, self.N, c.dropout_keep, c.target,
                                          c.marginal_scope).to(self.device)
        self.recon = None  # ReconstructionValue, built on first use (its moments cost O(T N^2))
        self.history: list[dict] = []
        self.samples_seen = 0
        self._dense_state: Optional[dict] = None
        self._search_state: Optional[dict] = None
        self._search_mask: Optional[SensorMask] = None
        self._search_key: Optional[str] = None  # which schedule the search state belongs to

    # ------------------------------------------------------------------ building blocks
    @property
    def uses_reconstruction(self) -> bool:
        """Whether the search's importance includes the reconstruction value (``target="all"``)."""
        c = self.config
        return c.target == "all" and c.recon_weight > 0

    def _new_gate(self) -> SensorGate:
        c = self.config
        return SensorGate(self.N, ema=c.ema, gate_weight=c.gate_weight, marginal_weight=c.marginal_weight,
                          recon_weight=c.recon_weight if self.uses_reconstruction else 0.0)

    def full_model(self, state: Optional[dict] = None) -> ServedModel:
        """Gate + fresh backbone on the full network (on the run's device), optionally loaded from ``state``."""
        sp = self.splits
        model = ServedModel(self._new_gate(), self.model_factory(), None, sp.edge_index, sp.edge_weight)
        if state is not None:
            model.load_state_dict(state)
        return model.to(self.device)

    def reconstruction(self):
        """The :class:`~dynst_pyg.reconstruction.ReconstructionValue` of the training series."""
        if self.recon is None:
            from .reconstruction import ReconstructionValue

            c = self.config
            hs = tuple(h for h in c.recon_horizons if h <= self.splits.t_out) or (0,)
            series, valid = self.splits.train_series()  # training steps only; gaps never enter the moments
            self.recon = ReconstructionValue(series, valid, horizons=hs, ridge=c.lift_ridge,
                                             edge_index=self.splits.edge_index, method=c.recon_method)
        return self.recon

    def _update_recon(self, gate: SensorGate) -> None:
        """Sets ``gate.recon`` for the current active set (the value object caches per set)."""
        if self.uses_reconstruction:
            gate.recon = self.reconstruction().scores(gate.active.cpu()).to(gate.active.device)

    def new_lift(self, keep: Tensor, fit: bool = True) -> nn.Module:
        """The lift head for the kept set ``keep``; with ``lift="ridge"`` bound to it and (``fit``)
        fitted on the normalised training series (training steps only)."""
        sp, c = self.splits, self.config
        if self.lift_factory is not None:
            return self.lift_factory(self.N, sp.edge_index, sp.edge_weight, sp.out_features)
        from .models.lift import LiftHead

        if c.lift == "harmonic":
            return LiftHead(self.N, sp.edge_index, sp.edge_weight, features=sp.out_features)
        head = LiftHead(self.N, sp.edge_index, sp.edge_weight, features=sp.out_features, node_index=keep)
        if fit:
            series, valid = self.splits.train_series()
            head.fit_ridge(series, ridge=c.lift_ridge, valid=valid)
        return head

    def _raw(self, pred_norm: Tensor) -> Tensor:
        """Forecasts on the original scale, in float32 (metrics are never computed in half precision)."""
        return self.splits.scaler.inverse_transform(pred_norm.float(), features=self.splits.target_features)

    def _raw_loss(self, pred: Tensor, y: Tensor, nodes: Optional[Tensor] = None) -> Tensor:
        """Per-sample masked MAE of original-scale forecasts ``pred`` (over ``nodes`` if given)."""
        if nodes is not None:
            pred, y = pred[:, :, nodes], y[:, :, nodes]
        return masked_mae(pred, y, self.splits.null_value, reduction="none")

    def _loss(self, pred_norm: Tensor, y: Tensor, nodes: Optional[Tensor] = None) -> Tensor:
        """Per-sample masked MAE on the original scale, in float32."""
        return self._raw_loss(self._raw(pred_norm), y, nodes)

    def _node_loss(self, pred_norm: Tensor, y: Tensor, gate: SensorGate) -> tuple[Tensor, Tensor]:
        """Per-sample ``[B]`` loss of the objective and per-node ``[N]`` masked MAE on the raw scale."""
        pred = self._raw(pred_norm)
        m = valid_mask(y, self.splits.null_value)
        err = torch.where(m, (pred - y).abs(), torch.zeros_like(pred))
        per_node = err.sum(dim=(0, 1, 3)) / m.sum(dim=(0, 1, 3)).clamp_min(1)
        nodes = gate.active.nonzero().view(-1) if self.config.target == "kept" else None
        return self._raw_loss(pred, y, nodes), per_node

    def _sampler(self, windows: WindowDataset, epochs: int):
        c = self.config
        if c.sample_pruning in (None, "none", "full") or epochs == 0:
            return None
        from .sampling import make_sampler

        kw = dict(c.sample_pruning_kwargs)
        kw.setdefault("seed", c.seed)
        # the engine shards global batches itself, so the sampler serves one (global) order
        kw.update(num_replicas=1, rank=0)
        # the complexity score uses the graph the windows live on (the sub-graph during the fine-tune)
        return make_sampler(c.sample_pruning, len(windows), epochs, window_dataset=windows,
                            edge_index=windows.edge_index, edge_weight=windows.edge_weight, **kw)

    def _optimizer(self, model: ServedModel, train_gate: bool) -> torch.optim.Optimizer:
        c = self.config
        groups = [{"params": list(model.backbone.parameters()), "lr": c.lr}]
        if train_gate:
            groups.append({"params": [model.gate.gate], "lr": c.gate_lr, "weight_decay": 0.0})
        if model.lift is not None:
            groups.append({"params": list(model.lift.parameters()), "lr": c.lr})
        return torch.optim.Adam(groups, lr=c.lr, weight_decay=c.weight_decay)

    def _val_windows(self, windows: WindowDataset) -> Optional[Tensor]:
        cap = self.config.val_max_windows
        if cap is None or len(windows) <= cap:
            return None
        return torch.linspace(0, len(windows) - 1, cap).round().long().unique()

    # ------------------------------------------------------------------ checkpoints
    def _save(self, phase: str, model: nn.Module, opt: torch.optim.Optimizer, sampler, loop: LoopState,
              mask: Optional[SensorMask] = None) -> None:
        self.checkpoints.save({
            "phase": phase, "loop": loop.state_dict(), "model": model.state_dict(), "opt": opt.state_dict(),
            "sampler": None if sampler is None else sampler.state_dict(), "history": self.history,
            "samples_seen": self.samples_seen, "dense_state": self._dense_state,
            "search_state": self._search_state,
            "search_mask": None if self._search_mask is None else self._search_mask.to_dict(),
            "search_key": self._search_key,
            "mask": None if mask is None else mask.to_dict()})

    def _restore_run(self, ck: dict) -> None:
        """What finished phases left in a checkpoint: dense and searched states, history."""
        self._dense_state = ck["dense_state"]
        self._search_state = ck["search_state"]
        self._search_mask = None if ck["search_mask"] is None else SensorMask.from_dict(ck["search_mask"])
        self._search_key = ck["search_key"]
        self.history, self.samples_seen = list(ck["history"]), int(ck["samples_seen"])

    def _resume(self, ck: Optional[dict], phase: str, model: nn.Module, opt: torch.optim.Optimizer, sampler,
                loop: LoopState, mask: Optional[SensorMask] = None) -> LoopState:
        """The loop state to start ``phase`` from: the checkpoint's if it stopped inside this phase."""
        if ck is None or ck["phase"] != phase or (mask is not None and ck["mask"] != mask.to_dict()):
            return loop
        self._restore_run(ck)
        self.checkpoints.load_into(model, ck["model"], f"{phase} model")
        opt.load_state_dict(ck["opt"])
        if sampler is not None and ck["sampler"] is not None:
            sampler.load_state_dict(ck["sampler"])
        return LoopState.from_state_dict(ck["loop"])

    # ------------------------------------------------------------------ full-network phases
    def _full_phase(self, name: str, model: ServedModel, opt: torch.optim.Optimizer, sampler, epochs: int,
                    schedule: Optional[Schedule] = None) -> Phase:
        c, train, gate = self.config, self.windows.train, model.gate
        paired = name == "search" and c.paired_dropout
        drop = torch.Generator()  # draws the paired-dropout supports; reseeded every epoch

        def loss(module: nn.Module, idx: Tensor) -> Tensor:
            x, y = train.batch(idx)
            gate.loss_scale = self.engine.loss_scale
            if paired:
                on, off, probe = self.scorer.supports(gate.active, drop)
                per_on, node_on = self._node_loss(module(x, support=on), y, gate)
                per_off, node_off = self._node_loss(module(x, support=off), y, gate)
                self.scorer.record(gate, node_on, node_off, probe)
                return 0.5 * (per_on + per_off)
            nodes = gate.active.nonzero().view(-1) if c.target == "kept" else None
            return self._loss(module(x), y, nodes)

        def on_epoch_start(epoch: int) -> None:
            drop.manual_seed(epoch_seed(c.seed, name, epoch) + 17)

        def after_step(t_first: int, t_last: int, total: int) -> None:
            self.dist.average_(gate.statistics())
            if schedule is None:
                return
            for t in range(t_first, t_last + 1):
                new = schedule.step(t, total, gate.importance(), gate.regrow_score.clone(), gate.active.clone())
                if new is not None:
                    self._set_active(gate, new)

        def on_epoch_end(rec: dict, loop: LoopState) -> None:
            self.history.append(rec)
            self.samples_seen += rec["samples"]
            self._save(name, model, opt, sampler, loop)

        def penalty() -> Tensor:
            return c.gate_l1 * gate.l1_penalty()

        val = self.windows.val
        return Phase(name, model, opt, epochs, len(train), loss,
                     validate=lambda: self.evaluate_full(model, val, self._val_windows(val)), sampler=sampler,
                     penalty=penalty if name == "search" and c.gate_l1 > 0 else None, after_step=after_step,
                     on_epoch_start=on_epoch_start, on_epoch_end=on_epoch_end,
                     record=lambda: {"sparsity": gate.sparsity},
                     clip_params=list(model.backbone.parameters()) + [gate.gate])

    def _set_active(self, gate: SensorGate, active: Tensor) -> None:
        gate.set_active(active.to(gate.active.device))
        self.dist.assert_same(gate.active, "active sensor set")
        self._update_recon(gate)

    def warmup(self) -> dict:
        """Trains the dense model (``warmup_epochs``); returns its state (reused by every selector)."""
        if self._dense_state is not None:
            return self._dense_state
        c = self.config
        ck = self.checkpoints.load()
        if ck is not None and ck["dense_state"] is not None:
            self._restore_run(ck)
            return self._dense_state
        torch.manual_seed(c.seed)
        model = self.full_model()
        model.gate.gate.requires_grad_(False)
        opt = self._optimizer(model, train_gate=False)
        sampler = self._sampler(self.windows.train, c.warmup_epochs)
        loop = self._resume(ck, "warmup", model, opt, sampler, LoopState())
        self.engine.run(self._full_phase("warmup", model, opt, sampler, c.warmup_epochs), loop)
        self._dense_state = copy.deepcopy(model.state_dict())
        return self._dense_state

    def dense_model(self) -> tuple[nn.Module, SensorGate]:
        """The warmed-up dense backbone and its gate (the warm-up runs first if needed)."""
        model = self.full_model(self.warmup())
        return model.backbone, model.gate

    def make_schedule(self) -> Schedule:
        """The configured schedule (sparsity or budget, protected sensors, constraints)."""
        c = self.config
        return make_schedule(c.schedule, sparsity=None if c.budget else c.sparsity, budget=c.budget,
                             protected=c.protected, constraints=c.constraints, **c.schedule_kwargs)

    def search(self, schedule: Optional[Schedule] = None) -> SensorMask:
        """Warm-up (if not done) and mask search; returns the selected :class:`SensorMask`."""
        c = self.config
        schedule = schedule or self.make_schedule()
        key = _schedule_key(schedule)
        ck = self.checkpoints.load()
        if ck is not None and ck["search_key"] not in (None, key):
            ck = None  # the checkpoint holds another schedule's search: this one starts from the dense state
        if ck is not None and ck["search_mask"] is not None:
            self._restore_run(ck)
            return self._search_mask
        self._search_key, self._search_mask, self._search_state = key, None, None
        model = self.full_model(self.warmup())
        gate = model.gate
        gate.gate.requires_grad_(True)
        opt = self._optimizer(model, train_gate=True)
        sampler = self._sampler(self.windows.train, c.search_epochs)
        loop = self._resume(ck, "search", model, opt, sampler, LoopState())
        self._update_recon(gate)
        if c.search_epochs == 0:
            # no search steps: apply the schedule once on the warm-up statistics
            new = schedule.step(0, 1, gate.importance(), gate.regrow_score, gate.active.clone())
            if new is not None:
                self._set_active(gate, new)
        else:
            self.engine.run(self._full_phase("search", model, opt, sampler, c.search_epochs, schedule), loop)
        if not schedule.reached_target(gate.active.cpu()):
            # the schedule must end on target (e.g. a very short search): prune on the final scores
            self._set_active(gate, schedule.prune_to(schedule.target_kept(self.N), gate.importance().cpu(),
                                                     gate.active.cpu()))
        gate.gate.requires_grad_(False)
        self._search_state = copy.deepcopy(model.state_dict())
        self._update_recon(gate)
        self._search_mask = SensorMask.from_bool(
            gate.active.cpu(), scores=gate.importance().cpu(), sensor_ids=self.splits.dataset.sensor_id,
            method=f"dynst-{schedule.name}", meta={"schedule": repr(schedule), "target": c.target,
                                                   "regrow_score": gate.regrow_score.cpu().tolist(),
                                                   **({"constraints": schedule.constraints.to_dict()}
                                                      if schedule.constraints is not None else {})})
        self._save("search", model, opt, sampler, LoopState(c.search_epochs))
        return self._search_mask

    # ------------------------------------------------------------------ sparse fine-tune
    def sub_splits(self, mask: SensorMask) -> ForecastSplits:
        """Windows of the physically smaller network (``DynSTMask`` on the dataset, full-data scaler)."""
        from .transforms import DynSTMask

        sp = self.splits
        sub = DynSTMask(mask, reconnect=self.config.reconnect)(sp.dataset)
        return sp.reprepare(sub, scaler=sp.scaler.select_nodes(mask.keep)).to(self.device)

    def served_model(self, mask: SensorMask, sub: ForecastSplits, state: Optional[dict] = None,
                     fit_lift: bool = True) -> ServedModel:
        """The model served on ``mask``'s sensors: gate and backbone from ``state`` (a full-model state),
        a lift head for ``target="all"``."""
        backbone, gate = self.model_factory(), self._new_gate()
        if state is not None:
            ServedModel(gate, backbone, None, self.splits.edge_index, self.splits.edge_weight).load_state_dict(state)
        gate.set_active(torch.ones(self.N, dtype=torch.bool))  # on the sub-graph every present sensor is on
        lift = self.new_lift(mask.keep, fit=fit_lift) if self.config.target == "all" else None
        return ServedModel(gate, backbone, mask.keep, sub.edge_index, sub.edge_weight, lift).to(self.device)

    def finetune(self, mask: SensorMask, start: str = "search", checkpoint: bool = True) -> DynSTResult:
        """Sparse fine-tune on the sub-graph of ``mask``; returns the served model and its metrics.

        Args:
            mask (SensorMask): The selection (from :meth:`search` or a baseline selector).
            start (str, optional): ``"search"`` starts from the weights at the end of the
                search (DynST), ``"dense"`` from the dense warm-up (baselines) (default: ``"search"``).
            checkpoint (bool, optional): Checkpoint every epoch (when the run has a checkpoint
                directory) (default: :obj:`True`).
        """
        c = self.config
        if mask.num_nodes != self.N:
            raise ValueError(f"`mask` covers {mask.num_nodes} sensors, the data has {self.N}")
        if start not in ("search", "dense"):
            raise ValueError(f"`start` must be 'search' or 'dense', got {start!r}")
        t0 = time.perf_counter()
        state = self._search_state if start == "search" and self._search_state is not None else self.warmup()
        sub = self.sub_splits(mask)
        served = self.served_model(mask, sub, state)
        served.gate.track = False
        served.gate.gate.requires_grad_(True)
        opt = self._optimizer(served, train_gate=True)
        sampler = self._sampler(sub.train, c.finetune_epochs)
        loop = LoopState(best_state=copy.deepcopy(served.state_dict()))
        ck = self.checkpoints.load() if checkpoint else None
        loop = self._resume(ck, "finetune", served, opt, sampler, loop, mask)
        full_train = self.windows.train

        def loss(module: nn.Module, idx: Tensor) -> Tensor:
            xk, yk = sub.train.batch(idx)
            y = full_train.batch(idx)[1] if served.lift is not None else yk
            return self._loss(module(xk), y)

        def on_epoch_end(rec: dict, lp: LoopState) -> None:
            self.history.append(rec)
            self.samples_seen += rec["samples"]
            if checkpoint:
                self._save("finetune", served, opt, sampler, lp, mask)

        phase = Phase("finetune", served, opt, c.finetune_epochs, len(sub.train), loss,
                      validate=lambda: self.evaluate_served(served, sub, "val", self._val_windows(sub.val)),
                      sampler=sampler, on_epoch_end=on_epoch_end, record=lambda: {"sparsity": mask.sparsity},
                      patience=c.patience)
        self.engine.run(phase, loop)
        served.eval()
        val = self.evaluate_served(served, sub, "val")
        test = self.evaluate_served(served, sub, "test")
        return DynSTResult(mask=mask, model=served, history=list(self.history), val_metrics=val, test_metrics=test,
                           config=asdict(c), train_seconds=time.perf_counter() - t0,
                           samples_seen=self.samples_seen, sub_splits=sub)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate_full(self, model: ServedModel, windows: WindowDataset, index: Optional[Tensor] = None,
                      batch_size: int = 128) -> dict:
        """Metrics of the zero-masked full-network model (used during warm-up and search only)."""
        model.eval()
        sp = self.splits
        idx_all = torch.arange(len(windows)) if index is None else index
        preds, ys = [], []
        for idx in idx_all.split(batch_size):
            x, y = windows.batch(idx)
            with self.engine.autocast():
                preds.append(model(x).float())
            ys.append(y)
        pred = sp.scaler.inverse_transform(torch.cat(preds), features=sp.target_features)
        y = torch.cat(ys)
        if self.config.target == "kept":
            act = model.gate.active.nonzero().view(-1)
            pred, y = pred[:, :, act], y[:, :, act]
        return forecast_metrics(pred, y, sp.null_value, _horizons(sp.t_out))

    @torch.no_grad()
    def evaluate_served(self, served: ServedModel, sub: ForecastSplits, split: str = "test",
                        index: Optional[Tensor] = None, batch_size: int = 128) -> dict:
        """Metrics of the served model: over all ``N`` sensors (``target="all"``) or the ``K`` kept ones."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"`split` must be 'train', 'val' or 'test', got {split!r}")
        served.eval()
        sp = self.splits
        sw, fw = getattr(sub, split), getattr(self.windows, split)
        preds, ys = [], []
        for idx in (torch.arange(len(sw)) if index is None else index).split(batch_size):
            xk, yk = sw.batch(idx)
            with self.engine.autocast():
                preds.append(served(xk).float())
            ys.append(fw.batch(idx)[1] if served.lift is not None else yk)
        pred = sp.scaler.inverse_transform(torch.cat(preds), features=sp.target_features)
        return forecast_metrics(pred, torch.cat(ys), sp.null_value, _horizons(sp.t_out))

    @torch.no_grad()
    def served_speedup(self, served: "ServedModel", mask: SensorMask, batch: int = 64, repeats: int = 7,
                       warmup: int = 2) -> tuple[float, float, float]:
        """Median forward latency (ms) of a fresh dense backbone on all ``N`` sensors vs ``served`` on the
        kept ones, for the first ``batch`` test windows; returns ``(dense_ms, pruned_ms, speedup)``."""
        sp = self.windows
        dense = self.model_factory().to(self.device).eval()
        served.eval()
        x, _ = sp.test.batch(torch.arange(min(batch, len(sp.test))))
        xk = x[:, :, mask.keep.to(x.device)]
        ei, ew = sp.edge_index.to(self.device), sp.edge_weight.to(self.device)
        return measure_inference_speedup(lambda: dense(x, ei, ew), lambda: served(xk), repeats=repeats,
                                         warmup=warmup, device=self.device)

    def fit(self) -> DynSTResult:
        """Warm-up, search and sparse fine-tune; the :class:`DynSTResult` of the served model."""
        t0 = time.perf_counter()
        mask = self.search()
        res = self.finetune(mask, start="search")
        res.train_seconds = time.perf_counter() - t0
        return res

    def dense_metrics(self, split: str = "test") -> dict:
        """Metrics on ``split`` (``"val"`` or ``"test"``) of the dense warm-up model fine-tuned for
        ``finetune_epochs`` on all sensors (not checkpointed: the run's checkpoint stays its own)."""
        if split not in ("val", "test"):
            raise ValueError(f"`split` must be 'val' or 'test', got {split!r}")
        res = self.finetune(SensorMask.from_bool(torch.ones(self.N, dtype=torch.bool), method="dense"),
                            start="dense", checkpoint=False)
        return res.val_metrics if split == "val" else res.test_metrics


def _schedule_key(schedule: Schedule) -> str:
    """Everything that defines a schedule (its class and every setting), as a string."""
    return f"{type(schedule).__name__}({sorted((k, repr(v)) for k, v in vars(schedule).items())})"


def _horizons(t_out: int) -> tuple:
    return tuple(h for h in (3, 6, 12) if h <= t_out) or (t_out,)


@torch.no_grad()
def measure_inference_speedup(dense: Callable[[], Tensor], pruned: Callable[[], Tensor], repeats: int = 7,
                              warmup: int = 2, device: Optional[torch.device] = None) -> tuple[float, float, float]:
    """Median latency (ms) of two zero-argument forward calls, interleaved; returns (dense, pruned, ratio).

    On a CUDA ``device`` every timed call is bracketed by :func:`torch.cuda.synchronize`, so the
    time is that of the kernels, not of their launch.
    """
    sync = torch.cuda.synchronize if device is not None and torch.device(device).type == "cuda" else (lambda: None)

    def timed(fn: Callable[[], Tensor]) -> float:
        sync()
        t = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - t

    for _ in range(warmup):
        dense(); pruned()
    td, tp = [], []
    for _ in range(repeats):
        td.append(timed(dense))
        tp.append(timed(pruned))
    md, mp = sorted(td)[len(td) // 2] * 1e3, sorted(tp)[len(tp) // 2] * 1e3
    return md, mp, md / mp
