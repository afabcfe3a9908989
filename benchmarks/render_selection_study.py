"""Renders the selection study's JSON (``results/selection_study/``) into README tables and a plot.

Tables go between ``<!-- selection-study:NAME:begin -->`` and ``<!-- selection-study:NAME:end -->``
markers of ``benchmarks/README.md`` (``NAME``: ``grid``, ``sweep``, ``planted``) and of the
top-level ``README.md`` (``NAME``: ``headline``); nothing in them is typed by hand.

    python benchmarks/render_selection_study.py            # rewrite the marked sections and the plot
    python benchmarks/render_selection_study.py --print    # print the tables only
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
RES = HERE / "results" / "selection_study"
HORIZONS = (3, 6, 12)
KEYS = ["mae", *(f"mae_h{h}" for h in HORIZONS)]
#: the DynST configuration of DynSTConfig's defaults, as selection_study.py names it
DEFAULT_DYNST = "dynst-iterative-rw1-gw0.1-mw0.8-se3"
DATA_NAMES = {"los-loop": "Los-loop", "aarhus": "Aarhus"}
BACKBONE_NAMES = {"stid": "STID", "gwnet": "Graph WaveNet"}


def separation(s: dict) -> str:
    """DynST against the best baseline by the 95 % interval of a summary: ahead of / behind / not separable from."""
    return "ahead of" if s["hi"] < 0 else "behind" if s["lo"] > 0 else "not separable from"


def load(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def ms(values: list[float]) -> str:
    if not values:
        return "—"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def bootstrap(diffs: list[float], reps: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of paired differences (resampling seeds)."""
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(statistics.mean(rng.choice(diffs) for _ in range(n)) for _ in range(reps))
    return means[int(0.025 * reps)], means[int(0.975 * reps) - 1]


def variant_of(config: dict) -> str:
    """The fine-tune protocol of a cell: ``""`` for the grid's, else what differs from it."""
    parts = []
    if "finetune_lr" in config:
        parts.append(f"fine-tune lr {config['finetune_lr']:g}")
    if config.get("finetune_validate_start"):
        parts.append("start validated as epoch 0")
    return ", ".join(parts)


def base_name(selector: str) -> str:
    """The selector's name without the suffixes of the fine-tune protocol."""
    return re.sub(r"(-ftlr[^-]*(?:-\d+)?)?(-vs)?$", "", selector)


def grouped(cells: list[dict]) -> dict:
    """``{(dataset, backbone, sparsity, target, variant): {selector: {seed: cell}}}``; ``variant`` is
    the fine-tune protocol (:func:`variant_of`) and ``selector`` its base name."""
    out: dict = defaultdict(lambda: defaultdict(dict))
    for c in cells:
        k = c["config"]
        out[(k["dataset"], k["backbone"], k["sparsity"], k["target"], variant_of(k))][base_name(k["selector"])][k["seed"]] = c
    return out


def chosen_variants(g: dict) -> dict:
    """Per (dataset, backbone, sparsity, target) the fine-tune protocol whose DynST cells have the lowest
    mean *validation* MAE on the seeds every protocol ran (test is not looked at); ties keep the grid's."""
    out: dict = {}
    by: dict = defaultdict(dict)
    for key, sels in g.items():
        dyn = sels.get(DEFAULT_DYNST)
        if dyn:
            by[key[:4]][key[4]] = dyn
    for k4, variants in by.items():
        common = set.intersection(*(set(v) for v in variants.values()))
        if len(common) < 2 or "" not in variants:
            out[k4] = ""
            continue
        score = {var: statistics.mean(cs[s]["val"]["mae"] for s in common) for var, cs in variants.items()}
        out[k4] = min(sorted(score), key=lambda var: (score[var] + (0 if var == "" else 1e-6)))
    return out


def is_dynst(name: str) -> bool:
    return name.startswith("dynst")


