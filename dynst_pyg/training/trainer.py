"""The DynST run: dense warm-up -> mask search -> sparse fine-tune on the physical sub-graph.

1. **Dense warm-up** (``warmup_epochs``): the backbone trains on all ``N`` sensors; the
   :class:`~dynst_pyg.scoring.SensorGate` is fixed at 1 but already accumulates saliency.
2. **Mask search** (``search_epochs``): the gate is trainable, every batch runs under
   paired sensor dropout (:class:`~dynst_pyg.scoring.PairedDropoutScorer`), the
   reconstruction value (:class:`~dynst_pyg.scoring.ReconstructionValue`) scores the
   active set, and a :mod:`~dynst_pyg.selection` policy turns the gate's importance / regrow
   scores into the active set after every step. Pruned sensors' inputs are exactly 0; the
   backbone still runs on the full graph during the search.
3. **Sparse fine-tune** (``finetune_epochs``, early stopping on validation): the selected
   sensors are *removed* with :class:`~dynst_pyg.transforms.DynSTMask`, and the backbone
   (plus, for ``target="all"``, a :class:`~dynst_pyg.models.lift.LiftHead` that maps its
   output to all ``N`` sensors) trains on the ``K``-node sub-graph with ``node_index`` = the
   kept ids. Validation and test metrics are those of this served model.

Every phase runs in the one :class:`~dynst_pyg.training.EpochEngine` (device, mixed
precision, DDP under ``torchrun``, sampler weights, clipping, progress, early stopping) and
checkpoints through a :class:`~dynst_pyg.training.Checkpointer` stamped with the run's
fingerprint. Baseline selectors skip step 2: :meth:`DynSTTrainer.finetune` takes any
:class:`~dynst_pyg.selection.SensorMask` and runs step 3 from the same dense warm-up.

Determinism: every epoch reseeds torch's global generator from ``(seed, phase, epoch)``
(dropout) and draws batches and dropout supports from generators of its own, so a run, and
a run resumed from a checkpoint, repeat exactly on the CPU.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..data.windows import ForecastSplits, WindowDataset
from ..models.served import ServedModel
from ..scoring.gate import SensorGate
from ..scoring.reconstruction import ReconstructionValue
from ..selection.mask import SensorMask
from ..selection.schedules import Schedule
from .config import DynSTConfig
from .context import ModelFactory, RunContext
from .evaluation import SpeedupMeasurement, measure_speedup
from .phases import dense_warmup, mask_search, sparse_finetune
from .record import DynSTResult, RunRecord

__all__ = ["DynSTTrainer"]


class DynSTTrainer:
    """Runs DynST (or a baseline mask) end to end on one dataset.

    Args:
        model_factory (callable): Returns a fresh backbone that follows the model interface
            (``forward(x, edge_index, edge_weight=None, node_index=None)``), built for the
            *full* network (``num_nodes = N``).
        splits (ForecastSplits): The full-network windows (``prepare(dataset, ...)``).
        config (DynSTConfig, optional): Hyperparameters (default: ``DynSTConfig()``).
        lift_factory (callable, optional): ``(num_nodes, edge_index, edge_weight, out_features)``
            -> lift head for ``target="all"`` (default: :class:`~dynst_pyg.models.LiftHead`).
        fingerprint_extra (dict, optional): More fields that identify the run in its
            checkpoints, e.g. the baseline selector (default: none).

    Under ``torchrun`` (an initialised :mod:`torch.distributed` process group) batches are
    sharded over the ranks, the statistics the mask is decided from are averaged after every
    step, every rank checks that it holds the same active set, and rank 0 alone writes.

    Example:
        >>> from dynst_pyg import prepare, load_los_loop
        >>> from dynst_pyg.models import GraphWaveNet
        >>> splits = prepare(load_los_loop())
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
        self.ctx = RunContext(model_factory, splits, c, lift_factory, fingerprint_extra)
        self.ctx.make_schedule().target_kept(splits.num_nodes)  # infeasible targets fail before any training
        #: what the finished phases left (states, searched mask, history)
        self.record = RunRecord()

    # ------------------------------------------------------------------ the run's pieces
    @property
    def splits(self) -> ForecastSplits:
        return self.ctx.splits

    @property
    def N(self) -> int:
        return self.ctx.num_nodes

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def dist(self):
        return self.ctx.dist

    @property
    def windows(self) -> ForecastSplits:
        """The full-network windows on the run's device."""
        return self.ctx.windows

    @property
    def checkpoints(self):
        return self.ctx.checkpoints

    @property
    def history(self) -> list:
        return self.record.history

    @property
    def samples_seen(self) -> int:
        return self.record.samples_seen

    @property
    def uses_reconstruction(self) -> bool:
        """Whether the search's importance includes the reconstruction value (``target="all"``)."""
        return self.ctx.uses_reconstruction

    def reconstruction(self) -> ReconstructionValue:
        """The :class:`~dynst_pyg.scoring.ReconstructionValue` of the training series."""
        return self.ctx.reconstruction()

    def full_model(self, state: Optional[dict] = None) -> ServedModel:
        """Gate + fresh backbone on the full network, optionally loaded from ``state``."""
        return self.ctx.full_model(state)

    def new_lift(self, keep: Tensor, fit: bool = True) -> nn.Module:
        """The lift head for the kept set ``keep`` (fitted on the training series when ``fit``)."""
        return self.ctx.new_lift(keep, fit)

    def sub_splits(self, mask: SensorMask) -> ForecastSplits:
        """Windows of the physically smaller network (``DynSTMask`` on the dataset, full-data scaler)."""
        return self.ctx.sub_splits(mask)

    def served_model(self, mask: SensorMask, sub: ForecastSplits, state: Optional[dict] = None,
                     fit_lift: bool = True) -> ServedModel:
        """The model served on ``mask``'s sensors, from a full-model ``state``."""
        return self.ctx.served_model(mask, sub, state, fit_lift)

    def make_schedule(self) -> Schedule:
        """The configured schedule (sparsity or budget, protected sensors, constraints)."""
        return self.ctx.make_schedule()

    # ------------------------------------------------------------------ the phases
    def warmup(self) -> dict:
        """Trains the dense model (``warmup_epochs``); returns its state (reused by every selector)."""
        return dense_warmup(self.ctx, self.record)

    def load_dense_state(self, state: dict) -> None:
        """Uses ``state`` (the :meth:`warmup` state of an earlier run on the same data and backbone)
        as this run's dense warm-up, so that several runs share one dense model; no warm-up trains."""
        self.ctx.full_model(state)  # refuses a state of another backbone or network size
        self.record.adopt_dense_state(state)

    def dense_model(self) -> tuple[nn.Module, SensorGate]:
        """The warmed-up dense backbone and its gate (the warm-up runs first if needed)."""
        model = self.ctx.full_model(self.warmup())
        return model.backbone, model.gate

    def search(self, schedule: Optional[Schedule] = None) -> SensorMask:
        """Warm-up (if not done) and mask search; returns the selected :class:`SensorMask`."""
        return mask_search(self.ctx, self.record, schedule or self.make_schedule())

    def finetune(self, mask: SensorMask, start: str = "search", checkpoint: bool = True) -> DynSTResult:
        """Sparse fine-tune on the sub-graph of ``mask``; returns the served model and its metrics.

        Args:
            mask (SensorMask): The selection (from :meth:`search` or a baseline selector).
            start (str, optional): ``"search"`` starts from the weights at the end of the
                search (DynST; the search must have run), ``"dense"`` from the dense warm-up
                (baselines) (default: ``"search"``).
            checkpoint (bool, optional): Checkpoint every epoch (when the run has a checkpoint
                directory) (default: :obj:`True`).
        """
        if mask.num_nodes != self.N:
            raise ValueError(f"`mask` covers {mask.num_nodes} sensors, the data has {self.N}")
        if start not in ("search", "dense"):
            raise ValueError(f"`start` must be 'search' or 'dense', got {start!r}")
        if start == "search" and self.record.search_state is None:
            raise ValueError("finetune(start='search') needs the search state: call search() first, "
                             "or use start='dense' to start from the dense warm-up")
        state = self.record.search_state if start == "search" else self.warmup()
        return sparse_finetune(self.ctx, self.record, mask, state, checkpoint)

    def fit(self) -> DynSTResult:
        """Warm-up, search and sparse fine-tune; the :class:`DynSTResult` of the served model."""
        t0 = time.perf_counter()
        mask = self.search()
        res = self.finetune(mask, start="search")
        res.train_seconds = time.perf_counter() - t0
        return res

    def train_dense_reference(self) -> DynSTResult:
        """The dense warm-up model fine-tuned for ``finetune_epochs`` on all sensors, with the same
        early stopping as every selector (not checkpointed: the run's checkpoint stays its own)."""
        everything = SensorMask.from_bool(torch.ones(self.N, dtype=torch.bool), method="dense")
        return self.finetune(everything, start="dense", checkpoint=False)

    # ------------------------------------------------------------------ evaluation
    def evaluate_full(self, model: ServedModel, windows: WindowDataset, index: Optional[Tensor] = None) -> dict:
        """Metrics of the zero-masked full-network model (used during warm-up and search only)."""
        return self.ctx.evaluate_full(model, windows, index)

    def evaluate_served(self, served: ServedModel, sub: ForecastSplits, split: str = "test",
                        index: Optional[Tensor] = None) -> dict:
        """Metrics of the served model: over all ``N`` sensors (``target="all"``) or the ``K`` kept ones."""
        return self.ctx.evaluate_served(served, sub, split, index)

    @torch.no_grad()
    def measure_served_speedup(self, served: ServedModel, mask: SensorMask, batch: int = 64,
                               **kwargs) -> SpeedupMeasurement:
        """Interleaved latency of a fresh dense backbone on all ``N`` sensors vs ``served`` on the kept
        ones, for the first ``batch`` test windows (``kwargs`` go to :func:`measure_speedup`)."""
        sp = self.windows
        dense = self.ctx.model_factory().to(self.device).eval()
        served.eval()
        x, _ = sp.test.batch(torch.arange(min(batch, len(sp.test))))
        xk = x[:, :, mask.keep.to(x.device)]
        ei, ew = sp.edge_index.to(self.device), sp.edge_weight.to(self.device)
        return measure_speedup(lambda: dense(x, ei, ew), lambda: served(xk), device=self.device, **kwargs)

    def served_speedup(self, served: ServedModel, mask: SensorMask, batch: int = 64, repeats: int = 7,
                       warmup: int = 2) -> tuple[float, float, float]:
        """``(dense_ms, pruned_ms, speedup)`` of :meth:`measure_served_speedup` with ``repeats`` pairs."""
        m = self.measure_served_speedup(served, mask, batch, min_repeats=repeats, max_repeats=repeats, warmup=warmup)
        return m.dense_ms, m.pruned_ms, m.ratio
