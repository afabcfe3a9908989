"""Sensor selection under constraints on Los-loop: DynST vs cost-aware QR vs random at equal cost budget.

The problem (fixed, independent of the training seed):

* **regions**: the 207 sensors are split into 8 districts by k-means of their coordinates.
  Coordinates (lon, lat) are first mapped to a local plane in km (equirectangular around the
  network's mean point: ``x = 111.32 cos(lat0) (lon - lon0)``, ``y = 110.57 (lat - lat0)``);
  k-means++ initialisation with ``numpy.random.default_rng(0)``, then Lloyd iterations until no
  sensor changes district. Districts are named ``D1..D8`` west to east (by centroid x).
* **costs** (synthetic): ``cost_i = 1 + d_i / max_j d_j`` with ``d_i`` the planar distance (km)
  of sensor ``i`` to the network centroid, so central sensors cost 1 and the most remote 2
  (a remote sensor needs a longer line / more travel to maintain).
* **constraints**: ``SelectionConstraints(costs, cost_budget=f * sum(costs), regions,
  min_per_region=2)`` for each cost fraction ``f`` (default 0.5).

Every selector gets the same constraints and no count target (``sparsity=None``: keep as many
sensors as the budget allows), so the comparison is MAE at equal cost budget; the kept count
and the cost actually used are reported. One trainer per (seed, fraction): its dense warm-up is
shared by all selectors; DynST (``schedule="oneshot"``) searches from it and fine-tunes from the
search weights (``trainer.fit()``), cost-aware QR (``select_sensors("qr", ...)``: pivots by
residual norm minus a cost penalty, CCQR-like), ``qr-plain`` (the same QR with
``cost_penalty=0``: pivots by residual norm, skipping sensors that no longer fit) and random
pick their masks from the training series / seed and get the same sparse fine-tune from the
dense warm-up (``trainer.finetune(mask, start="dense")``). References: the dense model (warm-up fine-tuned on
all sensors, ``trainer.train_dense_reference()``; it ignores the budget), persistence and the
time-of-day historical average (no training). Output mode ``target="all"``: MAE over all 207
sensors, forecast from the kept sensors' history (backbone on K nodes + ridge lift head).

    python benchmarks/constraints_tradeoff.py --threads 1 --out benchmarks/results/constraints_tradeoff.json
    python benchmarks/constraints_tradeoff.py --cost-fractions 0.3 0.5 0.7 --seeds 0

Prints a markdown table (mean ± std over seeds) and writes ``--out`` JSON with one row per
(selector, cost fraction, seed), the regions and costs, device, threads and training budget.
Split: chronological 7:1:2 (val/test windows whose targets overlap the previous split dropped).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynst_pyg.data import prepare
from dynst_pyg.training.references import reference_metrics
from dynst_pyg.selection.constraints import SelectionConstraints
from dynst_pyg.datasets import load_los_loop
from dynst_pyg.training.engine import resolve_device
from dynst_pyg.models import make_backbone
from dynst_pyg.placement.selectors import make_selector, select_sensors
from dynst_pyg.training import DynSTConfig, DynSTTrainer

SELECTORS = ["dense", "dynst", "qr", "qr-plain", "random", "degree", "pagerank"]
DEFAULT_SELECTORS = ["dense", "dynst", "qr", "qr-plain", "random"]
REFERENCES = ["persistence", "time_of_day"]
METRICS = ("mae", "rmse", "mae_h3", "mae_h6", "mae_h12")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gwnet", help="gwnet or dcrnn (small profile)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--cost-fractions", type=float, nargs="+", default=[0.5],
                   help="cost budget as a fraction of the total cost of all sensors")
    p.add_argument("--regions", type=int, default=8, help="number of k-means districts")
    p.add_argument("--min-per-region", type=int, default=2)
    p.add_argument("--selectors", nargs="+", default=DEFAULT_SELECTORS, choices=SELECTORS)
    p.add_argument("--schedule", default="oneshot", choices=["oneshot", "iterative", "dropregrow"],
                   help="DynST schedule")
    p.add_argument("--warmup-epochs", type=int, default=3)
    p.add_argument("--search-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--max-batches", type=int, default=6, help="cap on batches per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--out", default="benchmarks/results/constraints_tradeoff.json")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="only merge these result files (e.g. one per seed) into --out and print the table")
    a = p.parse_args(argv)
    for f in a.cost_fractions:
        if not 0.0 < f <= 1.0:
            p.error(f"--cost-fractions must lie in (0, 1], got {f}")
    return a


# ---------------------------------------------------------------------------- the problem
def planar_km(pos: np.ndarray) -> np.ndarray:
    """(lon, lat) in degrees -> local plane in km, equirectangular around the mean point."""
    lon0, lat0 = pos.mean(axis=0)
    x = 111.32 * math.cos(math.radians(lat0)) * (pos[:, 0] - lon0)
    y = 110.57 * (pos[:, 1] - lat0)
    return np.stack([x, y], axis=1)


def kmeans(xy: np.ndarray, k: int, seed: int = 0, max_iter: int = 300) -> np.ndarray:
    """Labels ``0..k-1`` of a seeded k-means (k-means++ start, Lloyd until stable), numbered by centroid x."""
    rng = np.random.default_rng(seed)
    centres = [xy[rng.integers(len(xy))]]
    for _ in range(1, k):
        d2 = ((xy[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1).min(axis=1)
        centres.append(xy[rng.choice(len(xy), p=d2 / d2.sum())])
    centres = np.asarray(centres)
    labels = np.full(len(xy), -1)
    for _ in range(max_iter):
        new = ((xy[:, None, :] - centres[None]) ** 2).sum(-1).argmin(axis=1)
        if (new == labels).all():
            break
        labels = new
        for j in range(k):
            if (labels == j).any():
                centres[j] = xy[labels == j].mean(axis=0)
    order = np.argsort(centres[:, 0], kind="stable")  # west to east
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels]


def problem(pos: torch.Tensor, k: int) -> tuple[list[str], np.ndarray]:
    """Region labels (``D1..Dk``) and synthetic costs (``1 + distance to centroid / max``) per sensor."""
    xy = planar_km(pos.double().numpy())
    regions = [f"D{j + 1}" for j in kmeans(xy, k, seed=0)]
    d = np.linalg.norm(xy - xy.mean(axis=0), axis=1)
    costs = 1.0 + d / d.max()
    return regions, costs


def region_counts(cons: SelectionConstraints, keep: torch.Tensor) -> dict[str, int]:
    labels = cons.regions
    kept = keep.cpu().numpy()
    return {lab: int(sum(1 for i, l in enumerate(labels) if l == lab and kept[i])) for lab in cons.region_labels}


# ---------------------------------------------------------------------------- the run
def row(selector, frac, seed, m, keep, cons, costs, seconds):
    n = len(costs)
    keep = torch.ones(n, dtype=torch.bool) if keep is None else keep
    counts = region_counts(cons, keep)
    out = {"dataset": "los-loop", "selector": selector, "cost_fraction": frac, "seed": seed, "target": "all",
           "num_kept": int(keep.sum()), "kept_cost": float(costs[keep.cpu().numpy()].sum()),
           "cost_budget": cons.cost_budget, "total_cost": float(costs.sum()),
           "regions_met": sum(1 for lab, c in counts.items() if c >= cons.region_minima[lab]),
           "num_regions": len(counts), "min_kept_in_region": min(counts.values()), "region_counts": counts,
           "violations": cons.violations(keep), "seconds": seconds}
    out.update({k: m[k] for k in METRICS + ("mape",)})
    return out


def main(argv=None):
    args = parse(argv)
    if args.merge:
        rows, meta, commands, seconds = [], None, [], 0.0
        for f in args.merge:
            obj = json.loads(Path(f).read_text())
            # reference rows (no seed) are the same in every file: keep the first file's
            rows += [r for r in obj["rows"] if r["seed"] is not None or meta is None]
            meta = meta or obj["meta"]
            commands.append(obj["meta"]["command"])
            seconds += obj["meta"].get("seconds", 0.0)
        meta.update(command=commands, merge_command=" ".join(sys.argv), seconds=seconds)
        meta["seeds"] = sorted({r["seed"] for r in rows if r["seed"] is not None})
        _dump(Path(args.out), meta, rows)
        print(table(rows))
        return
    torch.set_num_threads(args.threads)
    ds = load_los_loop()
    splits = prepare(ds)
    N = splits.num_nodes
    regions, costs = problem(ds.pos, args.regions)
    t_start = time.time()
    rows = []

    def factory():
        return make_backbone(args.model, N, splits.in_features, splits.out_features, splits.t_in, splits.t_out,
                             "small")

    def cons_for(frac):
        return SelectionConstraints(costs=costs, cost_budget=frac * float(costs.sum()), regions=regions,
                                    min_per_region=args.min_per_region)

    ref = reference_metrics(splits, "test", horizons=(3, 6, 12))
    for name in REFERENCES:  # no training, no seed: all sensors' own history
        rows.append(row(name, None, None, ref[name], None, cons_for(args.cost_fractions[0]), costs, 0.0))
    meta = _meta(args, regions, costs)
    for seed in args.seeds:
        for fi, frac in enumerate(args.cost_fractions):
            cons = cons_for(frac)
            cfg = DynSTConfig(sparsity=None, constraints=cons, schedule=args.schedule, target="all",
                              warmup_epochs=args.warmup_epochs, search_epochs=args.search_epochs,
                              finetune_epochs=args.finetune_epochs, max_batches=args.max_batches,
                              batch_size=args.batch_size, seed=seed, progress=False, device=args.device)
            trainer = DynSTTrainer(factory, splits, cfg)
            t0 = time.time()
            trainer.warmup()
            warm = time.time() - t0
            if "dense" in args.selectors and fi == 0:  # independent of the budget
                t0 = time.time()
                m = trainer.train_dense_reference().test_metrics
                rows.append(row("dense", None, seed, m, None, cons, costs, time.time() - t0 + warm))
                _log(seed, frac, "dense", rows[-1], t_start)
            for sel in args.selectors:
                if sel == "dense":
                    continue
                t0 = time.time()
                if sel == "dynst":
                    res = trainer.fit()
                    name = f"dynst-{args.schedule}"
                elif sel == "qr-plain":  # pivots by residual norm only, skipping what no longer fits
                    mask = make_selector("qr", constraints=cons, cost_penalty=0.0).fit(splits).mask_
                    res = trainer.finetune(mask, start="dense")
                    name = sel
                else:
                    mask = select_sensors(sel, splits, sparsity=None, constraints=cons, seed=seed)
                    res = trainer.finetune(mask, start="dense")
                    name = sel
                rows.append(row(name, frac, seed, res.test_metrics, res.mask.bool_mask, cons, costs,
                                time.time() - t0))
                _log(seed, frac, name, rows[-1], t_start)
            meta["seconds"] = time.time() - t_start
            _dump(Path(args.out), meta, rows)
    meta["seconds"] = time.time() - t_start
    _dump(Path(args.out), meta, rows)
    print(table(rows))


def _log(seed, frac, name, r, t_start):
    print(f"[seed {seed} f={frac}] {name}: MAE {r['mae']:.3f} (K={r['num_kept']}, cost {r['kept_cost']:.1f}"
          f"/{r['cost_budget']:.1f}, regions {r['regions_met']}/{r['num_regions']}, {r['seconds']:.0f}s; "
          f"total {time.time() - t_start:.0f}s)", flush=True)


def _meta(args, regions, costs):
    labels = sorted(set(regions), key=lambda s: int(s[1:]))
    return {"command": " ".join(sys.argv), "machine": f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} threads", "torch": torch.__version__,
            "split": "chronological 7:1:2", "metric_scale": "original (mph); MAPE in %", "target": "all",
            "device": str(resolve_device(args.device)), "threads": torch.get_num_threads(), "model": args.model,
            "seeds": args.seeds, "cost_fractions": args.cost_fractions, "dynst_schedule": args.schedule,
            "budget": {"warmup_epochs": args.warmup_epochs, "search_epochs": args.search_epochs,
                       "finetune_epochs": args.finetune_epochs, "max_batches": args.max_batches,
                       "batch_size": args.batch_size},
            "regions_rule": "k-means (k-means++ init, numpy default_rng(0), Lloyd to convergence) of the "
                            "sensor coordinates in a local km plane; D1..Dk west to east",
            "cost_rule": "cost_i = 1 + d_i / max d, d_i = planar km distance to the network centroid",
            "min_per_region": args.min_per_region, "total_cost": float(costs.sum()),
            "regions": {lab: {"sensors": regions.count(lab),
                              "cost": float(sum(c for r, c in zip(regions, costs) if r == lab))} for lab in labels},
            "sensor_region": regions, "sensor_cost": [round(float(c), 6) for c in costs]}


def _dump(out: Path, meta, rows):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


def table(rows) -> str:
    """Markdown table: mean ± std over seeds per (cost fraction, selector)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["cost_fraction"], r["selector"]), []).append(r)
    lines = ["| cost budget | selector | kept K | kept cost | regions met (min kept) | MAE | RMSE | MAE h3 | "
             "MAE h6 | MAE h12 | seeds |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def ms(vals, fmt=".3f"):
        if len(set(vals)) > 1:
            return f"{statistics.mean(vals):{fmt}} ± {statistics.stdev(vals):{fmt}}"
        return f"{vals[0]:{fmt}}"

    def rank(key):
        frac, sel = key
        ref = sel in REFERENCES or sel == "dense"
        return (frac is not None, frac or 0.0, not ref, sel)

    for key in sorted(groups, key=rank):
        g = groups[key]
        frac, sel = key
        budget = f"{frac:.0%} ({g[0]['cost_budget']:.1f})" if frac is not None else "— (all sensors)"
        met = f"{min(r['regions_met'] for r in g)}/{g[0]['num_regions']} ({min(r['min_kept_in_region'] for r in g)})"
        lines.append(f"| {budget} | {sel} | {ms([r['num_kept'] for r in g], '.1f')} | "
                     f"{ms([r['kept_cost'] for r in g], '.1f')} | {met} | "
                     + " | ".join(ms([r[m] for r in g]) for m in METRICS)
                     + f" | {len([r for r in g if r['seed'] is not None]) or '—'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
