"""Training-window pruning, time to accuracy: full data vs ST-Prune vs InfoBatch vs random vs equal steps.

Protocol (DESIGN.md §8). For one dataset and backbone, every policy of a seed starts from the
same initial weights (``torch.manual_seed(seed)`` before the model is built) and trains with
the package's one epoch loop (:class:`~dynst_pyg.training.EpochEngine`) until early stopping
on validation MAE (the same ``--patience`` and ``--epoch-cap`` for every policy; the best
validated state is restored). Policies:

* ``full``: every training window every epoch;
* ``stprune``, ``infobatch``, ``random``: the samplers of :mod:`dynst_pyg.sampling` in
  target-ratio mode, skipping ``--ratio`` of the windows in every pruning epoch (epochs
  ``1 .. ceil(delta * cap) - 1``; the sampler's ``num_epochs`` is the epoch cap);
* ``equal``: full data, stopped at the total gradient-step count of the ``stprune`` cell of
  the same seed ("train on everything, but stop sooner"; same patience as well).

Every epoch records its wall-clock seconds split into training (forward, backward, step),
sampler scoring (ST-Prune's one-off complexity pass, ``set_epoch`` and the per-step loss
``update``: the sampler's methods are timed on the instance) and validation, the process
CPU seconds, gradient steps, windows seen and validation MAE. The *time* of a run is training
+ scoring (validation is the protocol's measurement, recorded apart). Per seed the target is
1.01 x the best validation MAE of the ``full`` cell; a policy's time to target is its first
cumulative time at which validation MAE <= target (``None``: never). Test metrics are read
once, for the best-validation state of each cell. ``render_sample_pruning.py`` turns the
cells into tables and plots.

Cells are resumable: one JSON per (dataset, backbone, policy, seed) under ``--out-dir``
holding its full configuration; an existing cell with the same configuration is skipped, one
with another configuration is refused (``--redo`` overwrites it).

Usage::

    python benchmarks/sample_pruning.py --quick                       # a few minutes, synthetic
    python benchmarks/sample_pruning.py --dataset aarhus --backbone stid --seeds 0 1 2
    python benchmarks/sample_pruning.py --dataset los-loop --backbone gwnet --policies full stprune equal
    python benchmarks/sample_pruning.py --dataset aarhus --backbone stid --sweep   # validation only

``--sweep`` runs ST-Prune over a small grid of ratio / annealing share / score mix and
never reads test (cells under ``results/sample_pruning_sweep/``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from dynst_pyg.data import WindowDataset, prepare, resample_mean
from dynst_pyg.datasets import load_aarhus, load_los_loop, synthetic_road_network
from dynst_pyg.metrics import forecast_metrics, masked_mae
from dynst_pyg.sampling import make_sampler
from dynst_pyg.training.engine import EpochEngine, LoopState, Phase, resolve_device
from dynst_pyg.training.references import reference_metrics

HORIZONS = (3, 6, 12)
POLICIES = ("full", "stprune", "random", "equal", "infobatch")
HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_FACTOR = 1.01

#: Data settings per dataset (what earlier benchmarks used; see benchmarks/README.md).
DATASETS: Dict[str, Dict[str, Any]] = {
    "aarhus": dict(resample=3, train_stride=3),            # 15-minute means of the observed readings
    "los-loop": dict(resample=1, train_stride=1),
    "synthetic": dict(resample=1, train_stride=1, nodes=40, steps=8_064),    # 28 days of 5 minutes
    "synthetic-quick": dict(resample=1, train_stride=2, nodes=30, steps=3_000),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=tuple(DATASETS), default="aarhus")
    p.add_argument("--backbone", choices=("stid", "gwnet"), default="stid")
    p.add_argument("--profile", default="small", help="backbone profile")
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epoch-cap", type=int, default=40)
    p.add_argument("--patience", type=int, default=5, help="epochs without a better validation MAE")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--ratio", type=float, default=0.5,
                   help="fraction of the windows skipped in each pruning epoch (target-ratio mode)")
    p.add_argument("--delta", type=float, default=0.875,
                   help="pruning epochs 1 .. ceil(delta * epoch-cap) - 1, then full data (annealing)")
    p.add_argument("--alpha", type=float, default=1.0, help="ST-Prune complexity weight in the score")
    p.add_argument("--num-bins", type=int, default=4)
    p.add_argument("--strength", type=float, default=0.2, help="ST-Prune stationarity strength")
    p.add_argument("--train-stride", type=int, default=None, help="keep every k-th training window")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out-dir", default=None, help="cell folder (default: results/sample_pruning[_sweep|_quick])")
    p.add_argument("--redo", action="store_true", help="overwrite cells whose stored configuration differs")
    p.add_argument("--sweep", action="store_true",
                   help="ST-Prune over ratio x delta x alpha on validation only (no test read)")
    p.add_argument("--sweep-ratios", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    p.add_argument("--sweep-deltas", nargs="+", type=float, default=[0.5, 0.875])
    p.add_argument("--sweep-alphas", nargs="+", type=float, default=[0.0, 1.0, 3.0])
    p.add_argument("--quick", action="store_true",
                   help="small synthetic network, STID, seed 0, cap 20, patience 3 (a few minutes)")
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.backbone, args.seeds, args.epoch_cap, args.patience = "synthetic-quick", "stid", [0], 20, 3
    if args.train_stride is None:
        args.train_stride = DATASETS[args.dataset]["train_stride"]
    if args.out_dir is None:
        name = "sample_pruning_quick" if args.quick else ("sample_pruning_sweep" if args.sweep else "sample_pruning")
        args.out_dir = os.path.join(HERE, "results", name)
    return args


# ----------------------------------------------------------------------------- data and model
def load_splits(args: argparse.Namespace):
    spec = DATASETS[args.dataset]
    if args.dataset.startswith("synthetic"):
        ds = synthetic_road_network(num_nodes=spec["nodes"], num_steps=spec["steps"], seed=0)
    elif args.dataset == "aarhus":
        ds = load_aarhus()
    else:
        ds = load_los_loop()
    if spec["resample"] > 1:
        ds = resample_mean(ds, spec["resample"])
    splits = prepare(ds, t_in=12, t_out=12, ratios=(0.7, 0.1, 0.2), time_features=True)
    train = splits.train
    if args.train_stride > 1:
        train = WindowDataset(train.inputs, train.targets, train.starts[::args.train_stride], train.t_in,
                              train.t_out, train.edge_index, train.edge_weight, train.pos, train.sensor_id)
    return splits, train


def build_model(args: argparse.Namespace, splits, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)                         # the same initial weights for every policy of a seed
    if args.backbone == "stid":
        from dynst_pyg.models.stid import STID

        steps_per_day = int(round(24 * 60 / splits.dataset.interval_minutes))
        return STID(splits.num_nodes, splits.in_features, splits.out_features, splits.t_in, splits.t_out,
                    profile=args.profile, steps_per_day=steps_per_day)
    from dynst_pyg.models.graph_wavenet import GraphWaveNet

    return GraphWaveNet(num_nodes=splits.num_nodes, in_features=splits.in_features,
                        out_features=splits.out_features, t_in=splits.t_in, t_out=splits.t_out,
                        profile=args.profile)


@torch.no_grad()
def predict(model: torch.nn.Module, wd: WindowDataset, splits, batch_size: int = 256):
    model.eval()
    preds, trues = [], []
    for idx in torch.arange(len(wd)).split(batch_size):
        x, y = wd.batch(idx)
        out = model(x, splits.edge_index, splits.edge_weight).float()
        preds.append(splits.scaler.inverse_transform(out, features=splits.target_features))
        trues.append(y)
    return torch.cat(preds), torch.cat(trues)


# ----------------------------------------------------------------------------- cells
def cell_config(args: argparse.Namespace, policy: str, seed: int, sampler_kw: Dict[str, Any]) -> Dict[str, Any]:
    """Everything that decides a cell's numbers (compared before a stored cell is reused)."""
    cfg = {"dataset": args.dataset, "data": DATASETS[args.dataset], "train_stride": args.train_stride,
           "time_features": True, "backbone": args.backbone, "profile": args.profile, "policy": policy,
           "seed": seed, "epoch_cap": args.epoch_cap, "patience": args.patience, "batch_size": args.batch_size,
           "lr": args.lr, "weight_decay": args.weight_decay, "clip": args.clip, "device": args.device,
           "torch_threads": args.threads, "read_test": not args.sweep}
    if policy in ("stprune", "infobatch", "random", "equal"):
        cfg["sampler"] = dict(sampler_kw)            # equal: the ST-Prune run whose steps it matches
    return cfg


