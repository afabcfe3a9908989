"""Do time-of-day and day-of-week input channels help? Validation MAE with and without them.

For each dataset and seed, the dense Graph WaveNet (profile small) is trained the same way twice,
once on windows with the two time channels of ``prepare(time_features=True)`` and once without,
and its best validation MAE (early stopping on validation) is recorded. Only the validation split
is read: the result chooses a default. One JSON per (dataset, time_features, seed) cell under
``benchmarks/results/time_features/`` (skipped when present with the same settings; recomputed
when the settings differ); ``--table`` prints the summary from the cells.

    python benchmarks/time_features.py --datasets los-loop aarhus15 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from dynst_pyg import DynSTConfig, DynSTTrainer, prepare
from dynst_pyg.data import resample_mean
from dynst_pyg.datasets import load_aarhus, load_los_loop
from dynst_pyg.models import make_backbone
from render_sample_pruning import replace_block  # the README-block writer of the benchmarks

OUT = Path(__file__).resolve().parent / "results" / "time_features"


def load(name: str):
    if name == "los-loop":
        return load_los_loop()
    if name == "aarhus15":
        return resample_mean(load_aarhus(), 3)
    raise ValueError(f"unknown dataset {name!r}: los-loop or aarhus15")


def run_cell(name: str, time_features: bool, seed: int, settings: dict) -> dict:
    path = OUT / f"{name}_tf{int(time_features)}_seed{seed}.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("settings") == settings:
            return old
        print(f"[time_features] {path.name}: settings changed, recomputing", file=sys.stderr)
    torch.manual_seed(seed)
    ds = load(name)
    splits = prepare(ds, time_features=time_features)
    N = splits.num_nodes

    def factory():
        return make_backbone("gwnet", N, splits.in_features, splits.out_features, splits.t_in, splits.t_out)

    cfg = DynSTConfig(sparsity=0.0, warmup_epochs=settings["warmup_epochs"], finetune_epochs=settings["epochs"],
                      patience=settings["patience"], max_batches=settings["max_batches"], batch_size=64, seed=seed,
                      progress=False, device="cpu")
    t0 = time.perf_counter()
    res = DynSTTrainer(factory, splits, cfg).train_dense_reference()
    cell = {"dataset": name, "time_features": time_features, "seed": seed, "settings": settings,
            "val": res.val_metrics, "seconds": time.perf_counter() - t0, "device": "cpu",
            "threads": torch.get_num_threads(), "split_read": "validation only"}
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell, indent=2))
    return cell


def _budget(settings: dict) -> str:
    return (f"{settings['warmup_epochs']} + {settings['epochs']} epochs (patience {settings['patience']}), "
            f"{settings['max_batches']} batches/epoch")


def table(cells: list[dict]) -> str:
    """One row per (dataset, budget, time features); the paired difference per seed under each pair."""
    rows = ["| dataset | budget | time features | val MAE (mean ± std) | h3 | h6 | h12 | seeds |",
            "|---|---|---|---|---|---|---|---|"]
    keys = sorted({(c["dataset"], _budget(c["settings"]), c["time_features"]) for c in cells})
    for ds, budget, tf in keys:
        cs = [c for c in cells if c["dataset"] == ds and _budget(c["settings"]) == budget and c["time_features"] == tf]
        m = [c["val"]["mae"] for c in cs]
        hs = [statistics.mean(c["val"][f"mae_h{h}"] for c in cs) for h in (3, 6, 12)]
        sd = statistics.stdev(m) if len(m) > 1 else float("nan")
        rows.append(f"| {ds} | {budget} | {'yes' if tf else 'no'} | {statistics.mean(m):.3f} ± {sd:.3f} | "
                    + " | ".join(f"{h:.3f}" for h in hs) + f" | {len(cs)} |")
    diffs = []
    for ds, budget in sorted({(d, b) for d, b, _ in keys}):
        by = {(c["seed"], c["time_features"]): c["val"]["mae"] for c in cells
              if c["dataset"] == ds and _budget(c["settings"]) == budget}
        d = [by[(s, True)] - by[(s, False)] for s in sorted({s for s, _ in by}) if (s, True) in by and (s, False) in by]
        if d:
            sd = statistics.stdev(d) if len(d) > 1 else float("nan")
            diffs.append(f"- {ds} ({budget}): with minus without, paired by seed: {statistics.mean(d):+.3f} ± "
                         f"{sd:.3f} ({', '.join(f'{x:+.3f}' for x in d)})")
    return "\n".join(rows) + ("\n\n" + "\n".join(diffs) if diffs else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["los-loop", "aarhus15"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--warmup-epochs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20, help="dense fine-tune epoch cap (early stopping on val)")
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--max-batches", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", action="store_true", help="only print the table of the cells present")
    ap.add_argument("--readme", action="store_true",
                    help="only write the table between the time-features markers of benchmarks/README.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = {"backbone": "gwnet-small", "warmup_epochs": args.warmup_epochs, "epochs": args.epochs,
                "patience": args.patience, "max_batches": args.max_batches, "batch_size": 64}
    if not (args.table or args.readme):
        for name in args.datasets:
            for seed in args.seeds:
                for tf in (False, True):
                    c = run_cell(name, tf, seed, settings)
                    print(f"[time_features] {name} tf={tf} seed {seed}: val MAE {c['val']['mae']:.3f} "
                          f"({c['seconds']:.0f} s)", flush=True)
    cells = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))] if OUT.is_dir() else []
    text = table(cells)
    if args.readme:
        replace_block(str(Path(__file__).resolve().parent / "README.md"), "time_features", text)
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