def grid_table(key: tuple, sels: dict, dense: dict) -> tuple[str, Optional[dict]]:
    """One table (dense, references, every selector) and the DynST-vs-best-baseline summary."""
    ds, bb, sp, tgt, var = key
    rows = ["| selector | MAE | MAE h3 | MAE h6 | MAE h12 | dense, same sensors | vs dense | fine-tune epochs | seeds |",
            "|---|---|---|---|---|---|---|---|---|"]
    any_cells = [c for s in sels.values() for c in s.values()]
    seeds_all = sorted({c["config"]["seed"] for c in any_cells})
    if tgt == "all":
        d = [dense[(ds, bb, s)] for s in seeds_all if (ds, bb, s) in dense]
        rows.append("| dense (converged, all sensors) | " + " | ".join(ms([r["test"][k] for r in d]) for k in KEYS)
                    + f" | — | — | {statistics.mean(r['epochs_run'] for r in d):.1f} (dense) | {len(d)} |")
        if d:
            for ref, label in (("persistence", "persistence"), ("time_of_day", "time-of-day average")):
                rows.append(f"| {label} | " + " | ".join(f"{d[0]['reference_test'][ref][k]:.3f}" for k in KEYS)
                            + " | — | — | — | — |")
    if tgt == "kept":
        for ref, label in (("persistence", "persistence"), ("time_of_day", "time-of-day average")):
            rows.append(f"| {label} (each row's kept sensors, mean over rows) | "
                        + " | ".join(ms([c["reference_test"][ref][k] for c in any_cells]) for k in KEYS)
                        + " | — | — | — | — |")
    dense_mae = {}
    for name in sorted(sels, key=lambda n: (is_dynst(n), n)):
        cs = [sels[name][s] for s in sorted(sels[name])]
        rel = [100 * (c["test"]["mae"] / c["dense_test"]["mae"] - 1) for c in cs]
        dense_mae[name] = [c["dense_test"]["mae"] for c in cs]
        rows.append(f"| {name} | " + " | ".join(ms([c["test"][k] for c in cs]) for k in KEYS)
                    + f" | {ms(dense_mae[name])} | {statistics.mean(rel):+.1f} % | {statistics.mean(c['finetune_epochs_run'] for c in cs):.1f}"
                    + f" | {len(cs)} |")
    summary = None
    for dn in [n for n in sels if is_dynst(n)]:
        # a baseline that keeps exactly DynST's sensors on every common seed is the same method here
        same = sorted(n for n, v in sels.items() if not is_dynst(n) and set(v) & set(sels[dn])
                      and all(v[s]["kept"] == sels[dn][s]["kept"] for s in set(v) & set(sels[dn])))
        # a baseline is compared on the seeds it shares with DynST, and needs two of them
        base = {n: {s: v[s] for s in set(v) & set(sels[dn])} for n, v in sels.items()
                if not is_dynst(n) and n not in same}
        base = {n: v for n, v in base.items() if len(v) >= 2}
        if not base:
            break
        best = min(base, key=lambda n: statistics.mean(c["test"]["mae"] for c in base[n].values()))
        common = sorted(base[best])
        diffs = [sels[dn][s]["test"]["mae"] - base[best][s]["test"]["mae"] for s in common]
        lo, hi = bootstrap(diffs)
        dense_rel = [100 * (sels[dn][s]["test"]["mae"] / sels[dn][s]["dense_test"]["mae"] - 1) for s in common]
        every = {bn: bootstrap([sels[dn][s]["test"]["mae"] - v[s]["test"]["mae"] for s in sorted(v)])
                 for bn, v in base.items()}
        summary = {"every_ahead": all(hi_ < 0 for _, hi_ in every.values()), "baselines": sorted(every),
                   "same_mask": same,
                   "dynst": dn, "best_baseline": best, "diff": statistics.mean(diffs), "lo": lo, "hi": hi,
                   "seeds": len(common), "vs_dense": statistics.mean(dense_rel),
                   "vs_dense_sd": statistics.stdev(dense_rel) if len(dense_rel) > 1 else 0.0}
        if same:
            rows.append(f"\n{dn} keeps exactly the sensors of {', '.join(same)} on every seed (the same method "
                        "here), so its rows are identical; the comparison below is with the other baselines.")
        rows.append(f"\nPaired by seed, {dn} minus the best baseline ({best}): {summary['diff']:+.3f} MAE, "
                    f"95 % bootstrap interval [{lo:+.3f}, {hi:+.3f}] over {len(common)} seeds; "
                    f"{dn} vs the dense model {summary['vs_dense']:+.1f} ± {summary['vs_dense_sd']:.1f} %.")
    title = (f"**{DATA_NAMES.get(ds, ds)}, {BACKBONE_NAMES.get(bb, bb)}, sparsity {sp:g}, "
             f"target=\"{tgt}\"{', fine-tune: ' + var if var else ''}** (test MAE, mean ± std over seeds {', '.join(map(str, seeds_all))})\n\n")
    return title + "\n".join(rows), summary


