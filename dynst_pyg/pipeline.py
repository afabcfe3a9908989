"""End-to-end runs behind ``dynst-pyg prune`` / ``evaluate``: build, train, report, save, reload.

A run directory holds ``mask.json`` (the :class:`~dynst_pyg.mask.SensorMask`),
``model.pt`` (the served model's weights and everything needed to rebuild it),
``report.md`` (metrics vs the dense model and the reference forecasters, and the
inference speedup measured on the spot), ``metrics.json`` and ``map.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .datasets import ForecastSplits, load_dataset
from .mask import SensorMask

__all__ = ["RunSpec", "SELECTOR_CHOICES", "make_backbone", "load_run_dataset", "load_splits", "run_prune", "load_run", "evaluate_run"]

#: Names accepted by ``--selector``; ``dynst`` is the default DynST schedule (see :data:`SELECTOR_ALIASES`).
SELECTOR_CHOICES = ("dynst", "dynst-oneshot", "dynst-iterative", "dynst-dropregrow", "random", "degree", "pagerank",
                    "betweenness", "qr")
#: Short selector names and the selector each stands for (the spec stores the long name).
SELECTOR_ALIASES = {"dynst": "dynst-iterative"}


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
    graph: Optional[str] = None
    drop_empty_sensors: bool = False
    time_features: bool = False
    extra: dict = field(default_factory=dict)

    def constraints(self, sensor_ids: list[str]):
        """The :class:`~dynst_pyg.constraints.SelectionConstraints` the spec asks for (:obj:`None` if none).

        ``costs`` and ``regions`` are CSV files (``sensor_id,cost``, ``sensor_id,region``); a
        name that does not exist as given is looked up in the ``data`` folder.
        """
        if self.costs is None and self.regions is None and self.cost_budget is None and self.min_per_region is None:
            return None
        from .constraints import SelectionConstraints

        if self.cost_budget is not None and self.costs is None:
            raise ValueError("--cost-budget needs --costs FILE (sensor_id,cost)")
        if self.min_per_region is not None and self.regions is None:
            raise ValueError("--min-per-region needs --regions FILE (sensor_id,region)")
        return SelectionConstraints.from_csv(sensor_ids, costs=self._find(self.costs), regions=self._find(self.regions),
                                             cost_budget=self.cost_budget, min_per_region=self.min_per_region)

    def _find(self, name: Optional[str]) -> Optional[Path]:
        if name is None:
            return None
        p = Path(name)
        if not p.exists() and self.data is not None and (Path(self.data) / name).exists():
            return Path(self.data) / name
        return p

    def validate(self) -> None:
        self.selector = SELECTOR_ALIASES.get(self.selector, self.selector)
        if self.selector not in SELECTOR_CHOICES:
            raise ValueError(f"unknown selector {self.selector!r}; expected one of {', '.join(SELECTOR_CHOICES)}")
        if self.budget is None:
            if self.sparsity is None and self.cost_budget is None:
                raise ValueError("give --sparsity, --budget or --cost-budget")
            if self.sparsity is not None and not 0.0 <= float(self.sparsity) < 1.0:
                raise ValueError(f"--sparsity must lie in [0, 1), got {self.sparsity}")
        elif self.budget < 1:
            raise ValueError(f"--budget must be a positive number of sensors, got {self.budget}")
        if self.target not in ("all", "kept"):
            raise ValueError(f"--target must be 'all' or 'kept', got {self.target!r}")
        if self.sample_pruning not in ("none", "stprune", "infobatch", "random"):
            raise ValueError(f"--sample-pruning must be stprune, infobatch, random or none, got {self.sample_pruning!r}")
        for name in ("epochs", "warmup_epochs", "search_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
        from .engine import PRECISIONS, resolve_device

        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        resolve_device(self.device)


def load_run_dataset(dataset: str = "synthetic", root: Optional[str] = None, data: Optional[str] = None,
                     nodes: int = 100, steps: int = 2016, seed: int = 0, graph: Optional[str] = None,
                     drop_empty_sensors: bool = False):
    """The dataset a command names: a folder of the user's files (``data``), else a dataset by name.

    ``graph`` and ``drop_empty_sensors`` go to :func:`~dynst_pyg.datasets.folder.load_folder`.
    """
    if data is not None:
        from .datasets.folder import load_folder

        return load_folder(data, graph=graph, drop_empty_sensors=drop_empty_sensors)
    if graph is not None or drop_empty_sensors:
        raise ValueError("--graph and --drop-empty-sensors apply to --data DIR (your own folder) only")
    if dataset == "synthetic":
        return load_dataset("synthetic", num_nodes=nodes, num_steps=steps, redundant_fraction=0.3, seed=seed)
    return load_dataset(dataset, root=root)


def load_splits(spec: RunSpec) -> ForecastSplits:
    """The dataset of a run, windowed 12 -> 12 with its standard split."""
    from .datasets import SPLIT_RATIOS

    ds = load_run_dataset(spec.dataset, spec.root, spec.data, spec.nodes, spec.steps, spec.seed, spec.graph,
                          spec.drop_empty_sensors)
    return ds.prepare(ratios=SPLIT_RATIOS.get(ds.name, (0.7, 0.1, 0.2)), time_features=spec.time_features)


def make_backbone(name: str, num_nodes: int, in_features: int = 1, out_features: int = 1, t_in: int = 12,
                  t_out: int = 12, profile: str = "small", adaptive_topk: Optional[int] = None) -> nn.Module:
    """A backbone by name: ``gwnet``, ``dcrnn`` or the name of a PyG-Temporal recurrent cell (e.g. ``GConvGRU``).

    ``adaptive_topk`` keeps ``k`` entries per row of Graph WaveNet's adaptive adjacency (large networks).
    """
    if adaptive_topk is not None and name != "gwnet":
        raise ValueError(f"--adaptive-topk applies to gwnet only, not {name!r}")
    if name == "gwnet":
        from .models import GraphWaveNet

        return GraphWaveNet(num_nodes, in_features, out_features, t_in, t_out, profile=profile,
                            adaptive_topk=adaptive_topk)
    if name == "dcrnn":
        from .models import DCRNN

        return DCRNN(num_nodes, in_features, out_features, t_in, t_out, profile=profile)
    from .models import TGTAdapter, resolve_cell

    try:
        resolve_cell(name)
    except (ValueError, AttributeError, ImportError) as exc:
        raise ValueError(f"unknown backbone {name!r}: use gwnet, dcrnn or a PyG-Temporal recurrent cell name "
                         f"such as GConvGRU, TGCN, A3TGCN ({exc})") from exc
    hidden = 32 if profile == "small" else 64
    kwargs: dict[str, Any] = {}
    if name in ("GConvGRU", "GConvLSTM"):
        kwargs["K"] = 2
    if name == "A3TGCN":
        kwargs["periods"] = t_in
    return TGTAdapter(name, num_nodes, in_features, out_features, hidden, t_in, t_out, **kwargs)


def _config(spec: RunSpec, out: Optional[Path], constraints=None):
    from .trainer import DynSTConfig

    schedule = spec.selector.split("-", 1)[1] if spec.selector.startswith("dynst-") else "oneshot"
    return DynSTConfig(sparsity=None if spec.budget else spec.sparsity, budget=spec.budget, schedule=schedule,
                       target=spec.target, warmup_epochs=spec.warmup_epochs, search_epochs=spec.search_epochs,
                       finetune_epochs=spec.epochs, seed=spec.seed, max_batches=spec.max_batches,
                       batch_size=spec.batch_size,
                       sample_pruning=None if spec.sample_pruning == "none" else spec.sample_pruning,
                       checkpoint_dir=None if out is None else str(out / "checkpoint"), device=spec.device,
                       precision=spec.precision, constraints=constraints, **spec.extra)


def _markdown_table(rows: list[dict], keys: list[str]) -> str:
    head = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n"
    body = ""
    for r in rows:
        body += "| " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |\n"
    return head + body


def _output_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a directory for mask.json, model.pt and report.md")
    return out


def _trainer(spec: RunSpec, splits: ForecastSplits, out: Optional[Path], progress: bool = False, constraints=None):
    from .trainer import DynSTTrainer

    N = splits.num_nodes

    def factory():
        return make_backbone(spec.backbone, N, splits.in_features, splits.out_features, splits.t_in, splits.t_out,
                             spec.profile, spec.adaptive_topk)

    cfg = _config(spec, out, constraints)
    cfg.progress = progress
    return DynSTTrainer(factory, splits, cfg, fingerprint_extra={"selector": spec.selector})


def run_prune(spec: RunSpec, out: str | Path, dense_reference: bool = True, progress: bool = True,
              restart: bool = False) -> dict:
    """Runs one pruning job and writes the run directory; returns the metrics summary.

    A checkpoint of the same run in ``out/checkpoint`` is resumed; one of another run stops
    with :class:`~dynst_pyg.checkpoint.CheckpointMismatchError` unless ``restart`` deletes it
    first. Under :mod:`torch.distributed` every rank trains and rank 0 alone writes.
    """
    from .baselines import reference_metrics
    from .placement import select_sensors

    spec.validate()
    out = _output_dir(out)
    torch.manual_seed(spec.seed)
    splits = load_splits(spec)
    N = splits.num_nodes
    constraints = spec.constraints(splits.dataset.sensor_id)
    trainer = _trainer(spec, splits, out, progress, constraints)
    if restart:
        trainer.checkpoints.clear()
    t0 = time.perf_counter()
    if spec.selector.startswith("dynst-"):
        result = trainer.fit()
    else:
        mask = select_sensors(spec.selector, splits, sparsity=None if spec.budget else spec.sparsity,
                              budget=spec.budget, seed=spec.seed, constraints=constraints)
        result = trainer.finetune(mask, start="dense")
    seconds = time.perf_counter() - t0
    mask = result.mask

    rows = [{"model": f"{spec.selector} (K={mask.num_kept})", **_pick(result.test_metrics)}]
    dense = None
    if dense_reference:
        dense = trainer.dense_metrics()  # reuses the run's dense warm-up; not checkpointed
        rows.append({"model": f"dense (N={N})", **_pick(dense)})
    # for target="kept" the reference forecasters are scored on the kept sensors only, like the pruned model
    ref = reference_metrics(splits, "test", horizons=tuple(h for h in (3, 6, 12) if h <= splits.t_out),
                            nodes=mask.keep if spec.target == "kept" else None)
    rows += [{"model": "persistence", **_pick(ref["persistence"])},
             {"model": "historical average", **_pick(ref["historical_average"])}]

    # inference speedup measured now: dense backbone on N nodes vs the served model on K nodes
    d_ms, p_ms, speed = trainer.served_speedup(result.model, mask)
    summary = {"spec": asdict(spec), "num_nodes": N, "num_kept": mask.num_kept, "sparsity": mask.sparsity,
               "test": result.test_metrics, "val": result.val_metrics, "dense_test": dense,
               "reference": ref, "dense_ms": d_ms, "pruned_ms": p_ms, "infer_speedup": speed,
               "train_seconds": seconds, "device": str(trainer.device), "processes": trainer.dist.world_size,
               "constraints": _constraint_lines(constraints, mask),
               "dropped_sensors": list(splits.dataset.meta.get("dropped_sensors", [])),
               "data_notices": list(splits.dataset.meta.get("notices", []))}
    if trainer.dist.is_main:
        _write_run(out, spec, splits, result, summary, rows)
    trainer.dist.barrier()
    return summary


def _write_run(out: Path, spec: RunSpec, splits: ForecastSplits, result, summary: dict, rows: list[dict]) -> None:
    mask, N = result.mask, splits.num_nodes
    out.mkdir(parents=True, exist_ok=True)
    mask.save(out / "mask.json")
    torch.save({"spec": asdict(spec), "state_dict": {k: v.cpu() for k, v in result.model.state_dict().items()},
                "mask": mask.to_dict(), "scaler": splits.scaler.state_dict()}, out / "model.pt")
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    _write_report(out, spec, summary, rows)
    try:
        from .plot import plot_region_map, plot_sensor_map

        import matplotlib.pyplot as plt

        if mask.constraints is not None and mask.constraints.regions is not None:
            fig, _ = plot_region_map(splits.dataset, mask, title=f"{spec.selector}: kept {mask.num_kept}/{N} sensors "
                                                                 f"by region (target={spec.target})")
        else:
            highlight = (splits.dataset.meta.get("redundant") if spec.dataset == "synthetic" and not spec.data
                         else None)
            fig, _ = plot_sensor_map(splits.dataset, mask, highlight=highlight, highlight_label="planted redundant",
                                     title=f"{spec.selector}: kept {mask.num_kept}/{N} sensors (target={spec.target})")
        fig.savefig(out / "map.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    except ValueError as exc:  # e.g. a dataset without coordinates
        (out / "map.txt").write_text(f"no map: {exc}\n")


def _constraint_lines(constraints, mask: SensorMask) -> list[str]:
    """What the report says about the constraints: the rules, the kept cost, kept sensors per region."""
    if constraints is None:
        return []
    lines = [f"- rules: `{constraints!r}`"]
    cost = constraints.kept_cost(mask.bool_mask)
    if cost is not None:
        budget = "" if constraints.cost_budget is None else f" (budget {constraints.cost_budget:g})"
        lines.append(f"- kept cost: {cost:g}{budget}")
    if constraints.regions is not None:
        keep = mask.bool_mask.tolist()
        per: dict[str, list[int]] = {}
        for r, k in zip(constraints.regions, keep):
            per.setdefault(str(r), [0, 0])
            per[str(r)][0] += int(k)
            per[str(r)][1] += 1
        mins = constraints.region_minima
        lines.append("- kept per region: " + ", ".join(
            f"{r} {k}/{n}" + (f" (min {mins[r]})" if r in mins else "") for r, (k, n) in sorted(per.items())))
    bad = constraints.violations(mask.bool_mask)
    lines.append("- satisfied: yes" if not bad else "- VIOLATED: " + "; ".join(bad))
    return lines


def _pick(m: dict) -> dict:
    return {k: m[k] for k in ("mae", "rmse", "mape", "mae_h3", "mae_h6", "mae_h12") if k in m}


def _write_report(out: Path, spec: RunSpec, s: dict, rows: list[dict]) -> None:
    keys = ["model", "mae", "rmse", "mape", "mae_h3", "mae_h6", "mae_h12"]
    scope = (f"all {s['num_nodes']} sensors (forecast from the kept sensors' history)" if spec.target == "all"
             else f"the {s['num_kept']} kept sensors")
    text = [f"# dynst-pyg prune: {spec.data or spec.dataset}, {spec.backbone} ({spec.profile}), {spec.selector}", "",
            f"Kept {s['num_kept']} of {s['num_nodes']} sensors (sparsity {s['sparsity']:.2f}); "
            f"target=`{spec.target}`: test metrics over {scope}, original scale (MAPE in %). Seed {spec.seed}.", "",
            _markdown_table(rows, keys), "",
            f"Inference (batch 64, median of 7, measured now): dense {s['dense_ms']:.1f} ms, "
            f"pruned {s['pruned_ms']:.1f} ms, speedup **{s['infer_speedup']:.2f}x**.", "",
            f"Training time: {s['train_seconds']:.0f} s. Files: mask.json, model.pt, metrics.json, map.png."]
    if s.get("constraints"):
        text += ["", "## Constraints", "", *s["constraints"]]
    if s.get("data_notices"):  # what the folder loader did: graph built, sensors dropped, ...
        text += ["", "## Data", "", *(f"- {line}" for line in s["data_notices"])]
    (out / "report.md").write_text("\n".join(text) + "\n")


def load_run(run_dir: str | Path, device: Optional[str] = None):
    """Rebuilds ``(spec, splits, mask, served_model, trainer, sub_splits)`` from a run directory
    (on ``device``; default: the device the run was trained with, if this machine has it, else auto)."""
    run_dir = Path(run_dir)
    for f in ("mask.json", "model.pt"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir / f} not found: point --run at a directory written by `dynst-pyg prune`")
    try:
        ck = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)
        spec = RunSpec(**ck["spec"])
        state = ck["state_dict"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{run_dir / 'model.pt'} is not a model file written by `dynst-pyg prune` "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); run prune again") from exc
    try:
        mask = SensorMask.load(run_dir / "mask.json")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{run_dir / 'mask.json'} is not a valid mask file ({exc})") from exc
    splits = load_splits(spec)
    if mask.num_nodes != splits.num_nodes:
        raise ValueError(f"mask.json covers {mask.num_nodes} sensors but the dataset has {splits.num_nodes}")
    if device is not None:
        spec.device = device
    elif spec.device != "cpu":
        spec.device = "auto"
    if spec.target == "all" and "lift.prop_weight" not in state:
        spec.extra = {**spec.extra, "lift": "harmonic"}  # a run saved before the ridge lift existed
    trainer = _trainer(spec, splits, None)
    sub = trainer.sub_splits(mask)
    served = trainer.served_model(mask, sub, fit_lift=False)
    try:
        served.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{run_dir / 'model.pt'} does not fit the model its spec describes "
                         f"({str(exc).strip().splitlines()[-1].strip()})") from exc
    return spec, splits, mask, served.eval(), trainer, sub


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto") -> dict:
    """Metrics of a saved run's served model on ``split``, computed on ``device``."""
    spec, splits, mask, served, trainer, sub = load_run(run_dir, device=device)
    return trainer.evaluate_served(served, sub, split)
