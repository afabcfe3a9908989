"""The DynST loop: dense warm-up -> mask search -> sparse fine-tune on the physical sub-graph.

1. **Dense warm-up** (``warmup_epochs``): the backbone trains on all ``N`` sensors; the
   :class:`~dynst_pyg.gate.SensorGate` is fixed at 1 but already accumulates saliency.
2. **Mask search** (``search_epochs``): the gate is trainable and a
   :mod:`~dynst_pyg.schedules` policy turns the gate's importance / regrow scores into
   the active set after every step. Pruned sensors' inputs are exactly 0; the backbone
   still runs on the full graph during the search.
3. **Sparse fine-tune** (``finetune_epochs``, early stopping on validation): the
   selected sensors are *removed* with :class:`~dynst_pyg.transforms.DynSTMask`, and
   the backbone (plus, for ``target="all"``, a :class:`~dynst_pyg.models.lift.LiftHead`
   that maps its output to all ``N`` sensors) trains on the ``K``-node sub-graph with
   ``node_index`` = the kept ids. Validation and test metrics are those of this served
   model, never of the zero-masked full graph.

Baseline selectors skip step 2: :meth:`DynSTTrainer.finetune` takes any
:class:`~dynst_pyg.mask.SensorMask` and runs step 3 from the same dense warm-up, so all
selectors are compared through one pipeline.

Determinism: every epoch reseeds torch's global generator from ``(seed, phase, epoch)``
(dropout) and shuffles with its own :class:`torch.Generator`, so a run, and a run resumed
from a checkpoint, repeat exactly on the CPU.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from .datasets.windows import ForecastSplits, WindowDataset
from .gate import SensorGate
from .mask import SensorMask
from .metrics import forecast_metrics, masked_mae
from .schedules import Schedule, make_schedule

__all__ = ["CheckpointMismatchError", "DynSTConfig", "DynSTResult", "DynSTTrainer", "ServedModel",
           "measure_inference_speedup"]


class CheckpointMismatchError(ValueError):
    """A checkpoint in ``checkpoint_dir`` does not fit the model this run builds."""

ModelFactory = Callable[[], nn.Module]


@dataclass
class DynSTConfig:
    """Hyperparameters of a DynST run (every field has a default).

    Args:
        sparsity (float, optional): Fraction of sensors removed (default: ``0.5``).
        budget (int, optional): Sensors kept; overrides ``sparsity`` (default: :obj:`None`).
        schedule (str, optional): ``"oneshot"``, ``"iterative"`` or ``"dropregrow"`` (default: ``"iterative"``).
        schedule_kwargs (dict, optional): Extra arguments of the schedule (default: empty).
        target (str, optional): ``"all"`` forecasts every sensor from the kept ones' history;
            ``"kept"`` only the kept sensors (default: ``"all"``).
        warmup_epochs (int, optional): Dense epochs (default: ``3``).
        search_epochs (int, optional): Mask-search epochs (default: ``3``).
        finetune_epochs (int, optional): Maximum sparse fine-tune epochs (default: ``10``).
        patience (int, optional): Early-stopping patience on validation MAE (default: ``4``).
        batch_size (int, optional): Training batch (default: ``64``).
        lr (float, optional): Adam learning rate of the backbone (default: ``3e-3``).
        gate_lr (float, optional): Learning rate of the gate (default: ``1e-2``).
        gate_l1 (float, optional): L1 penalty on active gates during the search (default: ``1e-3``).
        weight_decay (float, optional): Adam weight decay (default: ``1e-4``).
        clip_grad (float, optional): Gradient-norm clip (default: ``5.0``).
        ema (float, optional): Saliency EMA decay (default: ``0.9``).
        gate_weight (float, optional): Weight of ``|gate|`` in the importance (default: ``0.1``).
        marginal_weight (float, optional): Weight of the paired-dropout marginal value in the
            importance (default: ``0.8``; saliency gets the rest).
        paired_dropout (bool, optional): Train the search under paired sensor dropout and
            record marginal values (default: :obj:`True`).
        dropout_keep (float, optional): Probability that an active sensor is on in the base
            mask of the paired dropout (default: ``0.5``).
        marginal_scope (str, optional): What a probed sensor's marginal value measures for
            ``target="all"``: ``"node"`` the loss at its own node, ``"neighbourhood"`` the summed
            loss of its node and its graph neighbours, which also charges a sensor for the
            neighbours it helps reconstruct (default: ``"neighbourhood"``).
        lift (str, optional): Propagation of the lift head for ``target="all"``: ``"ridge"``
            (a trainable kept->pruned matrix initialised by ridge regression on the training
            series, see :meth:`~dynst_pyg.models.lift.LiftHead.fit_ridge`) or ``"harmonic"``
            (fixed graph interpolation) (default: ``"ridge"``).
        lift_ridge (float, optional): Relative ridge strength of that fit (default: ``1e-3``).
        recon_weight (float, optional): For ``target="all"``, weight of the reconstruction value
            (backward elimination for the lift's ridge regression, see
            :func:`~dynst_pyg.gate.elimination_order`) in the importance; the other terms share
            the rest. Ignored for ``target="kept"`` and above 4,000 sensors (default: ``0.5``).
        recon_horizons (tuple of int, optional): Steps ahead whose readings of every sensor the
            reconstruction value regresses on the active sensors' current readings (those
            ``> t_out`` are dropped; ``(0,)`` is same-step reconstruction, which also rewards
            reproducing white noise) (default: ``(1, 3, 6, 12)``).
        reconnect (str, optional): Sub-graph reconnection for the fine-tune (default: ``"none"``).
        protected (sequence of int, optional): Sensors never pruned (default: none).
        max_batches (int, optional): Cap on batches per epoch, for quick runs (default: all).
        seed (int, optional): Seed (default: ``0``).
        progress (bool, optional): Show tqdm bars (default: :obj:`True`).
        sample_pruning (str, optional): ST-Prune hook: ``"stprune"``, ``"infobatch"``,
            ``"random"`` or :obj:`None` (default: :obj:`None`).
        sample_pruning_kwargs (dict, optional): Arguments of the sampler (default: empty).
        checkpoint_dir (str, optional): Where to checkpoint after every epoch; an existing
            checkpoint there is resumed (default: :obj:`None`).
    """

    sparsity: Optional[float] = 0.5
    budget: Optional[int] = None
    schedule: str = "iterative"
    schedule_kwargs: dict = field(default_factory=dict)
    target: str = "all"
    warmup_epochs: int = 3
    search_epochs: int = 3
    finetune_epochs: int = 10
    patience: int = 4
    batch_size: int = 64
    lr: float = 3e-3
    gate_lr: float = 1e-2
    gate_l1: float = 1e-3
    weight_decay: float = 1e-4
    clip_grad: float = 5.0
    ema: float = 0.9
    gate_weight: float = 0.1
    marginal_weight: float = 0.8
    paired_dropout: bool = True
    dropout_keep: float = 0.5
    marginal_scope: str = "neighbourhood"
    lift: str = "ridge"
    lift_ridge: float = 1e-3
    recon_weight: float = 0.5
    recon_horizons: tuple = (1, 3, 6, 12)
    reconnect: str = "none"
    protected: Optional[Sequence[int]] = None
    max_batches: Optional[int] = None
    seed: int = 0
    progress: bool = True
    sample_pruning: Optional[str] = None
    sample_pruning_kwargs: dict = field(default_factory=dict)
    checkpoint_dir: Optional[str] = None

    def validate(self, num_nodes: int) -> None:
        if self.target not in ("all", "kept"):
            raise ValueError(f"`target` must be 'all' or 'kept', got {self.target!r}")
        if self.budget is None and self.sparsity is None:
            raise ValueError("give `sparsity` or `budget`")
        for name in ("warmup_epochs", "search_epochs", "finetune_epochs", "batch_size", "patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (1 if name in ("batch_size", "patience") else 0):
                raise ValueError(f"`{name}` must be a non-negative integer (batch_size, patience >= 1), got {v!r}")
        if self.lift not in ("ridge", "harmonic"):
            raise ValueError(f"`lift` must be 'ridge' or 'harmonic', got {self.lift!r}")
        if not 0.0 <= self.recon_weight <= 1.0:
            raise ValueError(f"`recon_weight` must lie in [0, 1], got {self.recon_weight!r}")
        if not self.recon_horizons or any(not isinstance(h, int) or h < 0 for h in self.recon_horizons):
            raise ValueError(f"`recon_horizons` must be non-negative ints, got {self.recon_horizons!r}")
        if not self.lift_ridge >= 0:
            raise ValueError(f"`lift_ridge` must be >= 0, got {self.lift_ridge!r}")
        if self.sample_pruning not in (None, "none", "full", "stprune", "infobatch", "random"):
            raise ValueError(f"`sample_pruning` must be 'stprune', 'infobatch', 'random' or None, got {self.sample_pruning!r}")


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
    """The pruned forecaster as deployed: gate + backbone on the ``K``-node sub-graph (+ lift head).

    ``forward(x_kept [B, T_in, K, F])`` returns normalised forecasts ``[B, T_out, K, F_out]``
    (``target="kept"``) or ``[B, T_out, N, F_out]`` (``target="all"``).
    """

    def __init__(self, gate: SensorGate, backbone: nn.Module, keep: Tensor, edge_index: Tensor,
                 edge_weight: Tensor, lift: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.gate = gate
        self.backbone = backbone
        self.lift = lift
        self.register_buffer("keep", keep.clone())
        self.register_buffer("edge_index", edge_index.clone())
        self.register_buffer("edge_weight", edge_weight.clone())

    @property
    def target(self) -> str:
        return "kept" if self.lift is None else "all"

    def forward(self, x: Tensor) -> Tensor:
        h = self.gate(x, node_index=self.keep)
        out = self.backbone(h, self.edge_index, self.edge_weight, node_index=self.keep)
        if self.lift is not None:
            out = self.lift(out, self.keep)
        return out


def _epoch_seed(seed: int, phase: str, epoch: int) -> int:
    return (int(seed) * 1_000_003 + {"warmup": 1, "search": 2, "finetune": 3}[phase] * 10_007 + epoch) % (2**31)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


class DynSTTrainer:
    """Runs DynST (or a baseline mask) end to end on one dataset.

    Args:
        model_factory (callable): Returns a fresh backbone following the interface of
            DESIGN §4, built for the *full* network (``num_nodes = N``).
        splits (ForecastSplits): The full-network windows (``dataset.prepare(...)``).
        config (DynSTConfig, optional): Hyperparameters (default: ``DynSTConfig()``).
        lift_factory (callable, optional): ``(num_nodes, edge_index, edge_weight, out_features)``
            -> lift head for ``target="all"`` (default: :class:`~dynst_pyg.models.lift.LiftHead`).

    Example:
        >>> from dynst_pyg.models import GraphWaveNet
        >>> splits = load_los_loop().prepare()
        >>> trainer = DynSTTrainer(lambda: GraphWaveNet(207, profile="small"), splits,
        ...                        DynSTConfig(sparsity=0.5, schedule="dropregrow"))
        >>> result = trainer.fit()
        >>> result.mask.save("mask.json")
    """

    def __init__(self, model_factory: ModelFactory, splits: ForecastSplits, config: Optional[DynSTConfig] = None,
                 lift_factory: Optional[Callable[..., nn.Module]] = None) -> None:
        self.model_factory = model_factory
        self.splits = splits
        self.config = config or DynSTConfig()
        self.config.validate(splits.num_nodes)
        self.lift_factory = lift_factory
        self.N = splits.num_nodes
        self.history: list[dict] = []
        self._dense_state: Optional[dict] = None
        self._samples_seen = 0

    # ------------------------------------------------------------------ pieces
    def _new_gate(self) -> SensorGate:
        c = self.config
        return SensorGate(self.N, ema=c.ema, gate_weight=c.gate_weight, marginal_weight=c.marginal_weight,
                          recon_weight=c.recon_weight if self._use_recon else 0.0)

    #: above this many sensors the reconstruction value (O(N^3) per active-set change) is skipped
    RECON_MAX_NODES = 4000

    @property
    def _use_recon(self) -> bool:
        c = self.config
        return c.target == "all" and c.recon_weight > 0 and self.N <= self.RECON_MAX_NODES

    def _train_series(self) -> tuple[Tensor, Optional[Tensor]]:
        """Normalised training steps of the target features ``[T_train, N, F_out]`` and their validity
        (``None`` when the dataset has no null value); val/test steps are never included."""
        sp = self.splits
        steps, tf = sp.train_steps, list(sp.target_features)
        valid = None if sp.null_value is None else sp.dataset.series[:steps][..., tf] != sp.null_value
        return sp.train.inputs[:steps][..., tf], valid

    def _moments(self) -> tuple[Tensor, Tensor]:
        """Second moments of the normalised training series (see :func:`~dynst_pyg.gate.training_moments`)."""
        if getattr(self, "_moments_cache", None) is None:
            from .gate import training_moments

            hs = [h for h in self.config.recon_horizons if h <= self.splits.t_out] or [0]
            self._moments_cache = training_moments(*self._train_series(), horizons=hs)
        return self._moments_cache

    def _update_recon(self, gate: SensorGate) -> None:
        """Sets ``gate.recon`` for the current active set (recomputed only when the set changed)."""
        if not self._use_recon:
            return
        key = gate.active.clone()
        if gate.recon is not None and torch.equal(getattr(self, "_recon_key", torch.empty(0, dtype=torch.bool)), key):
            return
        from .gate import elimination_order

        gram, second = self._moments()
        gate.recon = elimination_order(gram, key, self.config.lift_ridge, second)
        self._recon_key = key

    def _new_lift(self, keep: Tensor, fit: bool = True) -> nn.Module:
        """The lift head for kept set ``keep``; with ``lift="ridge"`` bound to it and (``fit``) fitted
        on the normalised training series (training steps only)."""
        sp, c = self.splits, self.config
        if self.lift_factory is not None:
            return self.lift_factory(self.N, sp.edge_index, sp.edge_weight, sp.out_features)
        from .models.lift import LiftHead

        if c.lift == "harmonic":
            return LiftHead(self.N, sp.edge_index, sp.edge_weight, features=sp.out_features)
        head = LiftHead(self.N, sp.edge_index, sp.edge_weight, features=sp.out_features, kept=keep)
        if fit:
            series, valid = self._train_series()
            head.fit_ridge(series, ridge=c.lift_ridge, valid=valid)
        return head

    def _loss(self, pred_norm: Tensor, y: Tensor, nodes: Optional[Tensor] = None,
              reduction: str = "mean") -> Tensor:
        pred = self.splits.scaler.inverse_transform(pred_norm, features=self.splits.target_features)
        if nodes is not None:
            pred, y = pred[:, :, nodes], y[:, :, nodes]
        return masked_mae(pred, y, self.splits.null_value, reduction=reduction)

    def _sampler(self, windows: WindowDataset, epochs: int):
        c = self.config
        if c.sample_pruning in (None, "none", "full") or epochs == 0:
            return None
        from .sampling import make_sampler

        kw = dict(c.sample_pruning_kwargs)
        kw.setdefault("seed", c.seed)
        # the complexity score uses the graph the windows live on (the sub-graph during the fine-tune)
        return make_sampler(c.sample_pruning, len(windows), epochs, window_dataset=windows,
                            edge_index=windows.edge_index, edge_weight=windows.edge_weight, **kw)

    def _batches(self, n: int, epoch_seed: int, sampler=None):
        c = self.config
        if sampler is not None:
            from .sampling import iter_batches

            batches = list(iter_batches(sampler, c.batch_size))
        else:
            g = torch.Generator().manual_seed(epoch_seed)
            perm = torch.randperm(n, generator=g)
            batches = list(perm.split(c.batch_size))
        if c.max_batches is not None:
            batches = batches[: c.max_batches]
        return batches

    def _ckpt_path(self) -> Optional[Path]:
        if self.config.checkpoint_dir is None:
            return None
        p = Path(self.config.checkpoint_dir)
        p.mkdir(parents=True, exist_ok=True)
        return p / "dynst_checkpoint.pt"

    def _save(self, state: dict) -> None:
        p = self._ckpt_path()
        if p is None:
            return
        tmp = p.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, p)  # atomic: an interrupted save never leaves a broken checkpoint

    def _load_into(self, module: nn.Module, state: dict, what: str) -> None:
        """``module.load_state_dict(state)`` for checkpointed state, with an actionable error."""
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()
            raise CheckpointMismatchError(
                f"the checkpoint {self._ckpt_path()} does not fit this run's {what} ({first}); it was written by "
                f"another configuration or dynst_pyg version: delete {self._ckpt_path().parent} or choose another "
                f"output directory to start afresh") from exc

    def _load(self) -> Optional[dict]:
        p = self._ckpt_path()
        if p is None or not p.is_file():
            return None
        return torch.load(p, weights_only=False)

    # ------------------------------------------------------------------ full-graph phases
    def _train_full(self, model: nn.Module, gate: SensorGate, phase: str, epochs: int,
                    schedule: Optional[Schedule] = None, start_epoch: int = 0, opt_state: Optional[dict] = None,
                    sampler=None):
        c, sp = self.config, self.splits
        train = sp.train
        ei, ew = sp.edge_index, sp.edge_weight
        gate.gate.requires_grad_(phase == "search")
        params = [{"params": model.parameters(), "lr": c.lr}]
        if phase == "search":
            params.append({"params": [gate.gate], "lr": c.gate_lr, "weight_decay": 0.0})
        opt = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        steps_per_epoch = len(self._batches(len(train), 0))
        total = max(1, epochs * steps_per_epoch)
        if phase == "search":
            self._update_recon(gate)
        for epoch in range(start_epoch, epochs):
            torch.manual_seed(_epoch_seed(c.seed, phase, epoch))
            drop_gen = torch.Generator().manual_seed(_epoch_seed(c.seed, phase, epoch) + 17)
            if sampler is not None:
                sampler.set_epoch(epoch)
            model.train()
            gate.train()
            batches = self._batches(len(train), _epoch_seed(c.seed, phase, epoch), sampler)
            bar = _bar(len(batches), f"{phase} {epoch + 1}/{epochs}", c.progress)
            losses = []
            for i, idx in enumerate(batches):
                t = epoch * steps_per_epoch + i
                x, y = train.batch(idx)
                nodes = None if c.target == "all" else gate.active.nonzero().view(-1)
                if phase == "search" and c.paired_dropout:
                    per = self._paired_step(model, gate, x, y, ei, ew, drop_gen)
                else:
                    pred = model(gate(x), ei, ew)
                    per = self._loss(pred, y, nodes, reduction="none")
                w = sampler.weight_of(idx) if sampler is not None else torch.ones_like(per)
                loss = (per * w).mean()
                if phase == "search" and c.gate_l1 > 0:
                    loss = loss + c.gate_l1 * gate.l1_penalty()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if c.clip_grad:
                    nn.utils.clip_grad_norm_(list(model.parameters()) + [gate.gate], c.clip_grad)
                opt.step()
                if sampler is not None:
                    sampler.update(idx, per.detach())
                self._samples_seen += idx.numel()
                losses.append(float(per.detach().mean()))
                if schedule is not None:
                    new = schedule.step(t, total, gate.importance(), gate.regrow_score.clone(), gate.active.clone())
                    if new is not None:
                        gate.set_active(new)
                        self._update_recon(gate)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", sparsity=f"{gate.sparsity:.2f}")
                bar.update(1)
            bar.close()
            val = self.evaluate_full(model, gate, sp.val)
            rec = {"phase": phase, "epoch": epoch, "train_mae": sum(losses) / max(1, len(losses)),
                   "val_mae": val["mae"], "sparsity": gate.sparsity}
            self.history.append(rec)
            if c.progress:
                print(f"[dynst] {phase} epoch {epoch + 1}/{epochs}: train MAE {rec['train_mae']:.3f}, "
                      f"val MAE {val['mae']:.3f}, sparsity {gate.sparsity:.2f}", flush=True)
            self._save({"phase": phase, "epoch": epoch + 1, "model": model.state_dict(), "gate": gate.state_dict(),
                        "opt": opt.state_dict(), "history": self.history, "samples_seen": self._samples_seen,
                        "dense_state": self._dense_state, "sampler": sampler.state_dict() if sampler else None})
        gate.gate.requires_grad_(False)
        return model, gate

    def _per_node(self, pred_norm: Tensor, y: Tensor, gate: SensorGate) -> tuple[Tensor, Tensor]:
        """Per-sample ``[B]`` loss of the objective and per-node ``[N]`` masked MAE on the raw scale.

        The objective covers every sensor (``target="all"``) or the active ones (``"kept"``).
        """
        from .metrics import valid_mask

        pred = self.splits.scaler.inverse_transform(pred_norm, features=self.splits.target_features)
        m = valid_mask(y, self.splits.null_value)
        err = torch.where(m, (pred - y).abs(), torch.zeros_like(pred))
        per_node = err.sum(dim=(0, 1, 3)) / m.sum(dim=(0, 1, 3)).clamp_min(1)
        if self.config.target == "kept":
            nodes = gate.active.nonzero().view(-1)
            pred, y = pred[:, :, nodes], y[:, :, nodes]
        return masked_mae(pred, y, self.splits.null_value, reduction="none"), per_node

    def _paired_step(self, model: nn.Module, gate: SensorGate, x: Tensor, y: Tensor, ei: Tensor, ew: Tensor,
                     gen: torch.Generator) -> Tensor:
        """Paired sensor dropout: the batch runs twice, under two masks that differ only on a probe set.

        A random base mask keeps each active sensor with probability ``dropout_keep``; a random
        *independent* set ``S`` of active sensors (no two adjacent in the graph) is on in the first
        pass and off in the second. For each probed sensor, the loss at its own node
        (``target="all"``) or the mean loss of its graph neighbours (``target="kept"``) with it off
        minus with it on is recorded: the same windows and the same neighbourhood in both passes,
        so the difference isolates that sensor. Returns the per-sample loss averaged over both passes.
        """
        act = gate.active
        base = act & (torch.rand(self.N, generator=gen) < self.config.dropout_keep)
        probe = self._independent_set(act, gen)
        m_on, m_off = base | probe, base & ~probe
        if not bool(m_off.any()):
            m_off = m_on
        per1, node1 = self._per_node(model(gate(x, support=m_on), ei, ew), y, gate)
        per2, node2 = self._per_node(model(gate(x, support=m_off), ei, ew), y, gate)
        with torch.no_grad():
            if self.config.target == "kept":
                A = self._neighbour_mean()
                node1, node2 = A @ node1, A @ node2
            elif self.config.marginal_scope == "neighbourhood":
                A = self._neighbour_mean()
                deg = (A > 0).sum(1).to(node1.dtype)
                node1, node2 = node1 + deg * (A @ node1), node2 + deg * (A @ node2)
            sensors = probe.nonzero().view(-1)
            if sensors.numel():
                gate.record_marginal(node2[sensors].detach(), node1[sensors].detach(), sensors)
        return 0.5 * (per1 + per2)

    def _independent_set(self, active: Tensor, gen: torch.Generator) -> Tensor:
        """A random maximal set of active sensors no two of which are graph neighbours."""
        if getattr(self, "_adj_lists", None) is None:
            ei = self.splits.edge_index
            nb: list[set] = [set() for _ in range(self.N)]
            for u, v in ei.t().tolist():
                if u != v:
                    nb[u].add(v)
                    nb[v].add(u)
            self._adj_lists = [sorted(n) for n in nb]
        out = torch.zeros(self.N, dtype=torch.bool)
        blocked = ~active.clone()
        for i in torch.randperm(self.N, generator=gen).tolist():
            if not blocked[i]:
                out[i] = True
                blocked[i] = True
                if self._adj_lists[i]:
                    blocked[self._adj_lists[i]] = True
        return out

    def _neighbour_mean(self) -> Tensor:
        if getattr(self, "_nbr", None) is None:
            ei = self.splits.edge_index
            off = ei[0] != ei[1]
            A = torch.zeros(self.N, self.N)
            A[ei[0, off], ei[1, off]] = 1.0
            A = ((A + A.t()) > 0).float()
            self._nbr = A / A.sum(1, keepdim=True).clamp_min(1)
        return self._nbr

    @torch.no_grad()
    def evaluate_full(self, model: nn.Module, gate: SensorGate, windows: WindowDataset,
                      batch_size: int = 128) -> dict:
        """Metrics of the zero-masked full-graph model (used during warm-up and search only)."""
        model.eval()
        gate.eval()
        sp, c = self.splits, self.config
        preds, ys = [], []
        for idx in torch.arange(len(windows)).split(batch_size):
            x, y = windows.batch(idx)
            preds.append(model(gate(x), sp.edge_index, sp.edge_weight))
            ys.append(y)
        pred = sp.scaler.inverse_transform(torch.cat(preds), features=sp.target_features)
        y = torch.cat(ys)
        if c.target == "kept":
            act = gate.active.nonzero().view(-1)
            pred, y = pred[:, :, act], y[:, :, act]
        return forecast_metrics(pred, y, sp.null_value, _horizons(sp.t_out))

    def warmup(self) -> dict:
        """Trains the dense model (``warmup_epochs``) and returns its state (reused by every selector)."""
        if self._dense_state is not None:
            return self._dense_state
        c = self.config
        torch.manual_seed(c.seed)
        model, gate = self.model_factory(), self._new_gate()
        start, opt_state = 0, None
        sampler = self._sampler(self.splits.train, c.warmup_epochs)
        ck = self._load()
        if ck is not None and ck["phase"] == "warmup":
            start, opt_state = self._restore_full(ck, model, gate, sampler)
        elif ck is not None and ck.get("dense_state") is not None:
            self._dense_state = ck["dense_state"]
            self.history = ck["history"]
            return self._dense_state
        self._train_full(model, gate, "warmup", c.warmup_epochs, start_epoch=start, opt_state=opt_state,
                         sampler=sampler)
        self._dense_state = {"model": copy.deepcopy(model.state_dict()), "gate": copy.deepcopy(gate.state_dict())}
        return self._dense_state

    def _restore_full(self, ck: dict, model: nn.Module, gate: SensorGate, sampler) -> tuple[int, dict]:
        """Loads a warm-up/search checkpoint into the objects; returns (next epoch, optimizer state)."""
        self._load_into(model, ck["model"], "backbone")
        self._load_into(gate, ck["gate"], "sensor gate")
        self.history, self._samples_seen = ck["history"], ck["samples_seen"]
        if sampler is not None and ck.get("sampler") is not None:
            sampler.load_state_dict(ck["sampler"])
        return ck["epoch"], ck["opt"]

    def dense_model(self) -> tuple[nn.Module, SensorGate]:
        """The warmed-up dense model and its gate."""
        st = self.warmup()
        model, gate = self.model_factory(), self._new_gate()
        model.load_state_dict(st["model"]); gate.load_state_dict(st["gate"])
        return model, gate

    def search(self, schedule: Optional[Schedule] = None) -> SensorMask:
        """Warm-up (if not done) and mask search; returns the selected :class:`SensorMask`."""
        c = self.config
        schedule = schedule or make_schedule(c.schedule, sparsity=None if c.budget else c.sparsity,
                                             budget=c.budget, protected=c.protected, **c.schedule_kwargs)
        model, gate = self.dense_model()
        start, ck, opt_state = 0, self._load(), None
        sampler = self._sampler(self.splits.train, c.search_epochs)
        if ck is not None and ck["phase"] == "search":
            start, opt_state = self._restore_full(ck, model, gate, sampler)
        elif ck is not None and ck["phase"] == "finetune" and ck.get("search_model") is not None:
            self._searched = (ck["search_model"], ck["search_gate"])
            return SensorMask.from_dict(ck["mask"])
        if c.search_epochs == 0:
            # no search steps: apply the schedule once on the warm-up statistics
            self._update_recon(gate)
            new = schedule.step(0, 1, gate.importance(), gate.regrow_score, gate.active.clone())
            if new is not None:
                gate.set_active(new)
        else:
            self._train_full(model, gate, "search", c.search_epochs, schedule=schedule, start_epoch=start,
                             opt_state=opt_state, sampler=sampler)
        if gate.num_active != schedule.target_kept(self.N):
            # the schedule must end on target (e.g. a very short search): prune on the final scores
            self._update_recon(gate)
            gate.set_active(schedule._prune_to(schedule.target_kept(self.N), gate.importance(), gate.active))
        self._searched = (copy.deepcopy(model.state_dict()), copy.deepcopy(gate.state_dict()))
        self._update_recon(gate)
        scores = gate.importance()
        return SensorMask.from_bool(gate.active.clone(), scores=scores, sensor_ids=self.splits.dataset.sensor_id,
                                    method=f"dynst-{schedule.name}",
                                    meta={"schedule": repr(schedule), "target": c.target,
                                          "regrow_score": gate.regrow_score.tolist()})

    # ------------------------------------------------------------------ sparse fine-tune
    def sub_splits(self, mask: SensorMask) -> ForecastSplits:
        """Windows of the physically smaller network (``DynSTMask`` on the dataset, full-data scaler)."""
        from .transforms import DynSTMask

        sp = self.splits
        sub = DynSTMask(mask, reconnect=self.config.reconnect)(sp.dataset)
        return sp.reprepare(sub, scaler=sp.scaler.select_nodes(mask.keep))

    def finetune(self, mask: SensorMask, start: str = "search") -> DynSTResult:
        """Sparse fine-tune on the sub-graph of ``mask``; returns the served model and its metrics.

        Args:
            mask (SensorMask): The selection (from :meth:`search` or a baseline selector).
            start (str, optional): ``"search"`` starts from the weights at the end of the
                search (DynST), ``"dense"`` from the dense warm-up (baselines) (default: ``"search"``).
        """
        c, sp = self.config, self.splits
        if mask.num_nodes != self.N:
            raise ValueError(f"`mask` covers {mask.num_nodes} sensors, the data has {self.N}")
        t0 = time.perf_counter()
        if start == "search" and getattr(self, "_searched", None) is not None:
            m_state, g_state = self._searched
        else:
            st = self.warmup()
            m_state, g_state = st["model"], st["gate"]
        backbone, gate = self.model_factory(), self._new_gate()
        backbone.load_state_dict(m_state); gate.load_state_dict(g_state)
        with torch.no_grad():
            gate.active.fill_(True)  # on the sub-graph every present sensor is active
        keep = mask.keep
        sub = self.sub_splits(mask)
        lift = self._new_lift(keep) if c.target == "all" else None
        served = ServedModel(gate, backbone, keep, sub.edge_index, sub.edge_weight, lift)
        gate.track = False
        gate.gate.requires_grad_(True)
        opt = torch.optim.Adam([
            {"params": backbone.parameters(), "lr": c.lr},
            {"params": [gate.gate], "lr": c.gate_lr, "weight_decay": 0.0},
            *([{"params": lift.parameters(), "lr": c.lr}] if lift is not None else []),
        ], lr=c.lr, weight_decay=c.weight_decay)
        sampler = self._sampler(sub.train, c.finetune_epochs)
        best, best_state, bad = math.inf, copy.deepcopy(served.state_dict()), 0
        start_epoch, ck = 0, self._load()
        if ck is not None and ck["phase"] == "finetune" and ck.get("mask") == mask.to_dict():
            self._load_into(served, ck["served"], "served model")
            opt.load_state_dict(ck["opt"])
            start_epoch, best, best_state, bad = ck["epoch"], ck["best"], ck["best_state"], ck["bad"]
            self.history, self._samples_seen = ck["history"], ck["samples_seen"]
            if sampler is not None and ck.get("sampler") is not None:
                sampler.load_state_dict(ck["sampler"])
        for epoch in range(start_epoch, c.finetune_epochs):
            torch.manual_seed(_epoch_seed(c.seed, "finetune", epoch))
            if sampler is not None:
                sampler.set_epoch(epoch)
            served.train()
            batches = self._batches(len(sub.train), _epoch_seed(c.seed, "finetune", epoch), sampler)
            bar = _bar(len(batches), f"finetune {epoch + 1}/{c.finetune_epochs} (K={mask.num_kept})", c.progress)
            losses = []
            for idx in batches:
                xk, yk = sub.train.batch(idx)
                y = sp.train.batch(idx)[1] if lift is not None else yk
                per = self._loss(served(xk), y, reduction="none")
                w = sampler.weight_of(idx) if sampler is not None else torch.ones_like(per)
                loss = (per * w).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if c.clip_grad:
                    nn.utils.clip_grad_norm_(served.parameters(), c.clip_grad)
                opt.step()
                if sampler is not None:
                    sampler.update(idx, per.detach())
                self._samples_seen += idx.numel()
                losses.append(float(per.detach().mean()))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                bar.update(1)
            bar.close()
            val = self.evaluate_served(served, sub, "val")
            rec = {"phase": "finetune", "epoch": epoch, "train_mae": sum(losses) / max(1, len(losses)),
                   "val_mae": val["mae"], "sparsity": mask.sparsity}
            self.history.append(rec)
            if c.progress:
                print(f"[dynst] finetune epoch {epoch + 1}/{c.finetune_epochs} on K={mask.num_kept}: "
                      f"train MAE {rec['train_mae']:.3f}, val MAE {val['mae']:.3f}", flush=True)
            if val["mae"] < best - 1e-6:
                best, best_state, bad = val["mae"], copy.deepcopy(served.state_dict()), 0
            else:
                bad += 1
            self._save({"phase": "finetune", "epoch": epoch + 1, "mask": mask.to_dict(), "served": served.state_dict(),
                        "opt": opt.state_dict(), "best": best, "best_state": best_state, "bad": bad,
                        "history": self.history, "samples_seen": self._samples_seen,
                        "dense_state": self._dense_state, "sampler": sampler.state_dict() if sampler else None,
                        "search_model": getattr(self, "_searched", (None, None))[0],
                        "search_gate": getattr(self, "_searched", (None, None))[1]})
            if bad >= c.patience:
                break
        served.load_state_dict(best_state)
        served.eval()
        val = self.evaluate_served(served, sub, "val")
        test = self.evaluate_served(served, sub, "test")
        return DynSTResult(mask=mask, model=served, history=list(self.history), val_metrics=val, test_metrics=test,
                           config=asdict(c), train_seconds=time.perf_counter() - t0,
                           samples_seen=self._samples_seen, sub_splits=sub)

    @torch.no_grad()
    def evaluate_served(self, served: ServedModel, sub: ForecastSplits, split: str = "test",
                        batch_size: int = 128) -> dict:
        """Metrics of the served model: over all ``N`` sensors (``target="all"``) or the ``K`` kept ones."""
        served.eval()
        sp = self.splits
        sw, fw = getattr(sub, split), getattr(sp, split)
        preds, ys = [], []
        for idx in torch.arange(len(sw)).split(batch_size):
            xk, yk = sw.batch(idx)
            preds.append(served(xk))
            ys.append(fw.batch(idx)[1] if served.lift is not None else yk)
        pred = sp.scaler.inverse_transform(torch.cat(preds), features=sp.target_features)
        return forecast_metrics(pred, torch.cat(ys), sp.null_value, _horizons(sp.t_out))

    @torch.no_grad()
    def served_speedup(self, served: "ServedModel", mask: SensorMask, batch: int = 64, repeats: int = 7,
                       warmup: int = 2) -> tuple[float, float, float]:
        """Median forward latency (ms) of a fresh dense backbone on all ``N`` sensors vs ``served`` on the
        kept ones, for the first ``batch`` test windows; returns ``(dense_ms, pruned_ms, speedup)``."""
        sp = self.splits
        dense = self.model_factory().eval()
        served.eval()
        x, _ = sp.test.batch(torch.arange(min(batch, len(sp.test))))
        xk = x[:, :, mask.keep]
        return measure_inference_speedup(lambda: dense(x, sp.edge_index, sp.edge_weight), lambda: served(xk),
                                         repeats=repeats, warmup=warmup)

    def fit(self) -> DynSTResult:
        """Warm-up, search and sparse fine-tune; the :class:`DynSTResult` of the served model."""
        t0 = time.perf_counter()
        mask = self.search()
        res = self.finetune(mask, start="search")
        res.train_seconds = time.perf_counter() - t0
        return res

    def dense_metrics(self, split: str = "test") -> dict:
        """Metrics of the dense warm-up model, fine-tuned for ``finetune_epochs`` on all sensors."""
        return self.finetune(SensorMask.from_bool(torch.ones(self.N, dtype=torch.bool), method="dense"),
                             start="dense").test_metrics


def _horizons(t_out: int) -> tuple:
    return tuple(h for h in (3, 6, 12) if h <= t_out) or (t_out,)


@torch.no_grad()
def measure_inference_speedup(dense: Callable[[], Tensor], pruned: Callable[[], Tensor], repeats: int = 7,
                              warmup: int = 2) -> tuple[float, float, float]:
    """Median latency (ms) of two zero-argument forward calls, interleaved; returns (dense, pruned, ratio)."""
    for _ in range(warmup):
        dense(); pruned()
    td, tp = [], []
    for _ in range(repeats):
        t = time.perf_counter(); dense(); td.append(time.perf_counter() - t)
        t = time.perf_counter(); pruned(); tp.append(time.perf_counter() - t)
    md, mp = sorted(td)[len(td) // 2] * 1e3, sorted(tp)[len(tp) // 2] * 1e3
    return md, mp, md / mp
