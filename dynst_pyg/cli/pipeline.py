"""``dynst-pyg prune``: build, train, report and save one run.

A run directory holds ``mask.json`` (the :class:`~dynst_pyg.selection.SensorMask`),
``model.pt`` (the served model's weights and everything needed to rebuild it),
``report.md`` (metrics vs the dense model and the reference forecasters, and the
inference speedup measured on the spot), ``metrics.json`` and ``map.png``.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional

import torch

from ..data import ForecastSplits
from ..metrics import horizons_for
from ..placement import select_sensors
from ..selection.mask import SensorMask
from ..training import REFERENCE_NAMES, DistContext, DynSTTrainer, reference_metrics, shortfalls
from .runs import save_run_model
from .run_folder import RunFolderLock, atomic_write, new_run_id, write_manifest
from .spec import RunSpec, backbone_factory, load_splits, run_config

__all__ = ["run_prune"]


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
    cfg = run_config(spec, out, constraints)
    cfg.progress = progress
    return DynSTTrainer(backbone_factory(spec, splits), splits, cfg, fingerprint_extra={"selector": spec.selector})


def run_prune(spec: RunSpec, out: str | Path, dense_reference: bool = True, progress: bool = True,
              restart: bool = False) -> dict:
    """Runs one pruning job and writes the run directory; returns the metrics summary.

    The folder is locked for the whole run (a second run on it is refused); every file is
    written atomically and ``run.json`` ties them together. A checkpoint of the same run in
    ``out/checkpoint`` is resumed; one of another run stops with
    :class:`~dynst_pyg.training.CheckpointMismatchError` unless ``restart`` deletes it first.
    Under :mod:`torch.distributed` every rank trains and rank 0 alone locks and writes.
    """
    spec.validate()
    out = _output_dir(out)
    lock = RunFolderLock(out)
    if DistContext.current().is_main:
        lock.acquire()
    try:
        return _run(spec, out, dense_reference, progress, restart)
    finally:
        lock.release()


def _run(spec: RunSpec, out: Path, dense_reference: bool, progress: bool, restart: bool) -> dict:
    torch.manual_seed(spec.seed)
    splits = load_splits(spec)
    spec = replace(spec, time_features=splits.time_features)  # "auto" resolved: the run records what it used
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
        dense = trainer.train_dense_reference().test_metrics  # from the run's dense warm-up; not checkpointed
        rows.append({"model": f"dense (N={N})", **_pick(dense)})
    # for target="kept" the reference forecasters are scored on the kept sensors only, like the pruned model
    horizons = horizons_for(splits.t_out)
    ref = reference_metrics(splits, "test", horizons=horizons, nodes=mask.keep if spec.target == "kept" else None)
    rows += [{"model": REFERENCE_NAMES[k], **_pick(m)} for k, m in ref.items()]

    # inference speedup measured now: dense backbone on N nodes vs the served model on K nodes
    speed = trainer.measure_served_speedup(result.model, mask)
    summary = {"spec": asdict(spec), "num_nodes": N, "num_kept": mask.num_kept, "sparsity": mask.sparsity,
               "test": result.test_metrics, "val": result.val_metrics, "dense_test": dense,
               "reference": ref, "dense_ms": speed.dense_ms, "pruned_ms": speed.pruned_ms,
               "infer_speedup": speed.ratio, "speedup": asdict(speed), "speedup_line": speed.line(),
               "train_seconds": seconds, "device": str(trainer.device), "processes": trainer.dist.world_size,
               "constraints": _constraint_lines(constraints, mask),
               "planted": _planted(splits, mask),
               "dropped_sensors": list(splits.dataset.meta.get("dropped_sensors", [])),
               "data_notices": list(splits.dataset.meta.get("notices", [])), "warnings": _warnings(spec, result.test_metrics, dense, ref,
                                                                          horizons)}
    if trainer.dist.is_main:
        _write_run(out, spec, splits, result, summary, rows)
    trainer.dist.barrier()
    return summary


def _planted(splits: ForecastSplits, mask: SensorMask) -> Optional[dict]:
    """How many of the synthetic network's planted redundant sensors the selection pruned."""
    planted = splits.dataset.meta.get("redundant")
    if planted is None:
        return None
    idx = [int(i) for i in planted]
    pruned = int((~mask.bool_mask[idx]).sum()) if idx else 0
    return {"planted": len(idx), "pruned": pruned}


