"""Training-window pruning benchmark: full data vs random vs InfoBatch vs ST-Prune.

Los-loop (real METR-LA speeds, 207 sensors), Graph WaveNet ``small`` profile, the same
number of epochs, optimiser and batch size for every policy. For every seed the
full-data run comes first and the pruned runs follow, so the time ratios
(``train_seconds / full train_seconds`` of the same seed) are taken in the same process
and the same run. Training time counts only the training loop (forward, backward,
step, ``set_epoch``/``update`` of the sampler; ST-Prune's one-off complexity pass is
reported separately as ``setup_seconds`` and also included in ``train_seconds``).
Wall-clock time is the headline (``time_ratio``); because the CPU may be shared with
other processes, the process CPU time ratio (``cpu_time_ratio``) is reported too.
Test metrics are computed on the raw scale with missing readings (0 on Los-loop, NaN on
Aarhus) masked, for the model at the end of training.

Skip targets are *overall*: the fraction of window visits skipped over all epochs,
including epoch 0 (always full: no losses recorded yet) and the annealing epochs
``>= ceil(delta * E)`` (full data, weights 1). The per-pruning-epoch fraction passed to
the samplers' target-ratio mode is therefore
``s_epoch = s * E / (ceil(delta * E) - 1)`` (:func:`dynst_pyg.sampling.epoch_skip_ratio`);
e.g. E = 10, delta = 0.875: s = 0.3 / 0.5 / 0.7 -> 0.375 / 0.625 / 0.875 per pruning
epoch. All pruned policies use the same target-ratio mode: random prunes ``s_epoch`` of
all windows; InfoBatch and ST-Prune skip a fraction ``r`` of the windows
under the score quantile ``q = s_epoch / r`` with ``r = s_epoch ** 0.75`` (``--prune-ratio-power``;
InfoBatch: loss only, one ratio; ST-Prune: loss x (1 + alpha complexity), per-stationarity-bin
ratios). The learning rate follows a per-epoch cosine decay (``--lr-schedule``), the same for
every policy.

Usage::

    python benchmarks/sample_pruning.py --quick --out quick.json
    python benchmarks/sample_pruning.py --out full.json        # 3 seeds x 3 targets x 4 policies

``--quick`` (1 seed, skip target 0.5, 6 epochs, every 2nd training window) runs in
well under 10 minutes on 2 CPU cores.

Aarhus (449 segments, readings missing): ``--dataset aarhus --resample 3 --time-features``
trains on 15-minute averages of the observed readings
(:func:`dynst_pyg.data.resample_mean`) with time-of-day / day-of-week inputs; missing
targets never enter a loss, a window score or a metric, and ST-Prune's complexity is
computed on the reading channels only (not the time channels). The JSON also holds
persistence and the time-of-day average (:func:`dynst_pyg.training.reference_metrics`) on
the same test windows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from dynst_pyg.data import prepare
from dynst_pyg.training.references import reference_metrics
from dynst_pyg.data import SPLIT_RATIOS, WindowDataset, resample_mean
from dynst_pyg.datasets import load_dataset, load_los_loop, synthetic_road_network
from dynst_pyg.training.engine import EpochEngine, Phase, resolve_device
from dynst_pyg.metrics import forecast_metrics, masked_mae
from dynst_pyg.sampling import POLICIES, PruningSampler, epoch_skip_ratio, make_sampler

HORIZONS = (3, 6, 12)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=("los-loop", "aarhus", "synthetic"), default="los-loop",
                   help="los-loop (default), aarhus, or a small synthetic network (for development)")
    p.add_argument("--resample", type=int, default=1,
                   help="average blocks of this many steps first (observed readings only; e.g. 3: 5 -> 15 min)")
    p.add_argument("--time-features", action="store_true", help="time of day and day of week input channels")
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    p.add_argument("--skip-targets", nargs="+", type=float, default=[0.3, 0.5, 0.7],
                   help="overall skipped fraction of window visits (all epochs)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--delta", type=float, default=0.875)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine",
                   help="per-epoch learning rate: cosine decay to --lr-min-factor * lr over the epochs "
                        "(the same for every policy), or constant")
    p.add_argument("--lr-min-factor", type=float, default=0.05)
    p.add_argument("--prune-ratio-power", type=float, default=0.75,
                   help="InfoBatch/ST-Prune in target-ratio mode skip r = s_epoch ** power of the windows under "
                        "the score quantile s_epoch / r (0.75: the samplers' default; 0.5: r = sqrt(s_epoch); "
                        "1: r = s_epoch, every scored window is a candidate)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="32", choices=("32", "bf16", "16"), help="training precision")
    p.add_argument("--alpha", type=float, default=1.0, help="ST-Prune complexity weight")
    p.add_argument("--num-bins", type=int, default=4, help="ST-Prune stationarity bins")
    p.add_argument("--stationarity-strength", type=float, default=0.2)
    p.add_argument("--train-stride", type=int, default=1, help="keep every k-th training window")
    p.add_argument("--profile", default="small", help="Graph WaveNet profile")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (ratios are what matter)")
    p.add_argument("--quick", action="store_true",
                   help="1 seed, skip target 0.5, 6 epochs, train stride 2 (< 10 min on 2 cores)")
    p.add_argument("--out", default=None, help="write the rows as JSON to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.skip_targets, args.epochs, args.train_stride = [0], [0.5], 6, 2
    for s in args.skip_targets:
        epoch_skip_ratio(s, args.epochs, args.delta)          # fails early with a clear message
    if args.train_stride < 1:
        p.error("--train-stride must be >= 1")
    return args


def load_splits(args: argparse.Namespace, device: torch.device):
    if args.dataset == "synthetic":
        ds = synthetic_road_network(num_nodes=40, num_steps=1200)
    else:
        ds = load_los_loop() if args.dataset == "los-loop" else load_dataset(args.dataset)
    if args.resample > 1:
        ds = resample_mean(ds, args.resample)
    splits = prepare(ds, t_in=12, t_out=12, ratios=SPLIT_RATIOS.get(ds.name, (0.7, 0.1, 0.2)),
                        time_features=args.time_features).to(device)   # windows are sliced on the device
    train = splits.train
    if args.train_stride > 1:
        train = WindowDataset(train.inputs, train.targets, train.starts[::args.train_stride], train.t_in,
                              train.t_out, train.edge_index, train.edge_weight, train.pos, train.sensor_id)
    return splits, train


def build_model(args: argparse.Namespace, splits, seed: int) -> torch.nn.Module:
    from dynst_pyg.models.graph_wavenet import GraphWaveNet

    torch.manual_seed(seed)                        # model init and dropout; the samplers use their own generators
    return GraphWaveNet(num_nodes=splits.num_nodes, in_features=splits.in_features,
                        out_features=splits.out_features, t_in=splits.t_in, t_out=splits.t_out,
                        profile=args.profile)


@torch.no_grad()
def evaluate(model: torch.nn.Module, wd: WindowDataset, splits, ei: torch.Tensor, ew: torch.Tensor,
             batch_size: int = 128) -> Dict[str, float]:
    model.eval()
    preds, trues = [], []
    for start in range(0, len(wd), batch_size):
        idx = torch.arange(start, min(len(wd), start + batch_size))
        x, y = wd.batch(idx)
        preds.append(splits.scaler.inverse_transform(model(x, ei, ew).float()))
        trues.append(y)
    return forecast_metrics(torch.cat(preds), torch.cat(trues), splits.null_value, horizons=HORIZONS)


def make_policy(policy: str, skip_target: float, seed: int, args: argparse.Namespace, splits,
                train: WindowDataset) -> PruningSampler:
    kw: Dict[str, Any] = dict(seed=seed)
    if policy != "full":
        s_epoch = epoch_skip_ratio(skip_target, args.epochs, args.delta)
        kw.update(delta=args.delta, target_ratio=s_epoch)
        if policy in ("infobatch", "stprune"):
            kw.update(prune_ratio=s_epoch ** args.prune_ratio_power)
    if policy == "stprune":
        kw.update(alpha=args.alpha, num_bins=args.num_bins, stationarity_strength=args.stationarity_strength,
                  features=list(range(splits.dataset.num_features)))    # reading channels, not time channels
    return make_sampler(policy, len(train), args.epochs, window_dataset=train, edge_index=splits.edge_index,
                        edge_weight=splits.edge_weight, **kw)


def epoch_lr(args: argparse.Namespace, epoch: int) -> float:
    """Learning rate of ``epoch`` (per-epoch schedule, identical for every policy)."""
    if args.lr_schedule == "constant" or args.epochs == 1:
        return args.lr
    lo = args.lr * args.lr_min_factor
    return lo + 0.5 * (args.lr - lo) * (1.0 + math.cos(math.pi * epoch / (args.epochs - 1)))


def run_one(policy: str, skip_target: float, seed: int, args: argparse.Namespace, splits,
            train: WindowDataset, device: torch.device) -> Dict[str, Any]:
    model = build_model(args, splits, seed).to(device)
    ei, ew = splits.edge_index.to(device), splits.edge_weight.to(device)
    model.prepare_graph(ei, ew)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    t0, c0 = time.perf_counter(), time.process_time()
    sampler = make_policy(policy, skip_target, seed, args, splits, train)
    setup = time.perf_counter() - t0
    per_epoch: List[int] = []

    def loss(module: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
        x, y = train.batch(idx)
        pred = splits.scaler.inverse_transform(module(x, ei, ew).float())
        return masked_mae(pred, y, splits.null_value, reduction="none")

    def set_lr(epoch: int) -> None:
        for group in opt.param_groups:
            group["lr"] = epoch_lr(args, epoch)

    # the package's one epoch loop (device, precision, sampler weights and updates, clipping)
    engine = EpochEngine(device=device, precision=args.precision, batch_size=args.batch_size, clip_grad=args.clip,
                         seed=seed, progress=False)
    engine.run(Phase("train", model, opt, args.epochs, len(train), loss, sampler=sampler, on_epoch_start=set_lr,
                     on_epoch_end=lambda rec, _: per_epoch.append(rec["samples"])))
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.perf_counter() - t0
    train_cpu = time.process_time() - c0
    metrics = evaluate(model, splits.test, splits, ei, ew)
    seen = sum(per_epoch)
    row: Dict[str, Any] = {
        "policy": policy, "skip_target": skip_target if policy != "full" else 0.0, "seed": seed,
        "train_seconds": train_seconds, "setup_seconds": setup, "time_ratio": None,
        "train_cpu_seconds": train_cpu, "cpu_time_ratio": None,
        "samples_seen": seen, "kept_fraction": seen / (args.epochs * len(train)),
        "windows_per_epoch": per_epoch,
    }
    row.update(metrics)
    return row


def _fmt(v: Any, width: int, prec: int = 3) -> str:
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:.{prec}f}".rjust(width)
    return str(v).rjust(width)


def print_rows(rows: List[Dict[str, Any]]) -> None:
    cols = [("policy", 10, 0), ("skip_target", 5, 2), ("seed", 4, 0), ("train_seconds", 8, 1),
            ("time_ratio", 6, 3), ("cpu_time_ratio", 6, 3), ("samples_seen", 7, 0), ("kept_fraction", 6, 3),
            ("mae", 7, 4), ("rmse", 7, 4), ("mape", 7, 3), ("mae_h3", 7, 4), ("mae_h6", 7, 4), ("mae_h12", 7, 4)]
    heads = ["policy", "skip", "seed", "train_s", "t/full", "cpu/f", "seen", "kept", "MAE", "RMSE", "MAPE%",
             "MAE@3", "MAE@6", "MAE@12"]
    print(" ".join(h.rjust(w) for h, (_, w, _) in zip(heads, cols)))
    for r in rows:
        print(" ".join(_fmt(r.get(k), w, p) for k, w, p in cols))


def summarise(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["policy"], r["skip_target"]), []).append(r)
    out = []
    full_mae = {r["seed"]: r["mae"] for r in rows if r["policy"] == "full"}
    for (policy, skip), rs in groups.items():
        rel = [r["mae"] / full_mae[r["seed"]] - 1.0 for r in rs if r["seed"] in full_mae]
        out.append({
            "policy": policy, "skip_target": skip, "seeds": len(rs),
            "time_ratio_median": statistics.median(r["time_ratio"] for r in rs),
            "cpu_time_ratio_median": statistics.median(r["cpu_time_ratio"] for r in rs),
            "kept_fraction": statistics.mean(r["kept_fraction"] for r in rs),
            "mae_mean": statistics.mean(r["mae"] for r in rs),
            "mae_std": statistics.pstdev([r["mae"] for r in rs]),
            "mae_rel_to_full_mean": statistics.mean(rel) if rel else None,
            "rmse_mean": statistics.mean(r["rmse"] for r in rs),
            "mape_mean": statistics.mean(r["mape"] for r in rs),
        })
    return out


def print_summary(summary: List[Dict[str, Any]]) -> None:
    print("\nsummary (mean over seeds; time ratio = median of per-seed train_seconds / full)")
    print(f"{'policy':>10} {'skip':>5} {'seeds':>5} {'t/full':>7} {'cpu/f':>6} {'kept':>6} {'MAE':>8} {'+-':>7} "
          f"{'dMAE%':>7} {'RMSE':>8} {'MAPE%':>7}")
    for s in summary:
        rel = s["mae_rel_to_full_mean"]
        print(f"{s['policy']:>10} {s['skip_target']:>5.2f} {s['seeds']:>5} {s['time_ratio_median']:>7.3f} "
              f"{s['cpu_time_ratio_median']:>6.3f} {s['kept_fraction']:>6.3f} {s['mae_mean']:>8.4f} "
              f"{s['mae_std']:>7.4f} "
              f"{(100 * rel if rel is not None else float('nan')):>7.2f} {s['rmse_mean']:>8.4f} {s['mape_mean']:>7.3f}")


def goal_check(summary: List[Dict[str, Any]]) -> List[str]:
    lines = []
    by = {(s["policy"], s["skip_target"]): s for s in summary}
    for (policy, skip), s in sorted(by.items()):
        if policy != "stprune" or 1.0 - s["kept_fraction"] < 0.4 - 0.005:  # 0.5 % slack: k is rounded per bin
            continue
        rel = s["mae_rel_to_full_mean"]
        ok_time = s["time_ratio_median"] <= 0.6
        ok_mae = rel is not None and rel <= 0.01
        others = [by[(p, skip)]["mae_mean"] for p in ("infobatch", "random") if (p, skip) in by]
        ok_base = all(s["mae_mean"] <= m for m in others) if others else None
        lines.append(f"goal @ skip {skip:.2f} (skipped {1 - s['kept_fraction']:.1%}): time ratio "
                     f"{s['time_ratio_median']:.3f} {'<=' if ok_time else '>'} 0.6 [{'ok' if ok_time else 'MISSED'}]; "
                     f"MAE vs full {100 * (rel or 0):+.2f}% [{'ok' if ok_mae else 'MISSED'} (<= +1%)]; "
                     f"vs InfoBatch/random: {'ok' if ok_base else ('MISSED' if ok_base is False else 'n/a')}")
    return lines


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    splits, train = load_splits(args, device)
    print(f"data: {splits!r}; training windows used: {len(train)} (stride {args.train_stride}); "
          f"epochs {args.epochs}, delta {args.delta}, batch {args.batch_size}, threads {args.threads}, "
          f"device {device}, precision {args.precision}")
    for s in args.skip_targets:
        print(f"skip target {s:.2f} overall -> {epoch_skip_ratio(s, args.epochs, args.delta):.3f} per pruning epoch "
              f"(epochs 1..{math.ceil(args.delta * args.epochs) - 1})")
    rows: List[Dict[str, Any]] = []
    t_start = time.perf_counter()
    for seed in args.seeds:
        full_row = run_one("full", 0.0, seed, args, splits, train, device)
        full_row["time_ratio"] = full_row["cpu_time_ratio"] = 1.0
        print(f"  seed {seed} full: {full_row['train_seconds']:.1f}s MAE {full_row['mae']:.4f} (h3 "
              f"{full_row['mae_h3']:.4f}, h6 {full_row['mae_h6']:.4f}, h12 {full_row['mae_h12']:.4f})", flush=True)
        if "full" in args.policies:
            rows.append(full_row)
        for skip in args.skip_targets:
            for policy in args.policies:
                if policy == "full":
                    continue
                row = run_one(policy, skip, seed, args, splits, train, device)
                row["time_ratio"] = row["train_seconds"] / full_row["train_seconds"]
                row["cpu_time_ratio"] = row["train_cpu_seconds"] / full_row["train_cpu_seconds"]
                rows.append(row)
                print(f"  seed {seed} {policy} @ {skip:.2f}: {row['train_seconds']:.1f}s "
                      f"(x{row['time_ratio']:.3f}) kept {row['kept_fraction']:.3f} MAE {row['mae']:.4f}", flush=True)
        if "full" not in args.policies:
            rows.append(full_row)                   # the reference is always reported
    print()
    print_rows(rows)
    summary = summarise(rows)
    print_summary(summary)
    goals = goal_check(summary)
    for line in goals:
        print(line)
    print(f"total wall time {time.perf_counter() - t_start:.1f}s")
    refs = reference_metrics(splits.to("cpu"), "test", horizons=HORIZONS)
    for k, m in refs.items():
        print(f"reference test {k}: MAE {m['mae']:.3f} h3 {m['mae_h3']:.3f} h6 {m['mae_h6']:.3f} "
              f"h12 {m['mae_h12']:.3f}")
    ds = splits.dataset
    result = {"config": {k: v for k, v in vars(args).items() if k != "out"}, "device": str(device),
              "threads": torch.get_num_threads(), "seeds": args.seeds,
              "split": f"chronological {':'.join(str(round(10 * r)) for r in splits.ratios)} (val/test windows "
                       "whose targets overlap the previous split dropped); test metrics, model at the end of training",
              "output_mode": "dense model, every sensor forecast (no sensor pruning)",
              "budget": {"epochs": args.epochs, "batch_size": args.batch_size, "train_stride": args.train_stride,
                         "train_windows": len(train), "delta": args.delta, "lr": args.lr,
                         "lr_schedule": args.lr_schedule},
              "data": {"dataset": args.dataset, "interval_minutes": ds.interval_minutes, "resample": args.resample,
                       "steps": ds.num_steps, "nodes": ds.num_nodes, "observed_share": ds.observed_share,
                       "time_features": args.time_features, "test_windows": len(splits.test)},
              "references_test": refs,
              "wall_seconds": time.perf_counter() - t_start, "rows": rows,
              "summary": summary, "goal": goals}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
