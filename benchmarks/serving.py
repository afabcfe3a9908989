"""Serving latency: dense eager vs pruned eager vs pruned exported (and AOTInductor), at batch 1 and 64.

Models are freshly initialised, not trained: the latency of a forward pass does not depend on
the weights' values, only on the shapes. Pruned models keep a random ``1 - sparsity`` share of
the sensors (the sub-graph of :class:`~dynst_pyg.transforms.DynSTMask`). The three calls of a
cell are timed interleaved (rotating order) with one torch thread; per repeat the ratio
pruned-exported / dense-eager is taken, and its median and interquartile range reported. At
the ``--aot-sparsities`` the exported program is also compiled with AOTInductor
(:func:`~dynst_pyg.cli.export.compile_aot`) and timed as a fourth call. Before timing, every
program's forecast is checked against the eager pruned model's (max abs difference <= 1e-4).

    python benchmarks/serving.py                 # writes benchmarks/results/serving.json
    python benchmarks/serving.py --table         # prints the markdown table of the JSON
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from dynst_pyg.cli.export import compile_aot, export_served
from render_sample_pruning import replace_block  # the README-block writer of the benchmarks
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


_BUILT: dict = {}  # (backbone, network, N, sparsity) -> the pruned model and its programs, shared by the batches


def _pruned(backbone: str, ds, sparsity: float, aot: bool, g: torch.Generator) -> dict:
    key = (backbone, ds.name, ds.num_nodes, sparsity, aot)
    if key in _BUILT:
        return _BUILT[key]
    N = ds.num_nodes
    k = max(1, int(round(N * (1 - sparsity))))
    keep = torch.randperm(N, generator=g)[:k].sort().values
    pruned = _served(backbone, ds, keep)
    t0 = time.perf_counter()
    program, kind = export_served(pruned, torch.randn(2, 12, k, 1, generator=g))
    built = {"k": k, "pruned": pruned, "kind": kind, "export_seconds": time.perf_counter() - t0,
             "exported": program.module() if kind == "export" else program, "graph": program.graph_constants}
    if aot and kind == "export":
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            path = compile_aot(program, Path(d) / "model.aoti.pt2")
            built["aoti"] = torch._inductor.aoti_load_package(str(path))
        built["aot_seconds"] = time.perf_counter() - t0
    _BUILT.clear()  # one pruned model alive at a time (memory at 2,000 sensors)
    _BUILT[key] = built
    return built


@torch.no_grad()
def cell(backbone: str, ds, sparsity: float, batch: int, repeats: int, dense, seed: int = 0, warmup: int = 3,
         aot: bool = False) -> dict:
    N = ds.num_nodes
    g = torch.Generator().manual_seed(seed)
    b = _pruned(backbone, ds, sparsity, aot, g)
    k, pruned, exported, kind = b["k"], b["pruned"], b["exported"], b["kind"]
    xk = torch.randn(batch, 12, k, 1, generator=g)
    xn = torch.randn(batch, 12, N, 1, generator=g)
    export_s = b["export_seconds"]
    calls = {"dense_eager": (dense, xn), "pruned_eager": (pruned, xk), "pruned_exported": (exported, xk)}
    if "aoti" in b:
        calls["pruned_aoti"] = (b["aoti"], xk)
    want = pruned(xk)
    diffs = {name: float((fn(x) - want).abs().max()) for name, (fn, x) in calls.items() if name.startswith("pruned_")}
    if max(diffs.values()) > 1e-4:  # every program computes the eager forecast
        raise RuntimeError(f"{backbone} N={N} K={k} b={batch}: a program differs from eager: {diffs}")
    for fn, x in calls.values():  # warm-up: TorchScript's profiling executor optimises over the first calls
        for _ in range(warmup):
            fn(x)
    times = {name: [] for name in calls}
    names = list(calls)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, x = calls[name]
            times[name].append(_time(fn, x))
    out = {"backbone": backbone, "network": ds.name, "sensors": N, "kept": k, "sparsity": sparsity, "batch": batch,
           "export_kind": kind, "graph": b["graph"], "export_seconds": export_s, "aot_seconds": b.get("aot_seconds"),
           "max_abs_diff_to_eager": diffs, "warmup_calls": warmup, **{n: _stats(t) for n, t in times.items()}}
    for name in ("exported", "aoti"):
        if f"pruned_{name}" in times:
            ratio = np.asarray(times[f"pruned_{name}"]) / np.asarray(times["dense_eager"])
            q1, med, q3 = np.percentile(ratio, [25, 50, 75])
            out[f"ratio_{name}_over_dense"] = {"median": float(med), "q1": float(q1), "q3": float(q3)}
    best = min(out[f"ratio_{n}_over_dense"]["median"] for n in ("exported", "aoti") if f"ratio_{n}_over_dense" in out)
    out["goal_2x_met"] = bool(best <= 0.5)
    return out


def _key(c: dict) -> tuple:
    return (c["backbone"], c["network"], c["sensors"], c["sparsity"], c["batch"])


def run(repeats_small: int, repeats_large: int, large_nodes: int, out: Path,
        large_batches: tuple = (1, 64), large_sparsities: tuple = (0.3, 0.5, 0.7), only_large: bool = False,
        keep_cells: bool = False, aot_sparsities: tuple = (0.5,)) -> dict:
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
                    c = cell(backbone, ds, sparsity, batch, reps, dense, warmup=warmup,
                             aot=sparsity in aot_sparsities)
                    result["cells"] = [o for o in result["cells"] if _key(o) != _key(c)] + [c]
                    print(f"{backbone} {ds.name} N={ds.num_nodes} s={sparsity} b={batch}: dense "
                          f"{c['dense_eager']['median_ms']:.1f} ms, pruned {c['pruned_eager']['median_ms']:.1f}, "
                          f"exported ({c['export_kind']}) {c['pruned_exported']['median_ms']:.1f}, AOTInductor "
                          f"{c.get('pruned_aoti', {}).get('median_ms', float('nan')):.1f}; ratios "
                          f"{c['ratio_exported_over_dense']['median']:.2f} / "
                          f"{c.get('ratio_aoti_over_dense', {}).get('median', float('nan')):.2f}", flush=True)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(result, indent=1))  # partial results survive an interruption
    return result


def _ratio(c: dict, name: str) -> str:
    r = c.get(f"ratio_{name}_over_dense")
    return "—" if r is None else f"{r['median']:.2f} [{r['q1']:.2f}, {r['q3']:.2f}]"


def _ms(c: dict, name: str) -> str:
    t = c.get(name)
    return "—" if t is None else f"{t['median_ms']:.1f} ({t['p99_ms']:.1f})"


def table(result: dict) -> str:
    head = ("| backbone | network | N | K | batch | dense eager ms (p99) | pruned eager ms (p99) | "
            "pruned exported ms (p99) | pruned AOTInductor ms (p99) | exported / dense: median [IQR] | "
            "AOTInductor / dense | 2x goal |\n|" + "---|" * 12 + "\n")
    rows = []
    for c in sorted(result["cells"], key=lambda c: (c["sensors"], c["backbone"] != "gwnet", c["sparsity"], c["batch"])):
        rows.append(f"| {c['backbone']} | {c['network']} | {c['sensors']} | {c['kept']} | {c['batch']} | "
                    f"{_ms(c, 'dense_eager')} | {_ms(c, 'pruned_eager')} | {_ms(c, 'pruned_exported')} "
                    f"[{c['export_kind']}] | {_ms(c, 'pruned_aoti')} | {_ratio(c, 'exported')} | "
                    f"{_ratio(c, 'aoti')} | {'met' if c['goal_2x_met'] else 'not met'} |")
    return head + "\n".join(rows) + "\n"


README = Path(__file__).resolve().parent / "README.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed repeats per cell on Los-loop")
    ap.add_argument("--repeats-large", type=int, default=3, help="timed repeats per cell on the large network")
    ap.add_argument("--large-nodes", type=int, default=2000, help="sensors of the synthetic network")
    ap.add_argument("--large-batches", type=int, nargs="+", default=[1, 64],
                    help="batch sizes on the large network (batch 64 at 2,000 sensors takes minutes per cell on CPU)")
    ap.add_argument("--large-sparsities", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--only-large", action="store_true", help="measure the large network only")
    ap.add_argument("--aot-sparsities", type=float, nargs="*", default=[0.5],
                    help="sparsities whose cells also time the AOTInductor package (compiling takes minutes)")
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
            replace_block(str(README), "serving_table", text.rstrip("\n"))
        print(text)
        return
    print(table(run(args.repeats, args.repeats_large, args.large_nodes, args.out, tuple(args.large_batches),
                    tuple(args.large_sparsities), args.only_large, args.keep_cells, tuple(args.aot_sparsities))))


if __name__ == "__main__":
    main()
