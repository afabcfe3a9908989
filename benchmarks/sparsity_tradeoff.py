"""Accuracy vs sparsity (Los-loop or Aarhus): DynST schedules against baseline selectors and the dense model.

Every selector goes through the same pipeline: one dense warm-up per (seed, target) is shared
by all of them; DynST schedules search a mask from it, baselines pick theirs from the graph /
training series; then each mask gets the same sparse fine-tune on the physical sub-graph and
is evaluated as served (K nodes, plus the lift head for ``target="all"``). The dense row is
the warm-up model fine-tuned on all sensors for the same number of epochs.

    python benchmarks/sparsity_tradeoff.py --out benchmarks/results/sparsity_tradeoff.json
    python benchmarks/sparsity_tradeoff.py --quick            # 1 seed, sparsity 0.5, fewer epochs
    python benchmarks/sparsity_tradeoff.py --dataset aarhus --resample 3 --time-features --targets all

Aarhus has missing readings: targets there are NaN and never enter a loss or a metric.
``--resample k`` averages blocks of ``k`` steps first (the mean of each block's observed
readings, :func:`dynst_pyg.data.resample_mean`), ``--max-batches`` caps the (shuffled)
training batches per epoch; val/test always use every window. The JSON's ``meta`` also holds persistence and
the time-of-day average (:func:`dynst_pyg.training.reference_metrics`) on val and test of
exactly this setup, and every row its validation metrics (``val_*``) next to the test ones.

Prints a markdown table (mean ± std over seeds), writes ``--out`` JSON with one row per
(selector, schedule, sparsity, target, seed) and a plot of MAE vs sparsity per selector.
Split: chronological 7:1:2 (val/test windows whose targets overlap the previous split dropped).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynst_pyg.data import prepare
from dynst_pyg.training.engine import resolve_device
from dynst_pyg.training.references import reference_metrics
from dynst_pyg.data import SPLIT_RATIOS, resample_mean
from dynst_pyg.datasets import load_dataset
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.models import make_backbone
from dynst_pyg.placement.selectors import select_sensors
from dynst_pyg.selection.schedules import make_schedule
from dynst_pyg.training import DynSTConfig, DynSTTrainer

SELECTORS = ["dense", "dynst-oneshot", "dynst-iterative", "dynst-dropregrow", "random", "degree", "pagerank",
             "betweenness", "qr"]
DEFAULT_SELECTORS = ["dense", "dynst-oneshot", "dynst-iterative", "dynst-dropregrow", "random", "degree",
                     "pagerank", "qr"]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="los-loop")
    p.add_argument("--model", default="gwnet", help="gwnet or dcrnn (small profile)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--targets", nargs="+", default=["all", "kept"], choices=["all", "kept"])
    p.add_argument("--selectors", nargs="+", default=DEFAULT_SELECTORS, choices=SELECTORS)
    p.add_argument("--warmup-epochs", type=int, default=4)
    p.add_argument("--search-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=6)
    p.add_argument("--max-batches", type=int, default=None, help="cap on batches per epoch")
    p.add_argument("--lift", default="ridge", choices=["ridge", "harmonic"],
                   help="lift head propagation for target=all (see DynSTConfig.lift)")
    p.add_argument("--recon-weight", type=float, default=None,
                   help="DynSTConfig.recon_weight for target=all (default: the config's default)")
    p.add_argument("--recon-horizons", type=int, nargs="+", default=None,
                   help="DynSTConfig.recon_horizons (default: the config's default)")
    p.add_argument("--resample", type=int, default=1,
                   help="average blocks of this many steps first (observed readings only; e.g. 3: 5 -> 15 min)")
    p.add_argument("--time-features", action="store_true", help="time of day and day of week input channels")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--val-max-windows", type=int, default=None,
                   help="validate each fine-tune epoch on at most this many windows (final val/test use all)")
    p.add_argument("--speed-repeats", type=int, default=5, help="timed forwards per model for the speedup")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--quick", action="store_true", help="1 seed, sparsity 0.5, fewer epochs (< 15 min on 2 cores)")
    p.add_argument("--out", default="benchmarks/results/sparsity_tradeoff.json")
    p.add_argument("--plot", default=None, help="PNG path (default: next to --out)")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="only merge these result files (e.g. one per seed process) into --out and print the table")
    a = p.parse_args(argv)
    if a.quick:
        a.seeds, a.sparsities = a.seeds[:1], [0.5]
        a.warmup_epochs, a.search_epochs, a.finetune_epochs = 2, 2, 3
        a.max_batches = a.max_batches or 12
    return a


def row(args, selector, schedule, sparsity, target, seed, m, spd, seconds, kept, val=None):
    out = {"dataset": args.dataset, "model": args.model, "selector": selector, "schedule": schedule,
            "sparsity": sparsity, "target": target, "seed": seed, "num_kept": kept,
            "mae": m["mae"], "rmse": m["rmse"], "mape": m["mape"], "mae_h3": m["mae_h3"], "mae_h6": m["mae_h6"],
            "mae_h12": m["mae_h12"], "infer_speedup": spd, "seconds": seconds,
            "lift": args.lift if target == "all" else "",
            "recon_weight": args.recon_weight if args.recon_weight is not None else DynSTConfig().recon_weight}
    for k, v in (val or {}).items():
        out[f"val_{k}"] = v
    return out


def load_splits(args):
    """The prepared windows of ``args.dataset`` (resampled and train-strided as asked)."""
    ds = load_dataset(args.dataset)
    if args.resample > 1:
        ds = resample_mean(ds, args.resample)
    splits = prepare(ds, ratios=SPLIT_RATIOS.get(ds.name, (0.7, 0.1, 0.2)), time_features=args.time_features)
    return splits


def merge(paths, out):
    """Concatenates the rows of several result files into ``out``; ``meta`` keeps each file's."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    rows = [r for d in docs for r in d["rows"]]
    meta = dict(docs[0]["meta"])
    meta["merged_from"] = [{"file": str(p), **d["meta"]} for p, d in zip(paths, docs)]
    meta["seeds"] = sorted({r["seed"] for r in rows})
    Path(out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return rows


def main(argv=None):
    args = parse(argv)
    if args.merge:
        print(table(merge(args.merge, args.out)))
        return
    torch.set_num_threads(args.threads)
    t_start = time.time()
    splits = load_splits(args)
    N = splits.num_nodes
    rows = []
    refs = {sp: reference_metrics(splits, sp) for sp in ("val", "test")}
    args.references = refs
    args.data_info = {"dataset": args.dataset, "interval_minutes": splits.dataset.interval_minutes,
                      "resample": args.resample, "steps": splits.dataset.num_steps, "nodes": N,
                      "observed_share": splits.dataset.observed_share, "time_features": args.time_features,
                      "train_windows": len(splits.train),
                      "val_windows": len(splits.val), "test_windows": len(splits.test),
                      "t_in": splits.t_in, "t_out": splits.t_out, "ratios": list(splits.ratios)}
    print(f"{splits!r}; {args.data_info}", flush=True)
    for sp, r in refs.items():
        for k, m in r.items():
            print(f"reference {sp} {k}: MAE {m['mae']:.3f} h3 {m['mae_h3']:.3f} h6 {m['mae_h6']:.3f} "
                  f"h12 {m['mae_h12']:.3f}", flush=True)

    def factory():
        return make_backbone(args.model, N, splits.in_features, splits.out_features, splits.t_in, splits.t_out,
                             "small")

    extra = {}
    if args.recon_weight is not None:
        extra["recon_weight"] = args.recon_weight
    if args.recon_horizons is not None:
        extra["recon_horizons"] = tuple(args.recon_horizons)
    for seed in args.seeds:
        for target in args.targets:
            cfg = DynSTConfig(target=target, warmup_epochs=args.warmup_epochs, search_epochs=args.search_epochs,
                              finetune_epochs=args.finetune_epochs, seed=seed, max_batches=args.max_batches,
                              lift=args.lift, progress=False, device=args.device, batch_size=args.batch_size,
                              val_max_windows=args.val_max_windows, **extra)
            trainer = DynSTTrainer(factory, splits, cfg)
            t0 = time.time()
            trainer.warmup()
            warm = time.time() - t0
            if "dense" in args.selectors:
                t0 = time.time()
                res = trainer.finetune(SensorMask.from_bool(torch.ones(N, dtype=torch.bool), method="dense"),
                                       start="dense")
                rows.append(row(args, "dense", "", 0.0, target, seed, res.test_metrics, 1.0, time.time() - t0 + warm, N,
                                res.val_metrics))
                m = res.test_metrics
                print(f"[seed {seed} {target}] dense: MAE {m['mae']:.3f} h3 {m['mae_h3']:.3f} h6 {m['mae_h6']:.3f} "
                      f"h12 {m['mae_h12']:.3f} (val {res.val_metrics['mae']:.3f}; warm-up {warm:.0f}s, "
                      f"total {time.time() - t_start:.0f}s)", flush=True)
            for s in args.sparsities:
                for sel in args.selectors:
                    if sel == "dense":
                        continue
                    t0 = time.time()
                    if sel.startswith("dynst-"):
                        sched = sel.split("-", 1)[1]
                        mask = trainer.search(make_schedule(sched, sparsity=s))
                        res = trainer.finetune(mask, start="search")
                        name = "dynst"
                    else:
                        sched = ""
                        mask = select_sensors(sel, splits, sparsity=s, seed=seed)
                        res = trainer.finetune(mask, start="dense")
                        name = sel
                    spd = trainer.served_speedup(res.model, mask, repeats=args.speed_repeats, warmup=1)[2]
                    rows.append(row(args, name, sched, s, target, seed, res.test_metrics, spd, time.time() - t0,
                                    mask.num_kept, res.val_metrics))
                    print(f"[seed {seed} {target}] {sel} @ {s}: MAE {res.test_metrics['mae']:.3f} "
                          f"(val {res.val_metrics['mae']:.3f}) "
                          f"(K={mask.num_kept}, speedup {spd:.2f}x, {time.time() - t0:.0f}s; "
                          f"total {time.time() - t_start:.0f}s)", flush=True)
            _write(args, rows, t_start)
    _write(args, rows, t_start)
    print(table(rows))


def _write(args, rows, t_start):
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"command": " ".join(sys.argv), "machine": f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} threads", "torch": torch.__version__, "seconds": time.time() - t_start,
            "split": "chronological 7:1:2 (val/test windows whose targets overlap the previous split dropped)",
            "metric_scale": f"original ({'km/h' if args.dataset == 'aarhus' else 'mph'}); MAPE in %; "
                            "missing readings excluded",
            "device": str(resolve_device(args.device)), "threads": torch.get_num_threads(),
            "seeds": args.seeds, "output_mode": args.targets, "selectors": args.selectors,
            "sparsities": args.sparsities, "recon_weight": args.recon_weight, "data": args.data_info,
            "budget": {"warmup_epochs": args.warmup_epochs, "search_epochs": args.search_epochs,
                       "finetune_epochs": args.finetune_epochs, "max_batches": args.max_batches,
                       "batch_size": args.batch_size,
                       "val_max_windows": args.val_max_windows},
            "references": args.references}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    try:
        from dynst_pyg.viz import plot_tradeoff
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        res = plot_tradeoff(rows)
        fig = res[0] if isinstance(res, tuple) else res
        fig = getattr(fig, "figure", fig)
        fig.savefig(args.plot or out.with_suffix(".png"), dpi=120, bbox_inches="tight")
        plt.close(fig)
    except Exception as exc:  # noqa: BLE001 - the JSON is the result; a plot failure is reported, not fatal
        print(f"(plot not written: {exc})", file=sys.stderr)


