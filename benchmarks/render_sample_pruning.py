"""Tables, summary JSON and plots of the time-to-accuracy cells of ``sample_pruning.py``.

Reads every cell JSON of ``--cells`` (default ``results/sample_pruning/`` and
``results/sample_pruning_stride1/``), groups them by (dataset, backbone, training-window stride
where it is not the dataset's default) and, per seed, sets the target to 1.01 x the best validation MAE of the
``full`` cell. Per policy it reports how many seeds reached the target, the time to target
(wall-clock and process CPU, training + scoring), its ratio to the full-data run's own time to
target (paired by seed), total time, steps, and the test MAE of the best-validation state with
its paired difference to full data. ST-Prune is compared with every baseline by the paired
per-seed difference of the time to target, with a 95 % bootstrap interval over seeds. Before
anything is ranked, the full-data model's test MAE at horizons 3, 6, 12 is checked against
persistence and the time-of-day average.

With ``--sweep`` it also renders the validation-only sweep (``results/sample_pruning_sweep/``
plus the default variant's main cell), choosing by validation time to target.

Usage::

    python benchmarks/render_sample_pruning.py                       # print markdown
    python benchmarks/render_sample_pruning.py --readme --sweep      # also rewrite the README blocks
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import statistics
import warnings
from typing import Any, Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_FACTOR = 1.01
POLICY_ORDER = ("full", "stprune", "equal", "infobatch", "random")
NAMES = {"full": "full data", "stprune": "ST-Prune", "equal": "full data, equal steps", "infobatch": "InfoBatch",
         "random": "random"}
HORIZONS = (3, 6, 12)


def load_cells(folder: str) -> List[Dict[str, Any]]:
    cells = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as fh:
            cell = json.load(fh)
        cell["_path"] = os.path.relpath(path, HERE)
        cells.append(cell)
    return cells


def other_stride(cfg: Dict[str, Any]) -> Optional[int]:
    """The cell's training-window stride when it is not its dataset's default, else ``None``."""
    stride = cfg.get("train_stride", cfg["data"]["train_stride"])
    return None if stride == cfg["data"]["train_stride"] else stride


def group_key(cfg: Dict[str, Any]) -> str:
    """``dataset/backbone``; a training-window stride other than the dataset's default is named in it."""
    stride = other_stride(cfg)
    ds = cfg["dataset"] if stride is None else f"{cfg['dataset']} stride {stride}"
    return f"{ds}/{cfg['backbone']}"


def time_to(cell: Dict[str, Any], target: float, key: str = "time_seconds") -> Optional[float]:
    """First cumulative ``key`` at which validation MAE <= ``target`` (``None``: never)."""
    for e in cell["epochs"]:
        if e["val_mae"] <= target:
            return e[key]
    return None