def _warnings(spec: RunSpec, test: dict, dense: Optional[dict], ref: dict, horizons) -> list[str]:
    """One plain line when the dense or the served model fails to beat persistence or the time-of-day
    average at some horizon (none when both beat both everywhere)."""
    parts = []
    for who, m in (("the dense model", dense), (f"the {spec.selector} model", test)):
        short = [] if m is None else shortfalls(m, ref, horizons)
        if short:
            parts.append(f"{who} does not beat {' nor '.join(short)}")
    if not parts:
        return []
    return [f"Warning: {'; '.join(parts)}. Train longer (--epochs, --warmup-epochs) or try another backbone "
            f"(--backbone stid) before relying on these forecasts."]


def _write_run(out: Path, spec: RunSpec, splits: ForecastSplits, result, summary: dict, rows: list[dict]) -> None:
    """Writes the run's files atomically, then ``run.json`` naming them (the set belongs together)."""
    mask, N = result.mask, splits.num_nodes
    out.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    summary["run_id"] = run_id
    atomic_write(out / "mask.json", json.dumps(mask.to_dict(), indent=1, allow_nan=False) + "\n")
    atomic_write(out / "model.pt", save_run_model(spec, splits, result.model, mask, run_id))
    atomic_write(out / "metrics.json", json.dumps(summary, indent=2))
    _write_report(out, spec, summary, rows)
    files = ["mask.json", "model.pt", "metrics.json", "report.md"]
    try:
        from ..viz.maps import plot_region_map, plot_sensor_map

        import matplotlib.pyplot as plt

        if mask.constraints is not None and mask.constraints.regions is not None:
            fig, _ = plot_region_map(splits.dataset, mask, title=f"{spec.selector}: kept {mask.num_kept}/{N} sensors "
                                                                 f"by region (target={spec.target})")
        else:
            highlight = (splits.dataset.meta.get("redundant") if spec.dataset == "synthetic" and not spec.data
                         else None)
            fig, _ = plot_sensor_map(splits.dataset, mask, highlight=highlight, highlight_label="planted redundant",
                                     title=f"{spec.selector}: kept {mask.num_kept}/{N} sensors (target={spec.target})")
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        atomic_write(out / "map.png", png.getvalue())
        (out / "map.txt").unlink(missing_ok=True)
        files.append("map.png")
    except ValueError as exc:  # e.g. a dataset without coordinates
        atomic_write(out / "map.txt", f"no map: {exc}\n")
        (out / "map.png").unlink(missing_ok=True)
        files.append("map.txt")
    write_manifest(out, run_id, files)


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


#: How a report names the time input channels.
TIME_INPUTS = " plus time of day and day of week"


def _write_report(out: Path, spec: RunSpec, s: dict, rows: list[dict]) -> None:
    keys = ["model", "mae", "rmse", "mape", "mae_h3", "mae_h6", "mae_h12"]
    scope = (f"all {s['num_nodes']} sensors (forecast from the kept sensors' history)" if spec.target == "all"
             else f"the {s['num_kept']} kept sensors")
    text = [f"# dynst-pyg prune: {spec.data or spec.dataset}, {spec.backbone} ({spec.profile}), {spec.selector}", "",
            f"Kept {s['num_kept']} of {s['num_nodes']} sensors (sparsity {s['sparsity']:.2f}); "
            f"target=`{spec.target}`: test metrics over {scope}, original scale (MAPE in %). Seed {spec.seed}. "
            f"Run {s['run_id']}. Inputs: the readings{TIME_INPUTS if spec.time_features else ''}.", "",
            _markdown_table(rows, keys), ""]
    text += [*s["warnings"], ""] if s["warnings"] else []
    if s.get("planted"):
        p = s["planted"]
        text += [f"Planted redundant sensors pruned: {p['pruned']} of {p['planted']}.", ""]
    text += [f"Inference (batch 64, measured now): {s['speedup_line']}.", "",
             f"Training time: {s['train_seconds']:.0f} s. Files: mask.json, model.pt, metrics.json, map.png, run.json."]
    if s.get("constraints"):
        text += ["", "## Constraints", "", *s["constraints"]]
    if s.get("data_notices"):
        text += ["", "## Data", "", *(f"- {line}" for line in s["data_notices"])]
    atomic_write(out / "report.md", "\n".join(text) + "\n")
