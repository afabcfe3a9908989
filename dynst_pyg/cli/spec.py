"""What defines a run of ``dynst-pyg prune``: the :class:`RunSpec`, its data and its configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from torch import nn

from ..data import SPLIT_RATIOS, ForecastSplits, prepare
from ..datasets import load_dataset
from ..datasets.folder import load_folder
from ..models import make_backbone
from ..sampling import POLICIES
from ..selection.constraints import SelectionConstraints
from ..training.config import DynSTConfig

__all__ = ["SELECTOR_CHOICES", "SELECTOR_ALIASES", "RunSpec", "read_sensor_ids", "load_run_dataset", "load_splits", "run_config", "backbone_factory"]

#: Names accepted by ``--selector``.
SELECTOR_CHOICES = ("dynst", "dynst-oneshot", "dynst-iterative", "dynst-dropregrow", "random", "degree", "pagerank",
                    "betweenness", "qr", "backward-elimination")
#: Shorter names ``--selector`` also accepts.
SELECTOR_ALIASES = {"dynst": "dynst-iterative"}


#: Configuration fields set by a ``prune`` flag of another name or spelling.
_FLAGS = {"finetune_epochs": "--epochs", "warmup_epochs": "--warmup-epochs", "search_epochs": "--search-epochs",
          "sparsity": "--sparsity", "budget": "--budget", "target": "--target", "precision": "--precision",
          "device": "--device", "batch_size": "--batch-size", "max_batches": "--max-batches",
          "sample_pruning": "--sample-pruning", "finetune_lr": "--finetune-lr",
          "finetune_validate_start": "--finetune-validate-start"}


@dataclass
class RunSpec:
    """Everything that defines a pruning run (saved with the model so it can be rebuilt)."""

    dataset: str = "synthetic"
    root: Optional[str] = None
    data: Optional[str] = None
    nodes: int = 100
    steps: int = 2016
    backbone: str = "gwnet"
    profile: str = "small"
    adaptive_topk: Optional[int] = None
    selector: str = "dynst-iterative"
    sparsity: Optional[float] = 0.5
    budget: Optional[int] = None
    target: str = "all"
    epochs: int = 6
    finetune_lr: Optional[float] = None
    finetune_validate_start: bool = False
    warmup_epochs: int = 2
    search_epochs: int = 2
    sample_pruning: str = "none"
    seed: int = 0
    max_batches: Optional[int] = None
    batch_size: int = 64
    device: str = "auto"
    precision: str = "32"
    costs: Optional[str] = None
    regions: Optional[str] = None
    cost_budget: Optional[float] = None
    min_per_region: Optional[int] = None
    protected: Optional[str] = None
    graph: Optional[str] = None
    drop_empty_sensors: bool = False
    time_features: Optional[bool] = None
    extra: dict = field(default_factory=dict)

    def constraints(self, sensor_ids: list[str]) -> Optional[SelectionConstraints]:
        """The :class:`~dynst_pyg.selection.SelectionConstraints` the spec asks for (:obj:`None` if none).

        ``costs`` and ``regions`` are CSV files (``sensor_id,cost``, ``sensor_id,region``);
        ``protected`` lists sensor ids always kept, one per line (a ``sensor_id`` header is
        allowed). A name that does not exist as given is looked up in the ``data`` folder.
        """
        if all(v is None for v in (self.costs, self.regions, self.cost_budget, self.min_per_region, self.protected)):
            return None
        if self.cost_budget is not None and self.costs is None:
            raise ValueError("--cost-budget needs --costs FILE (sensor_id,cost)")
        if self.min_per_region is not None and self.regions is None:
            raise ValueError("--min-per-region needs --regions FILE (sensor_id,region)")
        protected = None if self.protected is None else read_sensor_ids(self._find(self.protected))
        return SelectionConstraints.from_csv(sensor_ids, costs=self._find(self.costs), regions=self._find(self.regions),
                                             cost_budget=self.cost_budget, min_per_region=self.min_per_region,
                                             protected_ids=protected)

    def _find(self, name: Optional[str]) -> Optional[Path]:
        if name is None:
            return None
        p = Path(name)
        if not p.exists() and self.data is not None and (Path(self.data) / name).exists():
            return Path(self.data) / name
        return p

    def validate(self) -> None:
        """Checks what only the command line decides, then every setting of the run's :class:`DynSTConfig`."""
        self.selector = SELECTOR_ALIASES.get(self.selector, self.selector)
        if self.selector not in SELECTOR_CHOICES:
            raise ValueError(f"unknown selector {self.selector!r}; expected one of {', '.join(SELECTOR_CHOICES)}")
        if self.budget is None and self.sparsity is None and self.cost_budget is None:
            raise ValueError("give --sparsity, --budget or --cost-budget")
        if self.sample_pruning != "none" and self.sample_pruning not in POLICIES:
            raise ValueError(f"--sample-pruning must be one of {', '.join(POLICIES)} or none, "
                             f"got {self.sample_pruning!r}")
        if self.time_features not in (None, True, False):
            raise ValueError(f"time_features must be True, False or None (auto), got {self.time_features!r}")
        for name in ("epochs", "warmup_epochs", "search_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
        try:
            run_config(self, None).validate_fields()
        except ValueError as exc:  # name the flag the user typed, not the configuration field
            msg = str(exc)
            for field_name, flag in _FLAGS.items():
                msg = msg.replace(f"`{field_name}`", flag)
            raise ValueError(msg) from None

def read_sensor_ids(path: Path) -> list[str]:
    """Sensor ids listed one per line in ``path`` (blank lines skipped, an optional ``sensor_id`` header)."""
    if not path.is_file():
        raise FileNotFoundError(f"--protected {path}: file not found (one sensor id per line)")
    rows = [line.strip().strip('"') for line in path.read_text().splitlines()]
    ids = [r for r in rows if r]
    if ids and ids[0].lower() == "sensor_id":
        ids = ids[1:]
    if not ids:
        raise ValueError(f"--protected {path} lists no sensor id (expected one id per line)")
    bad = [i for i, r in enumerate(rows, 1) if "," in r]
    if bad:
        raise ValueError(f"--protected {path}, row {bad[0]}: expected one sensor id per line, got {rows[bad[0] - 1]!r}")
    return ids


def load_run_dataset(dataset: str = "synthetic", root: Optional[str] = None, data: Optional[str] = None,
                     nodes: int = 100, steps: int = 2016, seed: int = 0, graph: Optional[str] = None,
                     drop_empty_sensors: bool = False):
    """The dataset a command names: a folder of the user's files (``data``), else a dataset by name."""
    if data is not None:
        return load_folder(data, graph=graph, drop_empty_sensors=drop_empty_sensors)
    if graph is not None or drop_empty_sensors:
        raise ValueError("--graph and --drop-empty-sensors apply to --data DIR (your own folder) only")
    if dataset == "synthetic":
        return load_dataset("synthetic", num_nodes=nodes, num_steps=steps, redundant_fraction=0.3, seed=seed)
    return load_dataset(dataset, root=root)


def load_splits(spec: RunSpec) -> ForecastSplits:
    """The dataset of a run, windowed 12 -> 12 with its standard split."""
    ds = load_run_dataset(spec.dataset, spec.root, spec.data, spec.nodes, spec.steps, spec.seed, spec.graph,
                          spec.drop_empty_sensors)
    return prepare(ds, ratios=SPLIT_RATIOS.get(ds.name, (0.7, 0.1, 0.2)),
                   time_features=uses_time_features(spec, ds.start is not None))


def uses_time_features(spec: RunSpec, has_timestamps: bool) -> bool:
    """Whether a run appends time-of-day and day-of-week input channels.

    STID always does (it reads them). Otherwise ``spec.time_features`` decides; :obj:`None` (the
    default, "auto") means on when the series has timestamps (a start time) and off when its
    times are step numbers.
    """
    if spec.backbone == "stid":
        return True
    return has_timestamps if spec.time_features is None else bool(spec.time_features)


def run_config(spec: RunSpec, out: Optional[Path], constraints=None) -> DynSTConfig:
    """The :class:`DynSTConfig` of a run (checkpoints under ``out/checkpoint`` when ``out`` is given)."""
    schedule = spec.selector.split("-", 1)[1] if spec.selector.startswith("dynst-") else "oneshot"
    return DynSTConfig(sparsity=None if spec.budget else spec.sparsity, budget=spec.budget, schedule=schedule,
                       target=spec.target, warmup_epochs=spec.warmup_epochs, search_epochs=spec.search_epochs,
                       finetune_epochs=spec.epochs, finetune_lr=spec.finetune_lr,
                       finetune_validate_start=spec.finetune_validate_start, seed=spec.seed, max_batches=spec.max_batches,
                       batch_size=spec.batch_size,
                       sample_pruning=None if spec.sample_pruning == "none" else spec.sample_pruning,
                       checkpoint_dir=None if out is None else str(out / "checkpoint"), device=spec.device,
                       precision=spec.precision, constraints=constraints, **spec.extra)


def backbone_factory(spec: RunSpec, splits: ForecastSplits) -> Callable[[], nn.Module]:
    """A function that builds a fresh full-network backbone of ``spec`` for ``splits``."""
    N = splits.num_nodes

    def factory() -> nn.Module:
        return make_backbone(spec.backbone, N, splits.in_features, splits.out_features, splits.t_in, splits.t_out,
                             spec.profile, spec.adaptive_topk)

    return factory