def table(rows) -> str:
    """Markdown table: mean ± std over seeds per (target, selector, schedule, sparsity)."""
    groups: dict = {}
    for r in rows:
        rw = r.get("recon_weight") if r["selector"] == "dynst" and r["target"] == "all" else None
        key = (r["target"], r["sparsity"], r["selector"], r["schedule"] + (f" rw={rw}" if rw is not None else ""))
        groups.setdefault(key, []).append(r)
    val = all("val_mae" in r for r in rows)
    lines = ["| target | sparsity | selector | MAE | RMSE | MAPE % | MAE h3 | MAE h6 | MAE h12 | "
             + ("val MAE | " if val else "") + "speedup | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if val else "") + "---|"]

    def ms(vals):
        return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else f"{vals[0]:.3f}"

    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] != "dense", k[2], k[3])):
        g = groups[key]
        name = key[2] + (f"-{key[3]}" if key[3] else "")
        lines.append(f"| {key[0]} | {key[1]:.1f} | {name} | " + " | ".join(
            ms([r[m] for r in g]) for m in ("mae", "rmse", "mape", "mae_h3", "mae_h6", "mae_h12")
            + (("val_mae",) if val else ()))
            + f" | {statistics.mean(r['infer_speedup'] for r in g):.2f}x | {len(g)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