def dense_table(dense: dict) -> str:
    rows = ["| dataset | backbone | seeds | epochs | seconds | val MAE | test MAE | h3 | h6 | h12 | "
            "persistence h3/h6/h12 | time-of-day h3/h6/h12 |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by = defaultdict(list)
    for (ds, bb, _), r in sorted(dense.items()):
        by[(ds, bb)].append(r)
    for (ds, bb), rs in by.items():
        p, t = rs[0]["reference_test"]["persistence"], rs[0]["reference_test"]["time_of_day"]
        rows.append(f"| {DATA_NAMES.get(ds, ds)} | {bb} | {len(rs)} | {statistics.mean(r['epochs_run'] for r in rs):.1f} | "
                    f"{statistics.mean(r['train_seconds'] for r in rs):.0f} | {ms([r['val']['mae'] for r in rs])} | "
                    + " | ".join(ms([r["test"][k] for r in rs]) for k in KEYS) + " | "
                    + "/".join(f"{p[f'mae_h{h}']:.2f}" for h in HORIZONS) + " | "
                    + "/".join(f"{t[f'mae_h{h}']:.2f}" for h in HORIZONS) + " |")
    return "\n".join(rows)


def sweep_table(sweep: list[dict], cells: list[dict], choice_path: Optional[Path]) -> str:
    """Validation MAE of every DynST configuration on its group's sweep seeds (the sweep's own
    validation-only cells plus the grid's DynST cells on those seeds); writes the choice to ``choice_path``.

    A group is (dataset, backbone, target, sparsity). A configuration is compared with the default
    **paired on the seeds both ran** (configurations may have different seeds), and replaces the default
    only when it is lower there; among several, the largest paired improvement wins."""
    sweep = [c for c in sweep if not is_finetune_variant(c)]
    group_seeds = defaultdict(set)
    for c in sweep:
        k = c["config"]
        group_seeds[(k["dataset"], k["backbone"], k["target"], k["sparsity"])].add(k["seed"])
    by: dict = defaultdict(dict)
    grid = [c for c in cells if is_dynst(c["config"]["selector"]) and not is_finetune_variant(c)]
    for c in sweep + grid:
        k = c["config"]
        g = (k["dataset"], k["backbone"], k["target"], k["sparsity"])
        if k["seed"] in group_seeds[g]:
            by[g + (k["selector"],)][k["seed"]] = c["val"]["mae"]
    paired: dict = {}   # (group + selector) -> (mean difference to the default, common seeds)
    best = {}
    for k, vals in by.items():
        d = by.get(k[:4] + (DEFAULT_DYNST,), {})
        common = sorted(set(vals) & set(d))
        if k[4] != DEFAULT_DYNST and common:
            paired[k] = (statistics.mean(vals[s] - d[s] for s in common), common)
    for g in {k[:4] for k in by}:
        if g + (DEFAULT_DYNST,) in by:
            wins = {k[4]: paired[k][0] for k in paired if k[:4] == g and paired[k][0] < -1e-6}
            best[g] = min(wins, key=lambda n: (wins[n], n)) if wins else DEFAULT_DYNST
        else:   # no default in the group: the lowest mean
            best[g] = min((k[4] for k in by if k[:4] == g), key=lambda n: statistics.mean(by[g + (n,)].values()))
    rows = ["| dataset | backbone | target | sparsity | DynST configuration | val MAE | seeds | minus the default, same seeds | chosen |",
            "|---|---|---|---|---|---|---|---|---|"]
    for k in sorted(by):
        vals = by[k]
        diff = (f"{paired[k][0]:+.3f} (seeds {', '.join(map(str, paired[k][1]))})" if k in paired
                else "— (the default)" if k[4] == DEFAULT_DYNST else "—")
        rows.append(f"| {DATA_NAMES.get(k[0], k[0])} | {k[1]} | {k[2]} | {k[3]:g} | {k[4]} | "
                    f"{ms(list(vals.values()))} | {len(vals)} | {diff} | {'**yes**' if best[k[:4]] == k[4] else ''} |")
    if choice_path is not None and best:
        choice = []
        for g, sel in sorted(best.items()):
            cands = {k[4]: {"val_mae": statistics.mean(v.values()), "seeds": sorted(v),
                            **({"minus_default": paired[k][0], "paired_seeds": paired[k][1]} if k in paired else {})}
                     for k, v in by.items() if k[:4] == g}
            choice.append({"dataset": g[0], "backbone": g[1], "target": g[2], "sparsity": g[3], "chosen": sel,
                           "val_mae": cands[sel]["val_mae"], "seeds": sorted(group_seeds[g]), "candidates": cands})
        choice_path.write_text(json.dumps({"chosen_by": "validation MAE paired by seed with the default's "
                                           "(test not read)", "choices": choice}, indent=1))
    return "\n".join(rows)


def is_finetune_variant(cell: dict) -> bool:
    """A cell of the fine-tune protocol sweep (``selection_study.py --finetune-lr / --validate-start``)."""
    return variant_of(cell["config"]) != ""


def finetune_label(config: dict) -> str:
    parts = [f"lr {config.get('finetune_lr', config['lr']):g}"]
    if config.get("finetune_validate_start"):
        parts.append("start validated as epoch 0")
    return ", ".join(parts)


def finetune_lr_table(sweep: list[dict], cells: list[dict]) -> str:
    """Validation MAE of each selector under every fine-tune variant tried (learning rate, start
    validated), beside the grid's own fine-tune on the same seeds; test is not read."""
    runs = [c for c in sweep if is_finetune_variant(c)]
    if not runs:
        return "(not run)"
    by = defaultdict(list)
    seeds = defaultdict(set)   # per (dataset, backbone, target, sparsity, selector): the variants' seeds
    for c in runs:
        k = c["config"]
        g = (k["dataset"], k["backbone"], k["target"], k["sparsity"], base_name(k["selector"]))
        by[(*g, finetune_label(k))].append(c)
        seeds[g].add(k["seed"])
    for c in cells:
        k = c["config"]
        g = (k["dataset"], k["backbone"], k["target"], k["sparsity"], k["selector"])
        if g in seeds and k["seed"] in seeds[g]:
            by[(*g, finetune_label(k) + " (the grid's)")].append(c)
    rows = ["| dataset | backbone | target | sparsity | selector | fine-tune | val MAE | fine-tune epochs | seeds |",
            "|---|---|---|---|---|---|---|---|---|"]
    for k in sorted(by, key=lambda k: (k[:5], "grid" not in k[5], k[5])):
        cs = by[k]
        rows.append(f"| {DATA_NAMES.get(k[0], k[0])} | {k[1]} | {k[2]} | {k[3]:g} | {k[4]} | {k[5]} | "
                    f"{ms([c['val']['mae'] for c in cs])} | "
                    f"{statistics.mean(c['finetune_epochs_run'] for c in cs):.1f} | {len(cs)} |")
    return "\n".join(rows)


def planted_table(obj: Optional[dict]) -> str:
    if obj is None:
        return "(not run)"
    by = defaultdict(list)
    for r in obj["rows"]:
        by[r["selector"]].append(r)
    rows = [f"Synthetic network ({obj['data']}), sparsity {obj['sparsity']}, seeds {obj['seeds']}: planted redundant "
            "sensors pruned (a perfect selector prunes all of them first).\n",
            "| selector | planted pruned / planted | share | seeds |", "|---|---|---|---|"]
    for name, rs in sorted(by.items(), key=lambda kv: -sum(r["planted_pruned"] for r in kv[1])):
        a, b = sum(r["planted_pruned"] for r in rs), sum(r["planted"] for r in rs)
        rows.append(f"| {name} | {a} / {b} | {100 * a / max(1, b):.0f} % | {len(rs)} |")
    return "\n".join(rows)


def plot(cells: list[dict], dense: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = grouped(cells)
    for ds, bb in sorted({(k[0], k[1]) for k in g}):
        curves: dict = defaultdict(dict)
        for (d, b, sp, tgt, var), sels in g.items():
            if (d, b, tgt, var) != (ds, bb, "all", ""):
                continue
            for name, by_seed in sels.items():
                curves[name][sp] = [c["test"]["mae"] for c in by_seed.values()]
        dm = [r["test"]["mae"] for (d, b, _), r in dense.items() if (d, b) == (ds, bb)]
        for pts in curves.values():
            if dm:
                pts[0.0] = dm  # no sensor removed: every selector is the dense model
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name, pts in sorted(curves.items()):
            xs = sorted(pts)
            mu = [statistics.mean(pts[x]) for x in xs]
            sd = [statistics.stdev(pts[x]) if len(pts[x]) > 1 else 0.0 for x in xs]
            ax.plot(xs, mu, marker="o", label=name)
            ax.fill_between(xs, [m - s for m, s in zip(mu, sd)], [m + s for m, s in zip(mu, sd)], alpha=0.15)
        if dm:
            ax.axhline(statistics.mean(dm), color="k", ls="--", label="dense")
        ax.set_xlabel("sparsity (fraction of sensors removed)")
        ax.set_ylabel("test MAE, all sensors")
        counts = {sp: max(len(pts[sp]) for pts in curves.values() if sp in pts)
                  for sp in sorted({sp for pts in curves.values() for sp in pts})}
        ax.set_title(f"{DATA_NAMES.get(ds, ds)}, {bb}: mean ± std over seeds\n(seeds per sparsity: "
                     + ", ".join(f"{sp:g}: {n}" for sp, n in counts.items()) + ")", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out = path.parent / f"selection_study_{ds}_{bb}.png"  # benchmarks/results/
        fig.savefig(out, dpi=120)
        plt.close(fig)
        print(f"wrote {out}")


def replace_block(text: str, name: str, body: str) -> str:
    pat = re.compile(rf"(<!-- selection-study:{name}:begin -->\n).*?(<!-- selection-study:{name}:end -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"marker <!-- selection-study:{name}:begin/end --> not found")
    return pat.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def headline(summaries: dict, dense: dict, chosen: Optional[dict] = None) -> str:
    lines = []
    chosen = chosen or {}
    for key, s in sorted(summaries.items()):
        if s is None:
            continue
        ds, bb, sp, tgt, var = key
        protocol = (var or "the grid's") + (" (chosen on validation)" if chosen.get(key[:4]) == var and
                                             len([k for k in summaries if k[:4] == key[:4]]) > 1 else "")
        verdict_dense = "within" if s["vs_dense"] <= 5.0 else "not within"
        verdict_base = separation(s)
        dyn = s["dynst"] + (f" (= {', '.join(s['same_mask'])}: same sensors every seed)" if s.get("same_mask") else "")
        lines.append(f"| {DATA_NAMES.get(ds, ds)} | {bb} | {sp:g} | {tgt} | {protocol} | {dyn} | "
                     f"{s['vs_dense']:+.1f} ± {s['vs_dense_sd']:.1f} % ({verdict_dense} 5 %) | {s['best_baseline']} | "
                     f"{s['diff']:+.3f} [{s['lo']:+.3f}, {s['hi']:+.3f}] ({verdict_base}) | {s['seeds']} |")
    head = ["| data | backbone | sparsity | target | fine-tune | DynST | vs converged dense | best baseline | "
            "DynST − best baseline, MAE [95 % CI] | seeds |", "|---|---|---|---|---|---|---|---|---|---|"]
    return "\n".join(head + lines)


def statement(summaries: dict, variant: str = "") -> str:
    """The README's one plain sentence on the headline cell (Los-loop, STID, 50 %, target="all"), under
    the fine-tune protocol ``variant`` (the one chosen on validation)."""
    s = summaries.get(("los-loop", "stid", 0.5, "all", variant))
    if s is None:
        return "(the selection study has no headline cells yet)"
    dense = "within" if s["vs_dense"] <= 5.0 else "not within"
    if s["hi"] < 0:
        base = f"ahead of the best baseline ({s['best_baseline']}) beyond the 95 % interval"
    elif s["lo"] > 0:
        base = f"behind the best baseline ({s['best_baseline']}) beyond the 95 % interval"
    else:
        base = f"not separable from the best baseline ({s['best_baseline']})"
    default = s["dynst"] == DEFAULT_DYNST
    what = ("DynST with its defaults, whose importance is then a classical ridge backward elimination on the "
            "training series (the learned gate, saliency and marginal terms get zero weight)") if default else s["dynst"]
    if s["hi"] < 0:
        other = "every other baseline" if s.get("same_mask") else "every baseline"
        base = (f"ahead of {other}, the best ({s['best_baseline']}) included, beyond the 95 % interval"
                if s["every_ahead"] else base + ", though not beyond the interval of every other baseline")
    if s.get("same_mask"):
        same = f"it keeps exactly the sensors of the {', '.join(s['same_mask'])} selector on every seed"
        what = what[:-1] + f"; {same})" if what.endswith(")") else what + f" ({same})"
    how = f"; every fine-tune with its {variant}, chosen on validation" if variant else ""
    return (f"In the selection study (Los-loop, STID, half of the 207 sensors removed, {s['seeds']} seeds{how}), "
            f"{what}, is {s['vs_dense']:+.1f} ± {s['vs_dense_sd']:.1f} % in MAE from the converged dense model "
            f"({dense} the 5 % goal) and {s['diff']:+.3f} MAE [95 % CI {s['lo']:+.3f}, {s['hi']:+.3f}] "
            f"from {s['best_baseline']}: {base}.")


def other_statements(summaries: dict, chosen: dict) -> str:
    """One plain sentence per other (data set, backbone) at 50 %, target="all", under its chosen
    protocol: the README's intro quotes these instead of typing seed counts that go stale."""
    out = []
    for key, s in sorted(summaries.items()):
        ds, bb, sp, tgt, var = key
        if s is None or (ds, bb) == ("los-loop", "stid") or (sp, tgt) != (0.5, "all") \
                or chosen.get(key[:4], "") != var:
            continue
        how = f", {var}, chosen on validation" if var else ", plain fine-tune"
        same = f" (the sensors of {', '.join(s['same_mask'])} on every seed)" if s.get("same_mask") else ""
        out.append(f"On {DATA_NAMES.get(ds, ds)} with {BACKBONE_NAMES.get(bb, bb)} ({s['seeds']} seeds{how}) DynST's default{same} is "
                   f"{s['vs_dense']:+.1f} ± {s['vs_dense_sd']:.1f} % in MAE from the converged dense model and "
                   f"{s['diff']:+.3f} MAE [95 % CI {s['lo']:+.3f}, {s['hi']:+.3f}] from {s['best_baseline']}: "
                   f"{separation(s)} it.")
    return " ".join(out) or "(no other data set or backbone has headline cells yet)"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--print", action="store_true", help="print only, write nothing")
    a = p.parse_args(argv)
    cells = load(RES / "cells")
    dense = {(r["config"]["dataset"], r["config"]["backbone"], r["config"]["seed"]): r for r in load(RES / "dense")}
    g = grouped(cells)
    chosen = chosen_variants(g)
    head_key = ("los-loop", "stid", 0.5, "all", chosen.get(("los-loop", "stid", 0.5, "all"), ""))
    parts, summaries = [], {}
    main_table = "(no cells yet)"
    for key in sorted(g, key=lambda k: (k[0], k[1], k[3], k[2], k[4])):
        t, s = grid_table(key, g[key], dense)
        parts.append(t)
        summaries[key] = s
        if key == head_key:
            main_table = t
    planted_path = RES / "planted_recovery.json"
    blocks = {"dense": dense_table(dense), "grid": "\n\n".join(parts) or "(no cells yet)",
              "sweep": sweep_table(load(RES / "sweep"), cells, None if a.print else RES / "sweep_choice.json"),
              "finetune-lr": finetune_lr_table(load(RES / "sweep"), cells),
              "planted": planted_table(json.loads(planted_path.read_text()) if planted_path.exists() else None)}
    blocks["headline"] = headline(summaries, dense, chosen)
    blocks["statement"] = statement(summaries, head_key[4])
    blocks["others"] = other_statements(summaries, chosen)
    if a.print:
        for k, v in blocks.items():
            print(f"--- {k}\n{v}\n")
        return
    readme = HERE / "README.md"
    text = readme.read_text()
    for name in ("dense", "grid", "sweep", "finetune-lr", "planted", "headline"):
        text = replace_block(text, name, blocks[name])
    readme.write_text(text)
    top = HERE.parent / "README.md"
    text = top.read_text()
    for name, body in (("headline", blocks["headline"]), ("statement", blocks["statement"]),
                       ("others", blocks["others"]), ("main", main_table)):
        text = replace_block(text, name, body)
    top.write_text(text)
    plot(cells, dense, RES)  # RES.parent holds the plots
    print(f"rewrote {readme} and {top}")


if __name__ == "__main__":
    main()
