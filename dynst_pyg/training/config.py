"""``DynSTConfig``: every hyperparameter of a DynST run, validated in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from .._checks import check_positive_int
from ..graph.subgraph import RECONNECT_MODES
from ..sampling.policies import POLICIES
from ..scoring.marginal import SCOPES
from ..selection.constraints import SelectionConstraints
from ..selection import num_to_keep
from ..selection.schedules import SCHEDULES
from .engine import PRECISIONS, resolve_device

#: The RECON methods ``recon_method`` accepts.
RECON_METHODS = ("auto", "exact", "local")
#: The propagations ``lift`` accepts.
LIFTS = ("ridge", "harmonic")

__all__ = ["DynSTConfig"]


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
        warmup_patience (int, optional): Early stopping of the dense warm-up on validation MAE:
            it stops after this many epochs without a better one and ends in its best validated
            state; ``warmup_epochs`` is then the cap. :obj:`None` runs all ``warmup_epochs``
            and keeps the last state (default: :obj:`None`).
        batch_size (int, optional): Training batch (default: ``64``).
        lr (float, optional): Adam learning rate of the backbone (default: ``3e-3``).
        gate_lr (float, optional): Learning rate of the gate (default: ``1e-2``).
        finetune_lr (float, optional): Adam learning rate of the backbone and the lift head in
            the sparse fine-tune, which starts a fresh optimiser from an already trained state;
            :obj:`None` uses ``lr`` (default: :obj:`None`).
        finetune_validate_start (bool, optional): Validate the state the sparse fine-tune starts
            from as its epoch 0 of the early stopping, so that the start is served when no
            fine-tune epoch beats it on validation (default: :obj:`False`).
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
            (a backward elimination for the lift's ridge regression, see
            :class:`~dynst_pyg.scoring.ReconstructionValue`) in the importance; the other
            terms share the rest. Ignored for ``target="kept"``. At ``1.0`` the importance is the
            reconstruction value alone, a classical ridge backward elimination on the training
            data that does not depend on the model (default: ``1.0``).
        recon_method (str, optional): How the reconstruction value is computed: ``"exact"``
            (one elimination over all sensors, O(N^3)), ``"local"`` (eliminations on graph
            clusters plus a halo, linear in N) or ``"auto"`` (exact for small networks with
            enough training steps, local otherwise; never switched off) (default: ``"auto"``).
        recon_horizons (tuple of int, optional): Steps ahead whose readings of every sensor the
            reconstruction value regresses on the active sensors' current readings (those
            ``> t_out`` are dropped; ``(0,)`` is same-step reconstruction, which also rewards
            reproducing white noise) (default: ``(1, 3, 6, 12)``).
        reconnect (str, optional): Sub-graph reconnection for the fine-tune (default: ``"none"``).
        protected (sequence of int, optional): Sensors never pruned (default: none).
        constraints (SelectionConstraints, optional): Per-sensor costs with a cost budget, a
            minimum per region, protected sensors; every pruning and regrowth of the search
            obeys them. With a ``cost_budget``, ``sparsity`` may be :obj:`None` (keep what the
            budget allows) (default: none).
        max_batches (int, optional): Cap on batches per epoch, for quick runs (default: all).
        seed (int, optional): Seed (default: ``0``).
        progress (bool, optional): Show tqdm bars (default: :obj:`True`).
        sample_pruning (str, optional): ST-Prune hook: ``"stprune"``, ``"infobatch"``,
            ``"random"`` or :obj:`None` (default: :obj:`None`).
        sample_pruning_kwargs (dict, optional): Arguments of the sampler (default: empty).
        checkpoint_dir (str, optional): Where to checkpoint after every epoch; a checkpoint of
            the same run there (same fingerprint, see :mod:`~dynst_pyg.training`) is resumed,
            one of another run is refused (default: :obj:`None`).
        device (str, optional): ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``: where models, gate, lift head and windows live (default: ``"auto"``).
        precision (str, optional): Training precision: ``"32"``, ``"bf16"`` (autocast) or ``"16"``
            (autocast and loss scaling); metrics are always computed in float32 (default: ``"32"``).
        val_max_windows (int, optional): Validate each epoch on at most this many validation
            windows, evenly spaced (large networks); final metrics always use every window
            (default: all).
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
    warmup_patience: Optional[int] = None
    batch_size: int = 64
    lr: float = 3e-3
    gate_lr: float = 1e-2
    finetune_lr: Optional[float] = None
    finetune_validate_start: bool = False
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
    recon_weight: float = 1.0
    recon_horizons: tuple = (1, 3, 6, 12)
    recon_method: str = "auto"
    reconnect: str = "none"
    protected: Optional[Sequence[int]] = None
    constraints: Optional[SelectionConstraints] = None
    max_batches: Optional[int] = None
    seed: int = 0
    progress: bool = True
    sample_pruning: Optional[str] = None
    sample_pruning_kwargs: dict = field(default_factory=dict)
    checkpoint_dir: Optional[str] = None
    device: str = "auto"
    precision: str = "32"
    val_max_windows: Optional[int] = None

    def __post_init__(self) -> None:
        # the US spelling names the same scope; one spelling enters fingerprints and the scorer
        if self.marginal_scope == "neighborhood":
            self.marginal_scope = "neighbourhood"

    def validate(self, num_nodes: int) -> None:
        """Checks every field against a network of ``num_nodes`` sensors (raises :class:`ValueError`)."""
        self.validate_fields()
        has_cost_budget = self.constraints is not None and self.constraints.cost_budget is not None
        if self.budget is None and self.sparsity is None and not has_cost_budget:
            raise ValueError("give `sparsity`, `budget` or `constraints` with a `cost_budget`")
        if self.budget is None and self.sparsity:
            kept = num_to_keep(num_nodes, sparsity=float(self.sparsity))
            if kept == num_nodes:
                raise ValueError(f"`sparsity` {self.sparsity} of {num_nodes} sensor{'s' if num_nodes > 1 else ''} "
                                 f"removes none (it keeps {kept} of {num_nodes}); choose a larger sparsity or a "
                                 f"`budget` below {num_nodes}")
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(self.budget, int)
                                        or not 1 <= self.budget <= num_nodes):
            raise ValueError(f"`budget` must be an integer in [1, {num_nodes}], got {self.budget!r}")
        if self.protected is not None:
            bad = [p for p in self.protected if not isinstance(p, int) or not 0 <= p < num_nodes]
            if bad:
                raise ValueError(f"`protected` must hold sensor indices in 0..{num_nodes - 1}, got {bad[:5]}")
        if self.constraints is not None:
            self.constraints.check(num_nodes)

    def validate_fields(self) -> None:
        """Checks every field that does not depend on the network (raises :class:`ValueError`)."""
        if self.target not in ("all", "kept"):
            raise ValueError(f"`target` must be 'all' or 'kept', got {self.target!r}")
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(self.budget, int)
                                        or self.budget < 1):
            raise ValueError(f"`budget` must be a positive number of sensors, got {self.budget!r}")
        if self.budget is None and self.sparsity is not None and not 0.0 <= float(self.sparsity) < 1.0:
            raise ValueError(f"`sparsity` must lie in [0, 1), got {self.sparsity!r}")
        key = str(self.schedule).lower().replace("-", "").replace("_", "")
        if key not in SCHEDULES:
            raise ValueError(f"`schedule` must be one of {sorted(SCHEDULES)}, got {self.schedule!r}")
        for name in ("warmup_epochs", "search_epochs", "finetune_epochs", "batch_size", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name in ("batch_size", "patience") else 0):
                raise ValueError(f"`{name}` must be a non-negative integer (batch_size, patience >= 1), got {v!r}")
        check_positive_int(self.max_batches, "max_batches", allow_none=True)
        check_positive_int(self.warmup_patience, "warmup_patience", allow_none=True)
        check_positive_int(self.val_max_windows, "val_max_windows", allow_none=True)
        if self.finetune_lr is not None and (isinstance(self.finetune_lr, bool)
                                             or not isinstance(self.finetune_lr, (int, float))
                                             or not self.finetune_lr > 0):
            raise ValueError(f"`finetune_lr` must be > 0 or None (use `lr`), got {self.finetune_lr!r}")
        if not isinstance(self.finetune_validate_start, bool):
            raise ValueError(f"`finetune_validate_start` must be True or False, got {self.finetune_validate_start!r}")
        for name in ("lr", "gate_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0, got {getattr(self, name)!r}")
        for name in ("gate_l1", "weight_decay", "clip_grad"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"`ema` must lie in [0, 1), got {self.ema!r}")
        if not 0.0 <= self.gate_weight <= 1.0 or not 0.0 <= self.marginal_weight <= 1.0 - self.gate_weight + 1e-9:
            raise ValueError(f"`gate_weight` and `marginal_weight` must be >= 0 with a sum <= 1, got "
                             f"{self.gate_weight!r} and {self.marginal_weight!r}")
        if not 0.0 < self.dropout_keep <= 1.0:
            raise ValueError(f"`dropout_keep` must lie in (0, 1], got {self.dropout_keep!r}")
        if self.marginal_scope not in SCOPES + ("neighborhood",):
            raise ValueError(f"`marginal_scope` must be 'node' or 'neighbourhood', got {self.marginal_scope!r}")
        if self.reconnect not in RECONNECT_MODES:
            raise ValueError(f"`reconnect` must be one of {', '.join(RECONNECT_MODES)}, got {self.reconnect!r}")
        if self.lift not in LIFTS:
            raise ValueError(f"`lift` must be one of {', '.join(LIFTS)}, got {self.lift!r}")
        if not 0.0 <= self.recon_weight <= 1.0:
            raise ValueError(f"`recon_weight` must lie in [0, 1], got {self.recon_weight!r}")
        if not self.recon_horizons or any(not isinstance(h, int) or h < 0 for h in self.recon_horizons):
            raise ValueError(f"`recon_horizons` must be non-negative ints, got {self.recon_horizons!r}")
        if self.recon_method not in RECON_METHODS:
            raise ValueError(f"`recon_method` must be one of {', '.join(RECON_METHODS)}, got {self.recon_method!r}")
        if not self.lift_ridge >= 0:
            raise ValueError(f"`lift_ridge` must be >= 0, got {self.lift_ridge!r}")
        if self.constraints is not None and not isinstance(self.constraints, SelectionConstraints):
            raise ValueError(f"`constraints` must be a SelectionConstraints, got {type(self.constraints).__name__}")
        if self.sample_pruning not in (None, "none") + POLICIES:
            raise ValueError(f"`sample_pruning` must be one of {', '.join(POLICIES)} or None, "
                             f"got {self.sample_pruning!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        resolve_device(self.device)
