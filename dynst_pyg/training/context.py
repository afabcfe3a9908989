"""The pieces one DynST run shares across its phases: models, optimisers, samplers, checkpoints."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..data.windows import ForecastSplits, WindowDataset
from ..models.lift import LiftHead
from ..models.served import ServedModel
from ..sampling import make_sampler
from ..scoring.gate import SensorGate
from ..scoring.marginal import PairedDropoutScorer
from ..scoring.reconstruction import ReconstructionValue
from ..selection.mask import SensorMask
from ..selection.schedules import Schedule, make_schedule
from ..transforms.dynst_mask import DynSTMask
from . import evaluation
from .checkpoint import Checkpointer, run_fingerprint
from .config import DynSTConfig
from .engine import DistContext, EpochEngine, LoopState, resolve_device
from .record import RunRecord

__all__ = ["RunContext", "ModelFactory"]

ModelFactory = Callable[[], nn.Module]


class RunContext:
    """Builds what the phases of one run need, from the run's configuration and data.

    Args:
        model_factory (callable): Returns a fresh full-network backbone.
        splits (ForecastSplits): The full-network windows.
        config (DynSTConfig): The validated configuration.
        lift_factory (callable, optional): ``(num_nodes, edge_index, edge_weight, out_features)``
            -> lift head for ``target="all"`` (default: :class:`~dynst_pyg.models.LiftHead`).
        fingerprint_extra (dict, optional): More fields that identify the run in its checkpoints.
    """

    def __init__(self, model_factory: ModelFactory, splits: ForecastSplits, config: DynSTConfig,
                 lift_factory: Optional[Callable[..., nn.Module]] = None,
                 fingerprint_extra: Optional[dict] = None) -> None:
        c = config
        self.config = c
        self.model_factory = model_factory
        self.lift_factory = lift_factory
        self.splits = splits
        self.num_nodes = splits.num_nodes
        self.device = resolve_device(c.device)
        self.dist = DistContext.current()
        #: the full-network windows on the run's device (one copy of the series, sliced per batch)
        self.windows = splits.to(self.device)
        self.engine = EpochEngine(self.device, c.precision, c.batch_size, c.max_batches, c.clip_grad, c.seed,
                                  c.progress, self.dist)
        self.checkpoints = Checkpointer(c.checkpoint_dir, run_fingerprint(c, splits, model_factory(),
                                                                          fingerprint_extra), self.dist)
        self.scorer = PairedDropoutScorer(splits.edge_index, self.num_nodes, c.dropout_keep, c.target,
                                          c.marginal_scope).to(self.device)
        self._recon: Optional[ReconstructionValue] = None  # its moments cost O(T N^2): built on first use

    # ------------------------------------------------------------------ models
    @property
    def uses_reconstruction(self) -> bool:
        """Whether the search's importance includes the reconstruction value (``target="all"``)."""
        return self.config.target == "all" and self.config.recon_weight > 0

    def new_gate(self) -> SensorGate:
        c = self.config
        return SensorGate(self.num_nodes, ema=c.ema, gate_weight=c.gate_weight, marginal_weight=c.marginal_weight,
                          recon_weight=c.recon_weight if self.uses_reconstruction else 0.0)

    def full_model(self, state: Optional[dict] = None) -> ServedModel:
        """Gate + fresh backbone on the full network (on the run's device), optionally loaded from ``state``."""
        sp = self.splits
        model = ServedModel(self.new_gate(), self.model_factory(), None, sp.edge_index, sp.edge_weight)
        if state is not None:
            model.load_state_dict(state)
        return model.to(self.device)

    def new_lift(self, keep: Tensor, fit: bool = True) -> nn.Module:
        """The lift head for the kept set ``keep``; with ``lift="ridge"`` bound to it and (``fit``)
        fitted on the normalised training series (training steps only)."""
        sp, c = self.splits, self.config
        if self.lift_factory is not None:
            return self.lift_factory(self.num_nodes, sp.edge_index, sp.edge_weight, sp.out_features)
        if c.lift == "harmonic":
            return LiftHead(self.num_nodes, sp.edge_index, sp.edge_weight, features=sp.out_features)
        head = LiftHead(self.num_nodes, sp.edge_index, sp.edge_weight, features=sp.out_features, node_index=keep)
        if fit:
            series, valid = sp.train_series()
            head.fit_ridge(series, ridge=c.lift_ridge, valid=valid)
        return head

    def sub_splits(self, mask: SensorMask) -> ForecastSplits:
        """Windows of the physically smaller network (``DynSTMask`` on the dataset, full-data scaler)."""
        sp = self.splits
        sub = DynSTMask(mask, reconnect=self.config.reconnect)(sp.dataset)
        return sp.reprepare(sub, scaler=sp.scaler.select_nodes(mask.keep)).to(self.device)

    def served_model(self, mask: SensorMask, sub: ForecastSplits, state: Optional[dict] = None,
                     fit_lift: bool = True) -> ServedModel:
        """The model served on ``mask``'s sensors: gate and backbone from ``state`` (a full-model state),
        a lift head for ``target="all"``."""
        backbone, gate = self.model_factory(), self.new_gate()
        if state is not None:
            ServedModel(gate, backbone, None, self.splits.edge_index, self.splits.edge_weight).load_state_dict(state)
        gate.set_active(torch.ones(self.num_nodes, dtype=torch.bool))  # on the sub-graph every sensor is on
        lift = self.new_lift(mask.keep, fit=fit_lift) if self.config.target == "all" else None
        return ServedModel(gate, backbone, mask.keep, sub.edge_index, sub.edge_weight, lift).to(self.device)

    def make_schedule(self) -> Schedule:
        """The configured schedule (sparsity or budget, protected sensors, constraints)."""
        c = self.config
        return make_schedule(c.schedule, sparsity=None if c.budget else c.sparsity, budget=c.budget,
                             protected=c.protected, constraints=c.constraints, **c.schedule_kwargs)

    # ------------------------------------------------------------------ importance terms
    def reconstruction(self) -> ReconstructionValue:
        """The :class:`~dynst_pyg.scoring.ReconstructionValue` of the training series."""
        if self._recon is None:
            c = self.config
            hs = tuple(h for h in c.recon_horizons if h <= self.splits.t_out) or (0,)
            series, valid = self.splits.train_series()  # training steps only; gaps never enter the moments
            self._recon = ReconstructionValue(series, valid, horizons=hs, ridge=c.lift_ridge,
                                              edge_index=self.splits.edge_index, method=c.recon_method)
        return self._recon

    def update_reconstruction(self, gate: SensorGate) -> None:
        """Gives ``gate`` the reconstruction value of its current active set (when the run uses it)."""
        if self.uses_reconstruction:
            gate.set_reconstruction(self.reconstruction().scores(gate.active.cpu()).to(gate.active.device))

    def set_active(self, gate: SensorGate, active: Tensor) -> None:
        """A new active set on ``gate``, checked to agree over the ranks, with its reconstruction value."""
        gate.set_active(active.to(gate.active.device))
        self.dist.assert_same(gate.active, "active sensor set")
        self.update_reconstruction(gate)

    # ------------------------------------------------------------------ optimisation
    def sampler(self, windows: WindowDataset, epochs: int):
        """The configured window-pruning sampler over ``windows`` (:obj:`None` for plain shuffling)."""
        c = self.config
        if c.sample_pruning in (None, "none", "full") or epochs == 0:
            return None
        kw = dict(c.sample_pruning_kwargs)
        kw.setdefault("seed", c.seed)
        # the engine shards global batches itself, so the sampler serves one (global) order
        kw.update(num_replicas=1, rank=0)
        # the complexity score uses the graph the windows live on (the sub-graph during the fine-tune)
        return make_sampler(c.sample_pruning, len(windows), epochs, window_dataset=windows,
                            edge_index=windows.edge_index, edge_weight=windows.edge_weight, **kw)

    def optimizer(self, model: ServedModel, train_gate: bool, lr: Optional[float] = None) -> torch.optim.Optimizer:
        """Adam over the backbone and lift head at ``lr`` (default: the configuration's ``lr``) and,
        with ``train_gate``, the gate at ``gate_lr`` without weight decay."""
        c = self.config
        lr = c.lr if lr is None else lr
        groups = [{"params": list(model.backbone.parameters()), "lr": lr}]
        if train_gate:
            groups.append({"params": [model.gate.gate], "lr": c.gate_lr, "weight_decay": 0.0})
        if model.lift is not None:
            groups.append({"params": list(model.lift.parameters()), "lr": lr})
        return torch.optim.Adam(groups, lr=lr, weight_decay=c.weight_decay)

    def val_windows(self, windows: WindowDataset) -> Optional[Tensor]:
        """Evenly spaced validation windows when ``val_max_windows`` caps them (:obj:`None`: all)."""
        cap = self.config.val_max_windows
        if cap is None or len(windows) <= cap:
            return None
        return torch.linspace(0, len(windows) - 1, cap).round().long().unique()

    # ------------------------------------------------------------------ losses and evaluation
    def loss(self, pred_norm: Tensor, y: Tensor, nodes: Optional[Tensor] = None) -> Tensor:
        """Per-sample masked MAE on the original scale, in float32."""
        return evaluation.sample_loss(self.splits, evaluation.raw_forecast(self.splits, pred_norm), y, nodes)

    def node_loss(self, pred_norm: Tensor, y: Tensor, gate: SensorGate) -> tuple[Tensor, Tensor]:
        """Per-sample ``[B]`` loss of the objective and per-node ``[N]`` masked MAE on the raw scale."""
        nodes = gate.active.nonzero().view(-1) if self.config.target == "kept" else None
        return evaluation.node_loss(self.splits, pred_norm, y, nodes)

    def evaluate_full(self, model: ServedModel, windows: WindowDataset, index: Optional[Tensor] = None) -> dict:
        """Metrics of the zero-masked full-network model (used during warm-up and search only)."""
        return evaluation.evaluate_full(model, self.splits, windows, self.config.target, index,
                                        autocast=self.engine.autocast)

    def evaluate_served(self, served: ServedModel, sub: ForecastSplits, split: str = "test",
                        index: Optional[Tensor] = None) -> dict:
        """Metrics of the served model: over all ``N`` sensors (``target="all"``) or the ``K`` kept ones."""
        return evaluation.evaluate_served(served, self.splits, self.windows, sub, split, index,
                                          autocast=self.engine.autocast)

    # ------------------------------------------------------------------ checkpoints
    def save(self, phase: str, record: RunRecord, model: nn.Module, opt: torch.optim.Optimizer, sampler,
             loop: LoopState, mask: Optional[SensorMask] = None) -> None:
        """Checkpoints the run: the phase's loop, model, optimiser and sampler, and the record."""
        self.checkpoints.save({
            "phase": phase, "loop": loop.state_dict(), "model": model.state_dict(), "opt": opt.state_dict(),
            "sampler": None if sampler is None else sampler.state_dict(), **record.state_dict(),
            "mask": None if mask is None else mask.to_dict()})

    def resume(self, ck: Optional[dict], record: RunRecord, phase: str, model: nn.Module,
               opt: torch.optim.Optimizer, sampler, loop: LoopState, mask: Optional[SensorMask] = None) -> LoopState:
        """The loop state to start ``phase`` from: the checkpoint's if it stopped inside this phase."""
        if ck is None or ck["phase"] != phase or (mask is not None and ck["mask"] != mask.to_dict()):
            return loop
        record.load_state_dict(ck)
        self.checkpoints.load_into(model, ck["model"], f"{phase} model")
        opt.load_state_dict(ck["opt"])
        if sampler is not None and ck["sampler"] is not None:
            sampler.load_state_dict(ck["sampler"])
        return LoopState.from_state_dict(ck["loop"])
