"""Serving latency: dense eager vs pruned eager vs pruned exported, at batch 1 and 64.

Models are freshly initialised, not trained: the latency of a forward pass does not depend on
the weights' values, only on the shapes. Pruned models keep a random ``1 - sparsity`` share of
the sensors (the sub-graph of :class:`~dynst_pyg.transforms.DynSTMask`). The three calls of a
cell are timed interleaved (rotating order) with one torch thread; per repeat the ratio
pruned-exported / dense-eager is taken, and its median and interquartile range reported.

    python benchmarks/serving.py                 # writes benchmarks/results/serving.json
    python benchmarks/serving.py --table         # prints the markdown table of the JSON
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from dynst_pyg.cli.export import export_served
from dynst_pyg.datasets import load_los_loop, synthetic_road_network
from dynst_pyg.models import ServedModel, make_backbone
from dynst_pyg.scoring import SensorGate
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.transforms import DynSTMask

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"


def _served(backbone: str, ds, keep):
    N = ds.num_nodes
    bb = make_backbone(backbone, N, 1, 1, 12, 12, "small")
    if keep is None:
        return ServedModel(SensorGate(N), bb, None, ds.edge_index, ds.edge_weight).eval()
    sub = DynSTMask(SensorMask.from_indices(keep, N))(ds)
    return ServedModel(SensorGate(N), bb, keep, sub.edge_index, sub.edge_weight).eval()


def _time(fn, x) -> float:
    t0 = time.perf_counter()
    fn(x)
    return (time.perf_counter() - t0) * 1e3


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)), "n": len(ms)}


@torch.no_grad()
def cell(backbone: str, ds, sparsity: float, batch: int, repeats: int, dense, seed: int = 0, warmup: int = 3,
         kinds: dict = {}) -> dict:  # noqa: B006 - remembers per backbone whether torch.export worked
    N = ds.num_nodes
    g = torch.Generator().manual_seed(seed)
    k = max(1, int(round(N * (1 - sparsity))))
    keep = torch.randperm(N, generator=g)[:k].sort().values
    pruned = _served(backbone, ds, keep)
    xk = torch.randn(batch, 12, k, 1, generator=g)
    xn = torch.randn(batch, 12, N, 1, generator=g)
    t0 = time.perf_counter()
    program, kind = export_served(pruned, xk[:2] if batch >= 2 else torch.randn(2, 12, k, 1, generator=g),
                                  try_export=kinds.get(backbone, "export") == "export")
    kinds[backbone] = kind
    export_s = time.perf_counter() - t0
    exported = program.module() if kind == "export" else program
    calls = {"dense_eager": (dense, xn), "pruned_eager": (pruned, xk), "pruned_exported": (exported, xk)}
    diff = float((exported(xk) - pruned(xk)).abs().max())  # the exported program computes the same forecast
    if diff > 1e-4:
        raise RuntimeError(f"{backbone} N={N} K={k} b={batch}: the {kind} program differs from eager by {diff:.2e}")
    for fn, x in calls.values():  # warm-up: TorchScript's profiling executor optimises over the first calls
        for _ in range(warmup):
            fn(x)
    times = {name: [] for name in calls}
    names = list(calls)
    for r in range(repeats):
        for name in names[r % 3:] + names[:r % 3]:
            fn, x = calls[name]
            times[name].append(_time(fn, x))
    ratio = np.asarray(times["pruned_exported"]) / np.asarray(times["dense_eager"])
    q1, med, q3 = np.percentile(ratio, [25, 50, 75])
    return {"backbone": backbone, "network": ds.name, "sensors": N, "kept": k, "sparsity": sparsity, "batch": batch,
            "export_kind": kind, "export_seconds": export_s, "exported_max_abs_diff": diff, "warmup_calls": warmup, **{n: _stats(t) for n, t in times.items()},
            "ratio_exported_over_dense": {"median": float(med), "q1": float(q1), "q3": float(q3)},
            "goal_2x_met": bool(med <= 0.5)}


def _key(c: dict) -> tuple:
    return (c["backbone"], c["network"], c["sensors"], c["sparsity"], c["batch"])


def run(repeats_small: int, repeats_large: int, large_nodes: int, out: Path,
        large_batches: tuple = (1, 64), large_sparsities: tuple = (0.3, 0.5, 0.7), only_large: bool = False,
        keep_cells: bool = False) -> dict:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    nets = [] if only_large else [(load_los_loop(), repeats_small, (1, 64), (0.3, 0.5, 0.7), 3)]
    # one warm-up call on the large network: a batch-64 call there takes a minute or more on one thread
    nets.append((synthetic_road_network(num_nodes=large_nodes, num_steps=64, seed=0), repeats_large,
                 large_batches, large_sparsities, 1))
    old = json.loads(out.read_text())["cells"] if keep_cells and out.is_file() else []
    result = {"device": "cpu", "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "repeats": {"los-loop": repeats_small, "synthetic": repeats_large},
              "weights": "freshly initialised (latency does not depend on the weights' values)", "cells": []}
    result["large_batches"] = list(large_batches)
    result["cells"] = list(old)
    for ds, reps, batches, sparsities, warmup in nets:
        for backbone in ("gwnet", "dcrnn"):
            dense = _served(backbone, ds, None)
            for sparsity in sparsities:
                for batch in batches:
                    c = cell(backbone, ds, sparsity, batch, reps, dense, warmup=warmup)
                    result["cells"] = [o for o in result["cells"] if _key(o) != _key(c)] + [c]
                    print(f"{backbone} {ds.name} N={ds.num_nodes} s={sparsity} b={batch}: dense "
                          f"{c['dense_eager']['median_ms']:.1f} ms, pruned {c['pruned_eager']['median_ms']:.1f}, "
                          f"exported ({c['export_kind']}) {c['pruned_exported']['median_ms']:.1f}; ratio "
                          f"{c['ratio_exported_over_dense']['median']:.2f}", flush=True)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(result, indent=1))  # partial results survive an interruption
    return result


def table(result: dict) -> str:
    head = ("| backbone | network | N | K | batch | dense eager ms (p99) | pruned eager ms (p99) | "
            "pruned exported ms (p99) | exported / dense: median [IQR] | 2x goal |\n|" + "---|" * 10 + "\n")
    rows = []
    for c in sorted(result["cells"], key=lambda c: (c["sensors"], c["backbone"] != "gwnet", c["sparsity"], c["batch"])):
        r = c["ratio_exported_over_dense"]
        rows.append(f"| {c['backbone']} | {c['network']} | {c['sensors']} | {c['kept']} | {c['batch']} | "
                    f"{c['dense_eager']['median_ms']:.1f} ({c['dense_eager']['p99_ms']:.1f}) | "
                    f"{c['pruned_eager']['median_ms']:.1f} ({c['pruned_eager']['p99_ms']:.1f}) | "
                    f"{c['pruned_exported']['median_ms']:.1f} ({c['pruned_exported']['p99_ms']:.1f}) "
                    f"[{c['export_kind']}] | {r['median']:.2f} [{r['q1']:.2f}, {r['q3']:.2f}] | "
                    f"{'met' if c['goal_2x_met'] else 'not met'} |")
    return head + "\n".join(rows) + "\n"


README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- serving_table:begin -->", "<!-- serving_table:end -->"


def write_readme(text: str) -> None:
    """Replaces what stands between the serving markers of ``benchmarks/README.md`` with ``text``."""
    doc = README.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{README}: the markers {BEGIN} / {END} are missing")
    head, rest = doc.split(BEGIN, 1)
    README.write_text(head + BEGIN + "\n" + text + END + rest.split(END, 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed repeats per cell on Los-loop")
    ap.add_argument("--repeats-large", type=int, default=3, help="timed repeats per cell on the large network")
    ap.add_argument("--large-nodes", type=int, default=2000, help="sensors of the synthetic network")
    ap.add_argument("--large-batches", type=int, nargs="+", default=[1, 64],
                    help="batch sizes on the large network (batch 64 at 2,000 sensors takes minutes per cell on CPU)")
    ap.add_argument("--large-sparsities", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--only-large", action="store_true", help="measure the large network only")
    ap.add_argument("--keep-cells", action="store_true",
                    help="keep the cells of --out that this run does not measure (same key: replaced)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--table", action="store_true", help="print the table of --out and exit")
    ap.add_argument("--readme", action="store_true",
                    help="write the table of --out between the serving markers of benchmarks/README.md and exit")
    args = ap.parse_args()
    if args.table or args.readme:
        text = table(json.loads(args.out.read_text()))
        if args.readme:
            write_readme(text)
        print(text)
        return
    print(table(run(args.repeats, args.repeats_large, args.large_nodes, args.out, tuple(args.large_batches),
                    tuple(args.large_sparsities), args.only_large, args.keep_cells)))


if __name__ == "__main__":
    main()
