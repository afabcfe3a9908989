"""``dynst-pyg prune``: build, train, report and save one run.

A run directory holds ``mask.json`` (the :class:`~dynst_pyg.selection.SensorMask`),
``model.pt`` (the served model's weights and everything needed to rebuild it),
``report.md`` (metrics vs the dense model and the reference forecasters, and the
inference speedup measured on the spot), ``metrics.json`` and ``map.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch

from ..data import ForecastSplits
from ..metrics import horizons_for
from ..placement import select_sensors
from ..selection.mask import SensorMask
from ..training import DynSTTrainer, reference_metrics
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

    A checkpoint of the same run in ``out/checkpoint`` is resumed; one of another run stops
    with :class:`~dynst_pyg.training.CheckpointMismatchError` unless ``restart`` deletes it
    first. Under :mod:`torch.distributed` every rank trains and rank 0 alone writes.
    """
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
    ref = reference_metrics(splits, "test", horizons=horizons_for(splits.t_out),
                            nodes=mask.keep if spec.target == "kept" else None)
    rows += [{"model": "persistence", **_pick(ref["persistence"])},
             {"model": "historical average", **_pick(ref["historical_average"])}]

    # inference speedup measured now: dense backbone on N nodes vs the served model on K nodes
    d_ms, p_ms, speed = trainer.served_speedup(result.model, mask)
    summary = {"spec": asdict(spec), "num_nodes": N, "num_kept": mask.num_kept, "sparsity": mask.sparsity,
               "test": result.test_metrics, "val": result.val_metrics, "dense_test": dense,
               "reference": ref, "dense_ms": d_ms, "pruned_ms": p_ms, "infer_speedup": speed,
               "train_seconds": seconds, "device": str(trainer.device), "processes": trainer.dist.world_size,
               "constraints": _constraint_lines(constraints, mask)}
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
    (out / "report.md").write_text("\n".join(text) + "\n")
