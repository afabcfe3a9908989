"""Accuracy and speed cost of a sparsified adaptive adjacency (Graph WaveNet ``adaptive_topk``) on Los-loop.

Graph WaveNet's adaptive adjacency ``softmax(relu(E1 E2^T))`` is N x N; ``adaptive_topk=k``
keeps the ``k`` largest entries of every row (renormalised), so the support used in the
diffusion is O(N k). This trains the dense-graph Graph WaveNet (``small`` profile, all 207
sensors, no pruning) with the full adaptive adjacency and with ``k`` in ``--ks``, the same
seeds, epochs and batches for every variant (one :class:`~dynst_pyg.training.EpochEngine`
loop each), and reports validation and test MAE (original scale, mph; chronological 7:1:2
split) and the median seconds per training step. Variants of one seed run one after
another in the same process, so the time ratios are taken in one run.

Usage::

    python benchmarks/adaptive_topk.py --out benchmarks/results/adaptive_topk.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from dynst_pyg.data import prepare
from dynst_pyg.datasets import load_los_loop
from dynst_pyg.training.engine import EpochEngine, Phase, resolve_device
from dynst_pyg.metrics import forecast_metrics, masked_mae
from dynst_pyg.models import GraphWaveNet


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ks", type=int, nargs="+", default=[8, 32], help="entries kept per row (besides the dense run)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--max-batches", type=int, default=15, help="steps per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


@torch.no_grad()
def evaluate(model, windows, splits, ei, ew, batch_size: int = 128) -> Dict[str, float]:
    model.eval()
    preds, ys = [], []
    for idx in torch.arange(len(windows)).split(batch_size):
        x, y = windows.batch(idx)
        preds.append(splits.scaler.inverse_transform(model(x, ei, ew).float()))
        ys.append(y)
    return forecast_metrics(torch.cat(preds), torch.cat(ys), splits.null_value, horizons=(3, 6, 12))


def run(k: Optional[int], seed: int, args: argparse.Namespace, splits, device) -> Dict[str, Any]:
    torch.manual_seed(seed)
    model = GraphWaveNet(splits.num_nodes, profile="small", adaptive_topk=k).to(device)
    ei, ew = splits.edge_index.to(device), splits.edge_weight.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step_times: List[float] = []

    def loss(module, idx):
        t = time.perf_counter()
        x, y = splits.train.batch(idx)
        out = masked_mae(splits.scaler.inverse_transform(module(x, ei, ew).float()), y, splits.null_value,
                         reduction="none")
        step_times.append(time.perf_counter() - t)
        return out

    engine = EpochEngine(device=device, batch_size=args.batch_size, max_batches=args.max_batches, seed=seed,
                         progress=False)
    t0 = time.perf_counter()
    engine.run(Phase("train", model, opt, args.epochs, len(splits.train), loss))
    train_s = time.perf_counter() - t0
    val, test = evaluate(model, splits.val, splits, ei, ew), evaluate(model, splits.test, splits, ei, ew)
    return {"k": k, "seed": seed, "val_mae": val["mae"], "test_mae": test["mae"], "test_mae_h3": test["mae_h3"],
            "test_mae_h12": test["mae_h12"], "forward_s_median": statistics.median(step_times),
            "train_seconds": train_s}


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    splits = prepare(load_los_loop()).to(device)
    rows = []
    for seed in args.seeds:
        for k in [None, *args.ks]:
            r = run(k, seed, args, splits, device)
            rows.append(r)
            print(f"seed {seed} k={'dense' if k is None else k}: val MAE {r['val_mae']:.3f}, test MAE "
                  f"{r['test_mae']:.3f}, forward {r['forward_s_median'] * 1e3:.0f} ms/step", flush=True)
    print(f"\n{'adaptive adjacency':>20} {'val MAE':>14} {'test MAE':>14} {'fwd ms/step':>12}")
    summary = []
    for k in [None, *args.ks]:
        rs = [r for r in rows if r["k"] == k]
        s = {"k": k, **{f"{m}_mean": statistics.mean(r[m] for r in rs) for m in ("val_mae", "test_mae")},
             **{f"{m}_std": statistics.pstdev([r[m] for r in rs]) for m in ("val_mae", "test_mae")},
             "forward_ms": 1e3 * statistics.median(r["forward_s_median"] for r in rs)}
        summary.append(s)
        name = "dense N x N" if k is None else f"top-{k} per row"
        print(f"{name:>20} {s['val_mae_mean']:8.3f} ± {s['val_mae_std']:.3f} {s['test_mae_mean']:8.3f} ± "
              f"{s['test_mae_std']:.3f} {s['forward_ms']:12.0f}")
    result = {"device": str(device), "threads": torch.get_num_threads(),
              "budget": {"epochs": args.epochs, "max_batches": args.max_batches, "batch_size": args.batch_size},
              "data": "Los-loop, 207 sensors, chronological 7:1:2, speed mph, all sensors (no pruning)",
              "rows": rows, "summary": summary}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