def cell_path(args: argparse.Namespace, policy: str, seed: int, sampler_kw: Dict[str, Any]) -> str:
    tag = f"{args.dataset}_{args.backbone}_{policy}"
    if args.sweep:
        tag += f"_r{sampler_kw['ratio']:g}_d{sampler_kw['delta']:g}_a{sampler_kw['alpha']:g}"
    return os.path.join(args.out_dir, f"{tag}_s{seed}.json")


def load_cell(path: str, cfg: Dict[str, Any], redo: bool) -> Optional[Dict[str, Any]]:
    """The stored cell when its configuration is ``cfg``; ``None`` when absent (or ``redo``)."""
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        cell = json.load(fh)
    stored = cell.get("config", {})
    if stored == cfg:
        return cell
    diff = sorted(k for k in set(stored) | set(cfg) if stored.get(k) != cfg.get(k))
    if redo:
        return None
    raise SystemExit(f"{path} holds another configuration (differs in {', '.join(diff)}: stored "
                     f"{ {k: stored.get(k) for k in diff} } vs now { {k: cfg.get(k) for k in diff} }); "
                     "pass --redo to overwrite it or --out-dir to keep both")


class _Timer:
    """Seconds spent inside wrapped callables (the sampler's scoring work)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t
        return timed


def run_cell(args: argparse.Namespace, policy: str, seed: int, sampler_kw: Dict[str, Any], splits,
             train: WindowDataset, step_budget: Optional[int] = None) -> Dict[str, Any]:
    device = resolve_device(args.device)
    model = build_model(args, splits, seed).to(device)
    if hasattr(model, "prepare_graph"):
        model.prepare_graph(splits.edge_index, splits.edge_weight)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scoring = _Timer()
    t_setup, c_setup = time.perf_counter(), time.process_time()
    if policy in ("full", "equal"):
        sampler = make_sampler("full", len(train), args.epoch_cap, seed=seed)
    else:
        kw: Dict[str, Any] = dict(seed=seed, delta=sampler_kw["delta"], target_ratio=sampler_kw["ratio"])
        if policy == "stprune":
            kw.update(alpha=sampler_kw["alpha"], num_bins=sampler_kw["num_bins"],
                      stationarity_strength=sampler_kw["strength"],
                      features=list(range(splits.dataset.num_features)))   # readings, not the time channels
        sampler = make_sampler(policy, len(train), args.epoch_cap, window_dataset=train,
                               edge_index=splits.edge_index, edge_weight=splits.edge_weight, **kw)
    setup_seconds, setup_cpu = time.perf_counter() - t_setup, time.process_time() - c_setup
    scoring.seconds += setup_seconds
    sampler.set_epoch = scoring.wrap(sampler.set_epoch)      # timing only: the calls are unchanged
    sampler.update = scoring.wrap(sampler.update)

    epochs: List[Dict[str, Any]] = []
    clock = {"steps": 0, "val": 0.0, "val_cpu": 0.0}
    mark: Dict[str, float] = {}

    def loss(module: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
        clock["steps"] += 1
        x, y = train.batch(idx)
        pred = splits.scaler.inverse_transform(module(x, splits.edge_index, splits.edge_weight).float(),
                                               features=splits.target_features)
        return masked_mae(pred, y, splits.null_value, reduction="none")

    def validate() -> Dict[str, float]:
        t, c = time.perf_counter(), time.process_time()
        mae = float(masked_mae(*predict(model, splits.val, splits), splits.null_value))
        clock["val"] += time.perf_counter() - t
        clock["val_cpu"] += time.process_time() - c
        return {"mae": mae}

    last_state: Dict[str, Any] = {}

    def on_end(rec: Dict[str, Any], state: LoopState) -> None:
        wall = time.perf_counter() - mark["wall"]
        val_s = clock["val"] - mark["val"]
        score_s = scoring.seconds - mark["score"]
        prev = epochs[-1] if epochs else {"time_seconds": setup_seconds, "cpu_seconds": setup_cpu}
        train_s = wall - val_s - score_s
        epochs.append({"epoch": rec["epoch"], "train_seconds": train_s, "score_seconds": score_s,
                       "val_seconds": val_s, "steps": clock["steps"] - mark["steps"], "windows": rec["samples"],
                       "train_mae": rec["train_mae"], "val_mae": rec["val_mae"],
                       "time_seconds": prev["time_seconds"] + train_s + score_s,
                       "cpu_seconds": prev["cpu_seconds"] + time.process_time() - mark["cpu"]
                       - (clock["val_cpu"] - mark["val_cpu"]),
                       "total_steps": clock["steps"]})
        if step_budget is not None:
            last_state["model"] = copy.deepcopy(model.state_dict())

    # set_epoch of epoch e runs before on_start(e): count it into epoch e by starting its clock there
    set_epoch = sampler.set_epoch

    def set_epoch_marked(epoch: int) -> None:
        mark.update(wall=time.perf_counter(), cpu=time.process_time(), score=scoring.seconds,
                    val=clock["val"], val_cpu=clock["val_cpu"], steps=clock["steps"])
        set_epoch(epoch)

    sampler.set_epoch = set_epoch_marked

    def phase(epochs_: int) -> Phase:
        return Phase("train", model, opt, epochs_, len(train), loss, validate=validate, sampler=sampler,
                     on_epoch_end=on_end, patience=args.patience)

    engine = EpochEngine(device=device, batch_size=args.batch_size, clip_grad=args.clip, seed=seed, progress=False)
    if step_budget is None:
        state = engine.run(phase(args.epoch_cap))
    else:                                   # equal steps: whole epochs, then the remainder of one
        per_epoch = engine.steps_per_epoch(len(train))
        whole, rest = divmod(step_budget, per_epoch)
        whole = min(whole, args.epoch_cap)
        state = engine.run(phase(whole))
        if rest and whole < args.epoch_cap and state.bad < args.patience:
            if last_state:
                model.load_state_dict(last_state["model"])       # continue from the last state, not the best
            tail = EpochEngine(device=device, batch_size=args.batch_size, max_batches=rest, clip_grad=args.clip,
                               seed=seed, progress=False)
            state = tail.run(phase(whole + 1), state)
    best = min(range(len(epochs)), key=lambda i: (epochs[i]["val_mae"], i))
    row: Dict[str, Any] = {
        "epochs_run": len(epochs), "best_epoch": epochs[best]["epoch"], "best_val_mae": epochs[best]["val_mae"],
        "stopped_by": "patience" if state.bad >= args.patience else ("steps" if step_budget else "epoch cap"),
        "total_seconds": epochs[-1]["time_seconds"], "total_cpu_seconds": epochs[-1]["cpu_seconds"],
        "setup_seconds": setup_seconds, "score_seconds": sum(e["score_seconds"] for e in epochs) + setup_seconds,
        "val_seconds": sum(e["val_seconds"] for e in epochs), "total_steps": clock["steps"],
        "total_windows": sum(e["windows"] for e in epochs), "train_windows": len(train),
        "epochs": epochs}
    if not args.sweep:                       # test read once, for the best-validation state
        test = forecast_metrics(*predict(model, splits.test, splits), splits.null_value, horizons=HORIZONS)
        row["test"] = {k: test[k] for k in ("mae", "rmse", "mape", *(f"mae_h{h}" for h in HORIZONS))}
    return row


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    base_kw = dict(ratio=args.ratio, delta=args.delta, alpha=args.alpha, num_bins=args.num_bins,
                   strength=args.strength)
    if args.sweep:
        # the default variant and the full-data target are the main cells of the same seed (their
        # validation curves only); a sweep cell never reads test
        jobs = [("stprune", seed, dict(base_kw, ratio=r, delta=d, alpha=a))
                for seed in args.seeds for r in args.sweep_ratios for d in args.sweep_deltas
                for a in args.sweep_alphas if (r, d, a) != (args.ratio, args.delta, args.alpha)]
    else:
        jobs = [(p, seed, base_kw) for seed in args.seeds for p in POLICIES if p in args.policies]
    splits = train = None
    meta = None
    for policy, seed, kw in jobs:
        kw = {k: v for k, v in kw.items() if policy == "stprune" or k in ("ratio", "delta")}
        cfg = cell_config(args, policy, seed, kw if policy != "full" else {})
        path = cell_path(args, policy, seed, kw)
        if load_cell(path, cfg, args.redo) is not None:
            print(f"skip {os.path.relpath(path)} (present, same configuration)", flush=True)
            continue
        if splits is None:
            splits, train = load_splits(args)
            refs = {s: reference_metrics(splits, s, horizons=HORIZONS) for s in ("val", "test")}
            ds = splits.dataset
            meta = {"nodes": ds.num_nodes, "steps": ds.num_steps, "interval_minutes": ds.interval_minutes,
                    "observed_share": ds.observed_share, "train_windows": len(train), "val_windows": len(splits.val),
                    "test_windows": len(splits.test),
                    "references": {s: {f: {k: m[f][k] for k in ("mae", *(f"mae_h{h}" for h in HORIZONS))}
                                       for f in m} for s, m in refs.items()}}
            if args.sweep:
                meta["references"].pop("test")
        budget = None
        if policy == "equal":
            sp_kw = {k: v for k, v in kw.items()}
            sp_path = cell_path(args, "stprune", seed, sp_kw)
            if not os.path.exists(sp_path):
                print(f"skip {os.path.relpath(path)}: needs {os.path.relpath(sp_path)} first", flush=True)
                continue
            with open(sp_path) as fh:
                budget = json.load(fh)["total_steps"]
        lock = path + ".lock"                # another process of the same folder runs this cell
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            print(f"skip {os.path.relpath(path)}: {os.path.relpath(lock)} exists (running elsewhere; delete it "
                  "if that process died)", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            row = run_cell(args, policy, seed, kw, splits, train, step_budget=budget)
        finally:
            os.remove(lock)
        cell = {"config": cfg, "device": str(resolve_device(args.device)), "torch_threads": torch.get_num_threads(),
                "budget": {"epoch_cap": args.epoch_cap, "patience": args.patience, "batch_size": args.batch_size,
                           "step_budget": budget},
                "chosen_by": ("validation only (sweep cell: test not read)" if args.sweep else
                              "early stopping on validation MAE; test read once for the best-validation state"),
                "time_definition": "time_seconds: wall-clock training + sampler scoring seconds; cpu_seconds: process CPU "
                                   "seconds of the same (validation recorded apart in val_seconds)",
                "data": meta, "cell_wall_seconds": time.perf_counter() - t0,
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **row}
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(cell, fh, indent=1)
        os.replace(tmp, path)
        test = f", test MAE {row['test']['mae']:.4f}" if "test" in row else ""
        print(f"{os.path.relpath(path)}: {row['epochs_run']} epochs ({row['stopped_by']}), {row['total_steps']} steps, "
              f"{row['total_seconds']:.1f} s (scoring {row['score_seconds']:.1f} s), best val MAE "
              f"{row['best_val_mae']:.4f} @ epoch {row['best_epoch']}{test}", flush=True)


if __name__ == "__main__":
    main()