def mean_std(values: List[float]) -> Optional[Dict[str, float]]:
    if not values:
        return None
    return {"mean": statistics.mean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def bootstrap_ci(diffs: List[float], reps: int = 10_000, seed: int = 0) -> Optional[List[float]]:
    """95 % percentile interval of the mean of paired differences, resampling seeds."""
    if len(diffs) < 2:
        return None
    d = np.asarray(diffs, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(reps, d.size))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def summarise_group(cells: List[Dict[str, Any]]) -> Dict[str, Any]:
    by = {(c["config"]["policy"], c["config"]["seed"]): c for c in cells}
    seeds = sorted({s for (p, s) in by if p == "full"})
    meta = next(c["data"] for c in cells)
    refs = meta["references"]["test"]
    checks, per_seed = [], {}
    for s in seeds:
        full = by[("full", s)]
        target = TARGET_FACTOR * full["best_val_mae"]
        ok = {h: full["test"][f"mae_h{h}"] < min(refs["persistence"][f"mae_h{h}"], refs["time_of_day"][f"mae_h{h}"])
              for h in HORIZONS}
        checks.append({"seed": s, "beats_references": all(ok.values()),
                       **{f"h{h}": full["test"][f"mae_h{h}"] for h in HORIZONS}})
        per_seed[s] = {"target_val_mae": target, "full_ttt": time_to(full, target),
                       "full_ttt_cpu": time_to(full, target, "cpu_seconds")}
    policies: Dict[str, Any] = {}
    for p in POLICY_ORDER:
        rows = []
        for s in seeds:
            c = by.get((p, s))
            if c is None:
                continue
            ps = per_seed[s]
            ttt, ttt_cpu = time_to(c, ps["target_val_mae"]), time_to(c, ps["target_val_mae"], "cpu_seconds")
            full = by[("full", s)]
            rows.append({"seed": s, "ttt": ttt, "ttt_cpu": ttt_cpu,
                         "ttt_ratio": None if ttt is None else ttt / ps["full_ttt"],
                         "ttt_cpu_ratio": None if ttt_cpu is None else ttt_cpu / ps["full_ttt_cpu"],
                         "total_seconds": c["total_seconds"], "total_cpu_seconds": c["total_cpu_seconds"],
                         "score_seconds": c["score_seconds"], "steps": c["total_steps"],
                         "windows": c["total_windows"], "epochs": c["epochs_run"], "stopped_by": c["stopped_by"],
                         "best_val_mae": c["best_val_mae"], "test_mae": c["test"]["mae"],
                         "test_rel": c["test"]["mae"] / full["test"]["mae"] - 1.0})
        if not rows:
            continue
        reached = [r for r in rows if r["ttt"] is not None]
        policies[p] = {
            "seeds": [r["seed"] for r in rows], "reached": len(reached), "rows": rows,
            **{k: mean_std([r[k] for r in reached]) for k in ("ttt", "ttt_cpu", "ttt_ratio", "ttt_cpu_ratio")},
            **{k: mean_std([r[k] for r in rows]) for k in ("total_seconds", "total_cpu_seconds", "steps", "windows",
                                                           "best_val_mae", "test_mae", "test_rel",
                                                           "score_seconds")}}
    versus = {}
    if "stprune" in policies:
        sp = {r["seed"]: r for r in policies["stprune"]["rows"]}
        for p in POLICY_ORDER[2:] + ("full",):
            if p not in policies:
                continue
            out = {}
            for key in ("ttt", "ttt_cpu"):
                diffs = [sp[r["seed"]][key] - r[key] for r in policies[p]["rows"]
                         if r["seed"] in sp and r[key] is not None and sp[r["seed"]][key] is not None]
                never_b = sum(1 for r in policies[p]["rows"] if r["seed"] in sp and r[key] is None
                              and sp[r["seed"]][key] is not None)
                ci = bootstrap_ci(diffs)
                out[key] = {"paired_diff": mean_std(diffs), "ci95": ci, "baseline_never": never_b,
                            "stprune_sooner_beyond_spread": bool(ci is not None and ci[1] < 0)}
            versus[p] = out
    return {"seeds": seeds, "data": meta, "reference_check": checks,
            "all_beat_references": all(c["beats_references"] for c in checks), "per_seed": per_seed,
            "policies": policies, "stprune_minus_baseline": versus, "cells": sorted(c["_path"] for c in cells),
            "budget": cells[0]["budget"], "config": {k: v for k, v in cells[0]["config"].items()
                                                     if k not in ("policy", "seed")}}


def _ms(m: Optional[Dict[str, float]], fmt: str = "{:.1f}", pct: bool = False) -> str:
    if m is None:
        return "—"
    f = 100.0 if pct else 1.0
    s = (fmt.format(f * m["mean"]) + " ± " + fmt.format(f * m["std"]))
    return s + (" %" if pct else "")


def markdown_group(key: str, g: Dict[str, Any]) -> str:
    ds, bb = key.split("/")
    b = g["budget"]
    lines = [f"**{ds}, {bb}** (seeds {', '.join(map(str, g['seeds']))}; epoch cap {b['epoch_cap']}, patience "
             f"{b['patience']}, batch {b['batch_size']}; {g['data']['train_windows']} training windows; target = "
             f"{TARGET_FACTOR} x the full-data run's best validation MAE of the same seed)", ""]
    chk = "; ".join(f"seed {c['seed']}: " + "/".join(f"{c[f'h{h}']:.3f}" for h in HORIZONS)
                    for c in g["reference_check"])
    refs = g["data"]["references"]["test"]
    lines.append(f"Full-data test MAE h3/h6/h12 {chk}; persistence "
                 + "/".join(f"{refs['persistence'][f'mae_h{h}']:.3f}" for h in HORIZONS) + ", time-of-day average "
                 + "/".join(f"{refs['time_of_day'][f'mae_h{h}']:.3f}" for h in HORIZONS) + ": "
                 + ("**beats both at every horizon on every seed**." if g["all_beat_references"] else
                    "**does NOT beat both references at every horizon: nothing below ranks anything**."))
    lines += ["", "| policy | reached target | wall time to target (s) | / full's | CPU time to target / full's | "
              "total wall (s) | total CPU (s) | steps | windows | test MAE | vs full |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p, s in g["policies"].items():
        lines.append(f"| {NAMES[p]} | {s['reached']}/{len(s['seeds'])} | {_ms(s['ttt'])} | "
                     f"{_ms(s['ttt_ratio'], '{:.2f}')} | {_ms(s['ttt_cpu_ratio'], '{:.2f}')} | "
                     f"{_ms(s['total_seconds'])} | {_ms(s['total_cpu_seconds'])} | {_ms(s['steps'], '{:.0f}')} | {_ms(s['windows'], '{:.0f}')} | "
                     f"{_ms(s['test_mae'], '{:.3f}')} | {_ms(s['test_rel'], '{:+.2f}', pct=True)} |")
    if g["stprune_minus_baseline"]:
        lines += ["", "ST-Prune minus baseline, time to target (paired by seed, mean ± std, 95 % bootstrap "
                      "interval over seeds):", ""]
        for p, v in g["stprune_minus_baseline"].items():
            w, c = v["ttt"], v["ttt_cpu"]

            def one(x: Dict[str, Any]) -> str:
                if x["paired_diff"] is None:
                    return "no seed where both reached it"
                ci = f" [{x['ci95'][0]:+.1f}, {x['ci95'][1]:+.1f}]" if x["ci95"] else ""
                never = f"; {x['baseline_never']} seed(s) where only ST-Prune reached it" if x["baseline_never"] else ""
                return f"{x['paired_diff']['mean']:+.1f} ± {x['paired_diff']['std']:.1f} s{ci}{never}"
            lines.append(f"- vs {NAMES[p]}: wall {one(w)}; CPU {one(c)}")
    return "\n".join(lines)


def verdict(key: str, g: Dict[str, Any]) -> str:
    """One sentence per group: the goal (<= 0.6x the full-data time to target at <= +1 % test MAE) and the ranking."""
    ds, bb = key.split("/")
    sp = g["policies"].get("stprune")
    if sp is None:
        return f"{ds}, {bb}: no ST-Prune cell yet."
    if not g["all_beat_references"]:
        return (f"{ds}, {bb}: the full-data model does not beat persistence and the time-of-day average at every "
                "horizon, so nothing is ranked.")
    n = len(sp["seeds"])
    seeds = f"{n} seed{'s' if n > 1 else ''}"
    parts = [f"{ds}, {bb} ({seeds}"
             + (", fewer than the 3 the protocol asks for" if n < 3 else "") + "): ST-Prune reached the target on "
             f"{sp['reached']}/{n} seeds"]
    if sp["ttt_cpu_ratio"] is not None:
        r, t = sp["ttt_cpu_ratio"], sp["test_rel"]
        ok = r["mean"] <= 0.6 and t["mean"] <= 0.01
        parts.append(f"in {r['mean']:.2f} ± {r['std']:.2f}x the full-data CPU time to target (wall "
                     f"{sp['ttt_ratio']['mean']:.2f} ± {sp['ttt_ratio']['std']:.2f}x) at {100 * t['mean']:+.2f} ± "
                     f"{100 * t['std']:.2f} % test MAE: the goal (<= 0.6x at <= +1 %) is "
                     + ("**met**" if ok else "**not met**"))
    else:
        parts.append("so the goal (<= 0.6x at <= +1 %) is **not met**")
    text = ", ".join(parts) + "."
    vs = []
    for p, v in g["stprune_minus_baseline"].items():
        if p == "full":
            continue
        b = g["policies"][p]
        c = v["ttt_cpu"]
        if c["paired_diff"] is None:
            n = len(b["seeds"])
            behind = (f"; ST-Prune is **behind** it: {NAMES[p]} reached the target on {b['reached']}/{n} seeds, "
                      f"ST-Prune on none" if b["reached"] and not sp["reached"] else "")
            vs.append(f"{NAMES[p]}: no seed where both reached the target ({b['reached']}/{n} for "
                      f"{NAMES[p]}{behind})")
            continue
        ci = c["ci95"]
        word = ("sooner beyond the spread" if c["stprune_sooner_beyond_spread"] else
                ("later beyond the spread" if ci is not None and ci[0] > 0 else "not separated from it"))
        ci_s = f", 95 % interval [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else ", one seed: no interval"
        vs.append(f"{NAMES[p]} {c['paired_diff']['mean']:+.1f} ± {c['paired_diff']['std']:.1f} CPU s{ci_s} "
                  f"({word}; {b['reached']}/{len(b['seeds'])} reached)")
    if vs:
        text += " ST-Prune minus " + "; ".join(vs) + "."
    return text


def plot_group(key: str, g: Dict[str, Any], cells: List[Dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    colors = {"full": "k", "stprune": "tab:red", "equal": "tab:gray", "infobatch": "tab:blue", "random": "tab:green"}
    target = statistics.mean(v["target_val_mae"] for v in g["per_seed"].values())
    lo = math.inf
    for ax, key_t, label in ((axes[0], "time_seconds", "training + scoring wall-clock seconds"),
                             (axes[1], "cpu_seconds", "training + scoring process-CPU seconds")):
        for p in g["policies"]:
            curves = [c for c in cells if c["config"]["policy"] == p]
            tmax = max(c["epochs"][-1][key_t] for c in curves)
            grid = np.linspace(0.0, tmax, 400)
            vals = np.full((len(curves), grid.size), np.nan)
            for i, c in enumerate(curves):
                t = np.array([e[key_t] for e in c["epochs"]])
                v = np.array([e["val_mae"] for e in c["epochs"]])
                j = np.searchsorted(t, grid, side="right") - 1            # last finished epoch at each time
                ok = (j >= 0) & (grid <= t[-1])
                vals[i, ok] = v[j[ok]]
                lo = min(lo, float(v.min()))
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(vals, axis=0)
                band_lo, band_hi = np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)
            ax.plot(grid, mean, color=colors[p], label=f"{NAMES[p]} ({len(curves)} seeds)", lw=1.4)
            ax.fill_between(grid, band_lo, band_hi, color=colors[p], alpha=0.15, lw=0)
        ax.axhline(target, color="k", ls=":", lw=1, label=f"target (1.01 x full best), mean {target:.3f}")
        ax.set_xlabel(label + " (shared 2-core CPU, 1 thread)", fontsize=8)
    axes[0].set_ylim(lo * 0.995, target * 1.08)
    axes[0].set_ylabel("validation MAE")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{key}: validation MAE vs time (line: mean, band: min-max over seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_summary(sweep_dir: str, main_cells: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Every ST-Prune variant per (dataset, backbone), over the seeds it ran on.

    A variant's measure on a seed is its validation CPU time to target divided by the full-data
    run's of that seed; the default variant is the main ST-Prune cell. A variant is chosen over the
    default only when it reached the target on every seed of the default and its paired ratio is
    lower beyond the 95 % bootstrap interval; otherwise the default stays.
    """
    out: Dict[str, Any] = {"chosen_by": "validation only (process CPU seconds to 1.01 x the full-data best "
                                        "validation MAE of the same seed); test never read for a sweep cell",
                           "rule": "lowest mean ratio to full data's time, reached on every seed, and ahead "
                                   "of the default beyond the paired 95 % bootstrap interval; else the default",
                           "groups": {}}
    mains: Dict[tuple, Dict[str, Any]] = {}
    for m in main_cells:
        k = m["config"]
        mains[(k["dataset"], k["backbone"], k["seed"], k["policy"])] = m
    runs: Dict[str, Dict[tuple, Dict[int, Dict[str, Any]]]] = {}
    defaults: Dict[str, tuple] = {}

    def add(key: str, c: Dict[str, Any], full: Dict[str, Any], source: str) -> None:
        v = _variant(c, full, source)
        runs.setdefault(key, {}).setdefault((v["ratio"], v["delta"], v["alpha"]), {})[c["config"]["seed"]] = v

    for c in load_cells(sweep_dir):
        cfg = c["config"]
        full = mains.get((cfg["dataset"], cfg["backbone"], cfg["seed"], "full"))
        if full is None:
            continue
        key = f"{cfg['dataset']}/{cfg['backbone']}"
        add(key, c, full, "sweep cell")
        default = mains.get((cfg["dataset"], cfg["backbone"], cfg["seed"], "stprune"))
        if default is not None:
            add(key, default, full, "main cell (default variant)")
            s = default["config"]["sampler"]
            defaults[key] = (s["ratio"], s["delta"], s["alpha"])
    for key, variants in sorted(runs.items()):
        default = defaults.get(key)
        rows = []
        for var, by_seed in sorted(variants.items()):
            ratios = [v["val_ttt_ratio"] for v in by_seed.values() if v["val_ttt_ratio"] is not None]
            rows.append({"ratio": var[0], "delta": var[1], "alpha": var[2], "default": var == default,
                         "seeds": sorted(by_seed), "reached": len(ratios),
                         "ttt_ratio": mean_std(ratios),
                         "best_val_mae": mean_std([v["best_val_mae"] for v in by_seed.values()]),
                         "steps": mean_std([float(v["steps"]) for v in by_seed.values()]),
                         "per_seed": {str(s): v for s, v in sorted(by_seed.items())}})
        chosen, reason = default, "the default: no variant ahead of it beyond the interval"
        base = variants.get(default, {})
        best = None
        for r in rows:
            var = (r["ratio"], r["delta"], r["alpha"])
            if var == default or not base or r["reached"] < len(r["seeds"]):
                continue
            # seeds on which the default reached the target (a variant must reach it on all of its seeds)
            common = sorted(s for s in set(variants[var]) & set(base) if base[s]["val_ttt_ratio"] is not None)
            if len(common) < 2:
                continue
            diffs = [variants[var][s]["val_ttt_ratio"] - base[s]["val_ttt_ratio"] for s in common]
            ci = bootstrap_ci(diffs)
            r["vs_default"] = {"diff": statistics.mean(diffs), "ci95": ci, "seeds": common}
            if ci is not None and ci[1] < 0 and (best is None or statistics.mean(diffs) < best[0]):
                best = (statistics.mean(diffs), var)
        if best is not None:
            chosen, reason = best[1], "ahead of the default beyond the paired 95 % interval"
        out["groups"][key] = {"variants": rows, "default": None if default is None else
                              dict(zip(("ratio", "delta", "alpha"), default)),
                              "chosen": None if chosen is None else dict(zip(("ratio", "delta", "alpha"), chosen)),
                              "reason": reason}
    return out


def _variant(c: Dict[str, Any], full: Dict[str, Any], source: str) -> Dict[str, Any]:
    s = c["config"]["sampler"]
    # process CPU seconds: the cells of a sweep ran at different machine loads, which distort wall time
    ttt = time_to(c, TARGET_FACTOR * full["best_val_mae"], "cpu_seconds")
    full_ttt = time_to(full, TARGET_FACTOR * full["best_val_mae"], "cpu_seconds")
    return {"ratio": s["ratio"], "delta": s["delta"], "alpha": s["alpha"], "source": source, "val_ttt": ttt,
            "val_ttt_ratio": None if ttt is None else ttt / full_ttt,
            "best_val_mae": c["best_val_mae"], "total_seconds": c["total_seconds"], "steps": c["total_steps"],
            "epochs": c["epochs_run"]}


def markdown_sweep(sw: Dict[str, Any]) -> str:
    lines = []
    for key, g in sw["groups"].items():
        seeds = sorted({s for r in g["variants"] for s in r["seeds"]})
        lines += [f"**{key}, seeds {', '.join(map(str, seeds))}** (validation only; ratio = ST-Prune's CPU "
                  "time to target / full data's on the same seed, mean ± std over the seeds it reached)", "",
                  "| ratio | annealing δ | α | reached | CPU time to target / full's | best val MAE | steps | "
                  "minus default, paired [95 % CI] |", "|---|---|---|---|---|---|---|---|"]
        for r in sorted(g["variants"], key=lambda r: (r["ratio"], r["delta"], r["alpha"])):
            t = "never" if r["ttt_ratio"] is None else _ms(r["ttt_ratio"], "{:.2f}")
            vs = "(default)" if r["default"] else "—"
            if "vs_default" in r:
                d = r["vs_default"]
                vs = f"{d['diff']:+.2f}" + ("" if d["ci95"] is None else f" [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]")
            lines.append(f"| {r['ratio']:g} | {r['delta']:g} | {r['alpha']:g} | {r['reached']}/{len(r['seeds'])} | "
                         f"{t} | {_ms(r['best_val_mae'], '{:.4f}')} | {_ms(r['steps'], '{:.0f}')} | {vs} |")
        ch = g["chosen"]
        lines += ["", "Validation chooses: " + ("nothing" if ch is None else
                                                f"ratio {ch['ratio']:g}, δ {ch['delta']:g}, α {ch['alpha']:g}")
                  + f" ({g['reason']}).", ""]
    return "\n".join(lines).rstrip()


def replace_block(path: str, name: str, text: str) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    with open(path) as fh:
        s = fh.read()
    if begin not in s or end not in s:
        raise SystemExit(f"{path} has no {begin} ... {end} block to replace")
    head, rest = s.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as fh:
        fh.write(head + begin + "\n" + text + "\n" + end + tail)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", nargs="+", default=[os.path.join(HERE, "results", "sample_pruning"),
                                                  os.path.join(HERE, "results", "sample_pruning_stride1")],
                   help="cell folders (a missing one is skipped)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "sample_pruning_summary.json"))
    p.add_argument("--plots", default=os.path.join(HERE, "results"), help="folder of the PNGs ('' for none)")
    p.add_argument("--sweep", action="store_true", help="also the validation sweep")
    p.add_argument("--readme", action="store_true", help="rewrite the marked blocks of benchmarks/README.md")
    args = p.parse_args(argv)
    cells = [c for folder in args.cells if os.path.isdir(folder) for c in load_cells(folder)]
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for c in cells:
        groups.setdefault(group_key(c["config"]), []).append(c)
    summary, md = {}, []
    for key, cs in sorted(groups.items()):
        if not any(c["config"]["policy"] == "full" for c in cs):
            continue
        g = summarise_group(cs)
        summary[key] = g
        md.append(markdown_group(key, g))
        if args.plots:
            name = f"sample_pruning_{key.replace('/', '_').replace(' ', '')}.png"
            plot_group(key, g, cs, os.path.join(args.plots, name))
            md.append(f"\n![{key}](results/{name})")
    text = "\n\n".join(md)
    verdicts = " ".join(verdict(k, g) for k, g in summary.items())
    print(text + "\n\n" + verdicts)
    result = {"target_factor": TARGET_FACTOR, "groups": summary, "verdict": verdicts}
    if args.sweep:
        default_stride = [c for c in cells if other_stride(c["config"]) is None]
        sw = sweep_summary(os.path.join(HERE, "results", "sample_pruning_sweep"), default_stride)
        result["sweep"] = sw
        swmd = markdown_sweep(sw)
        print("\n" + swmd)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    if args.readme:
        readme = os.path.join(HERE, "README.md")
        replace_block(readme, "sample_pruning_tables", text + "\n\n" + verdicts)
        replace_block(os.path.join(HERE, os.pardir, "README.md"), "sample_pruning_verdict", verdicts)
        if args.sweep:
            replace_block(readme, "sample_pruning_sweep", swmd)


if __name__ == "__main__":
    main()
