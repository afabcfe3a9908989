"""Dense STID on Los-loop, trained to early stopping: does the backbone converge?

STID (Shao et al., CIKM 2022) with the paper's METR-LA configuration (``profile="reference"``:
embeddings of size 32, three residual MLP layers, dropout 0.15) is trained on all 207
Los-loop sensors, 12 -> 12 windows, chronological 7:1:2 split, inputs with the time-of-day
and day-of-week channels of ``prepare(time_features=True)``. Adam, masked MAE on the raw
(mph) scale as the loss, gradient norm clipped at 5, early stopping on validation MAE
(patience in epochs, best weights restored), test read once. Missing readings (0 mph) are
left out of the loss and every metric. Persistence and the per-sensor time-of-day
(historical) average are scored on the same test windows as references.

Usage::

    python benchmarks/stid_dense.py --seeds 0 1 --out benchmarks/results/stid_dense.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from dynst_pyg.training.references import reference_metrics
from dynst_pyg.data import prepare
from dynst_pyg.datasets import load_los_loop
from dynst_pyg.training.engine import resolve_device
from dynst_pyg.metrics import forecast_metrics, masked_mae
from dynst_pyg.models import STID

HORIZONS = (3, 6, 12)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=None, help="cap on optimiser steps (default: none)")
    p.add_argument("--patience", type=int, default=20, help="epochs without a better validation MAE")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--clip", type=float, default=5.0, help="gradient-norm clip")
    p.add_argument("--profile", default="reference")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


@torch.no_grad()
def predict(model, windows, splits, ei, batch_size: int = 256):
    model.eval()
    preds, ys = [], []
    for idx in torch.arange(len(windows)).split(batch_size):
        x, y = windows.batch(idx)
        preds.append(splits.scaler.inverse_transform(model(x, ei).float(), features=splits.target_features))
        ys.append(y)
    return torch.cat(preds), torch.cat(ys)


def run(seed: int, args: argparse.Namespace, splits, device) -> Dict[str, Any]:
    torch.manual_seed(seed)
    model = STID(splits.num_nodes, splits.in_features, splits.out_features, splits.t_in, splits.t_out,
                 profile=args.profile).to(device)
    ei = splits.edge_index.to(device)  # STID ignores the graph
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = len(splits.train)
    best, best_state, best_epoch, bad, steps, epoch = float("inf"), None, -1, 0, 0, 0
    t0 = time.perf_counter()
    best_seconds = 0.0
    for epoch in range(1, args.max_epochs + 1):
        model.train()
        for idx in torch.randperm(n, generator=gen).split(args.batch_size):
            x, y = splits.train.batch(idx.to(device))
            pred = splits.scaler.inverse_transform(model(x, ei), features=splits.target_features)
            loss = masked_mae(pred, y, splits.null_value)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            steps += 1
            if args.max_steps is not None and steps >= args.max_steps:
                break
        val = float(masked_mae(*predict(model, splits.val, splits, ei), splits.null_value))
        if val < best:
            best, best_epoch, bad = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            best_seconds = time.perf_counter() - t0
        else:
            bad += 1
        if bad >= args.patience or (args.max_steps is not None and steps >= args.max_steps):
            break
    train_s = time.perf_counter() - t0
    model.load_state_dict(best_state)
    test = forecast_metrics(*predict(model, splits.test, splits, ei), splits.null_value, horizons=HORIZONS)
    return {"seed": seed, "epochs_run": epoch, "best_epoch": best_epoch, "steps": steps, "val_mae": best,
            "test_mae": test["mae"], **{f"test_mae_h{h}": test[f"mae_h{h}"] for h in HORIZONS},
            "test_rmse": test["rmse"], "test_mape": test["mape"], "train_seconds": train_s,
            "seconds_to_best": best_seconds,
            "parameters": sum(p.numel() for p in model.parameters())}


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    splits = prepare(load_los_loop(), t_in=12, t_out=12, ratios=(0.7, 0.1, 0.2), time_features=True).to(device)
    rows = []
    for seed in args.seeds:
        r = run(seed, args, splits, device)
        rows.append(r)
        print(f"seed {seed}: {r['epochs_run']} epochs (best {r['best_epoch']}), val MAE {r['val_mae']:.3f}, "
              f"test MAE {r['test_mae']:.3f}, {r['train_seconds']:.0f} s", flush=True)
    ref = reference_metrics(splits.to("cpu"), "test", horizons=HORIZONS)
    keys = ["test_mae", *(f"test_mae_h{h}" for h in HORIZONS)]
    summary = {k: {"mean": statistics.mean(r[k] for r in rows), "std": statistics.pstdev([r[k] for r in rows])}
               for k in [*keys, "val_mae", "train_seconds"]}
    print(f"\n{'Los-loop test MAE (mph)':<26} {'avg':>14} {'h3':>14} {'h6':>14} {'h12':>14} {'seconds':>9}")
    print(f"{'STID (' + args.profile + ')':<26} " + " ".join(
        f"{summary[k]['mean']:8.3f} ± {summary[k]['std']:.3f}" for k in keys)
        + f" {summary['train_seconds']['mean']:9.0f}")
    for name, m in (("persistence", ref["persistence"]), ("time-of-day average", ref["time_of_day"])):
        print(f"{name:<26} " + " ".join(f"{m[k]:14.3f}" for k in ("mae", *(f"mae_h{h}" for h in HORIZONS))))
    result = {"device": str(device), "torch_threads": torch.get_num_threads(),
              "data": "Los-loop, 207 sensors, 12 -> 12, chronological 7:1:2, speed mph, "
                      "prepare(time_features=True); missing readings (0) masked",
              "model": {"name": "STID", "profile": args.profile, "parameters": rows[0]["parameters"]},
              "budget": {"max_epochs": args.max_epochs, "max_steps": args.max_steps, "patience": args.patience,
                         "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
                         "clip": args.clip},
              "chosen_by": "validation MAE (early stopping, best epoch restored); test read once per seed",
              "seeds": args.seeds, "rows": rows, "summary": summary,
              "reference": {"persistence": {k: ref["persistence"][k] for k in ("mae", "mae_h3", "mae_h6", "mae_h12")},
                            "time_of_day_average": {k: ref["time_of_day"][k]
                                                    for k in ("mae", "mae_h3", "mae_h6", "mae_h12")}}}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
