"""How DynST's cost grows with the number of sensors, and planted-sensor recovery at scale.

**Scale mode** (default): for each ``N`` in ``--sizes`` (synthetic road networks,
:func:`dynst_pyg.datasets.synthetic_road_network`, ``--steps`` steps, 70 % of them training),
one fresh subprocess runs the public trainer API with a fixed small budget::

    DynSTTrainer(lambda: GraphWaveNet(N, profile="small"), splits,
                 DynSTConfig(sparsity=0.5, schedule="oneshot", target="all", warmup_epochs=1,
                             search_epochs=1, finetune_epochs=1, max_batches=3, batch_size=16,
                             progress=False, device=..., val_max_windows=...))

and times ``trainer.warmup()``, ``trainer.search()`` and ``trainer.finetune(mask)``. Reported per size:

* ``*_s``: wall seconds of each phase as a user pays it (set-up included: the search's
  reconstruction value, the fine-tune's sub-graph windows and ridge lift fit);
* ``*_eval_s``: the part of it spent in evaluation, i.e. in eval-mode forwards of the backbone
  (forward hooks on the models the factory builds; validation each epoch, and the fine-tune's
  final validation and test), and ``val_s`` the warm-up's per epoch (one validation pass);
* ``*_per_batch_s``: ``(phase seconds - evaluation seconds) / training batches``, so it
  includes the phase's one-off set-up;
* ``peak_rss_gb``: the process's peak resident memory (``VmHWM`` of ``/proc/self/status``,
  reset before each phase where the kernel allows, so each phase has its own peak; the size's
  peak is the largest of them); ``cuda_max_gb``: ``torch.cuda.max_memory_allocated``
  per phase on a GPU;
* ``speedup``: served model at 50 % vs the dense backbone, forward latency
  (``trainer.served_speedup``, batch ``--speedup-batch``).

Each size runs in its own process, so the peaks are per size. The growth exponent of each cost
is the least-squares slope of ``log cost`` on ``log N`` over the sizes that finished.

**Planted mode** (``--planted``): on planted networks of ``--planted-nodes`` sensors (30 %
of them convex mixes of neighbours plus noise: ``dataset.meta["redundant"]``), the share of the
planted sensors that each selector prunes at ``--planted-sparsity`` (0.3): DynST (the same
budget, ``trainer.search()``), QR (``select_sensors("qr", splits, sparsity=0.3)``), random
(``select_sensors("random", ...)``, mean of 5 seeds), and the reconstruction value alone
(:class:`~dynst_pyg.scoring.ReconstructionValue`, exact and local, all sensors active,
pruning its lowest scores).

Usage::

    python benchmarks/scale.py --sizes 207 1000 --out benchmarks/results/scale.json
    python benchmarks/scale.py --planted --planted-nodes 207 1000 --out benchmarks/results/planted.json
    python benchmarks/scale.py --sizes 8600 --device cuda --timeout 3600 --val-max-windows 256

Writes JSON (``--out``) and a log-log plot next to it (``.png``), and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from dynst_pyg.data import prepare
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COSTS = ("warmup_per_batch_s", "search_per_batch_s", "finetune_per_batch_s", "val_s", "peak_rss_gb", "cuda_max_gb")


# ------------------------------------------------------------------------------ memory
def _status_gb(field: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024 ** 2  # kB -> GB
    except OSError:
        pass
    return None


def peak_rss_gb() -> float:
    """Peak resident memory of this process in GB (``VmHWM``; ``ru_maxrss`` where there is no /proc)."""
    hwm = _status_gb("VmHWM")
    if hwm is not None:
        return hwm
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 ** 2 if sys.platform != "darwin" else kb / 1024 ** 3


def reset_peak_rss() -> bool:
    """Resets ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Phase:
    """Wall time, peak RSS and CUDA peak of one block of work."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.results: Dict[str, dict] = {}

    def run(self, name: str, fn):
        import torch

        reset = reset_peak_rss()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = fn()
        if self.cuda:
            torch.cuda.synchronize()
        rec = {"seconds": time.perf_counter() - t0, "peak_rss_gb": peak_rss_gb(), "rss_reset": reset}
        if self.cuda:
            rec["cuda_max_gb"] = torch.cuda.max_memory_allocated() / 1024 ** 3
        self.results[name] = rec
        return out


# ------------------------------------------------------------------------------ children
def _config(args, **over):
    from dynst_pyg.training import DynSTConfig

    kw = dict(sparsity=0.5, schedule="oneshot", target="all", warmup_epochs=1, search_epochs=1, finetune_epochs=1,
              max_batches=args.max_batches, batch_size=args.batch_size, progress=False, seed=args.seed,
              val_max_windows=args.val_max_windows, device=args.device, recon_weight=args.recon_weight)
    kw.update(over)
    return DynSTConfig(**kw)


def _resolved_device(args) -> str:
    import torch

    if args.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return args.device


def _splits(n: int, args, redundant_fraction: float = 0.3):
    from dynst_pyg import load_dataset

    ds = load_dataset("synthetic", num_nodes=n, num_steps=args.steps, seed=args.seed,
                      redundant_fraction=redundant_fraction)
    return ds, prepare(ds, t_in=12, t_out=12)


def _factory(n: int, splits):
    from dynst_pyg.models import GraphWaveNet

    return lambda: GraphWaveNet(n, in_features=splits.in_features, out_features=splits.out_features,
                                t_in=splits.t_in, t_out=splits.t_out, profile="small")


class EvalClock:
    """Seconds spent in eval-mode forwards of the backbones a factory builds (the trainer's validation
    and test passes run the backbone in eval mode, training batches in train mode)."""

    def __init__(self, factory, cuda: bool) -> None:
        self.factory, self.cuda, self.seconds = factory, cuda, 0.0
        self._start: Dict[int, float] = {}

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def __call__(self):
        model = self.factory()

        def pre(mod, _inp):
            if not mod.training:
                self._sync()
                self._start[id(mod)] = time.perf_counter()

        def post(mod, _inp, _out):
            if not mod.training and id(mod) in self._start:
                self._sync()
                self.seconds += time.perf_counter() - self._start.pop(id(mod))

        model.register_forward_pre_hook(pre)
        model.register_forward_hook(post)
        return model


def child_scale(n: int, args) -> dict:
    import torch

    from dynst_pyg import DynSTTrainer

    torch.set_num_threads(args.threads)
    device = _resolved_device(args)
    cuda = device.startswith("cuda")
    ph = Phase(cuda)
    ds, splits = ph.run("data", lambda: _splits(n, args))
    config = _config(args)
    clock = EvalClock(_factory(n, splits), cuda)
    trainer = DynSTTrainer(clock, splits, config)
    evals = {}
    for name, fn in (("warmup", trainer.warmup), ("search", trainer.search), ("finetune", None)):
        before = clock.seconds
        out = ph.run(name, fn if fn is not None else lambda: trainer.finetune(mask))
        evals[name] = clock.seconds - before
        if name == "search":
            mask = out
    res = out
    dense_ms, pruned_ms, speedup = ph.run(
        "speedup", lambda: trainer.served_speedup(res.model, mask, batch=args.speedup_batch, repeats=3, warmup=1))
    r = ph.results
    per_epoch = min(args.max_batches, math.ceil(len(splits.train) / args.batch_size))
    rv = trainer.reconstruction() if hasattr(trainer, "reconstruction") and trainer.uses_reconstruction else None
    out = {"N": n, "edges": int(splits.edge_index.size(1)), "train_windows": len(splits.train),
           "recon_method": None if rv is None else rv.method,
           "val_windows": len(splits.val), "test_windows": len(splits.test), "train_steps": splits.train_steps,
           "device": device, "kept": mask.num_kept, "val_mae": res.val_metrics["mae"],
           "dense_ms": dense_ms, "pruned_ms": pruned_ms, "speedup": speedup, "phases": r,
           "val_s": evals["warmup"] / config.warmup_epochs,
           "peak_rss_gb": max(v["peak_rss_gb"] for v in r.values()),
           "rss_reset_per_phase": all(v["rss_reset"] for v in r.values())}
    for p in ("warmup", "search", "finetune"):
        batches = per_epoch * getattr(config, f"{p}_epochs")
        out[f"{p}_s"] = r[p]["seconds"]
        out[f"{p}_eval_s"] = evals[p]
        out[f"{p}_batches"] = batches
        out[f"{p}_per_batch_s"] = (r[p]["seconds"] - evals[p]) / batches
    if cuda:
        out["cuda_max_gb"] = max(v.get("cuda_max_gb", 0.0) for v in r.values())
    return out


def child_planted(n: int, args) -> dict:
    import torch

    from dynst_pyg import DynSTTrainer, select_sensors
    from dynst_pyg.scoring.reconstruction import ReconstructionValue

    torch.set_num_threads(args.threads)
    ds, splits = _splits(n, args)
    planted = ds.meta["redundant"]
    sparsity = args.planted_sparsity
    k_prune = n - int(round((1 - sparsity) * n))

    def share(keep_bool: torch.Tensor) -> float:
        return float((~keep_bool[planted]).float().mean())

    rows = {}
    t0 = time.perf_counter()
    trainer = DynSTTrainer(_factory(n, splits), splits, _config(args, sparsity=sparsity))
    mask = trainer.search()
    rows["dynst"] = {"share": share(mask.bool_mask),
                     "seconds": time.perf_counter() - t0, "kept": mask.num_kept}
    t0 = time.perf_counter()
    qr = select_sensors("qr", splits, sparsity=sparsity)
    rows["qr"] = {"share": share(qr.bool_mask), "seconds": time.perf_counter() - t0, "kept": qr.num_kept}
    shares = [share(select_sensors("random", splits, sparsity=sparsity, seed=s).bool_mask) for s in range(5)]
    rows["random"] = {"share": sum(shares) / len(shares), "seconds": 0.0, "kept": n - k_prune,
                      "note": "mean of 5 seeds"}
    # the reconstruction value alone, as the trainer's target="all" search uses it
    series = splits.train.inputs[:splits.train_steps][..., list(splits.target_features)]
    hs = [h for h in (1, 3, 6, 12) if h <= splits.t_out]
    for method in ("exact", "local"):
        if method == "exact" and n > args.exact_max:
            continue
        t0 = time.perf_counter()
        value = ReconstructionValue(series, None, horizons=hs, ridge=1e-3, edge_index=splits.edge_index,
                                    method=method, exact_max_nodes=max(n, 1))
        s = value.scores(torch.ones(n, dtype=torch.bool))
        keep = torch.ones(n, dtype=torch.bool)
        keep[torch.argsort(s)[:k_prune]] = False
        rows[f"recon-{method}"] = {"share": share(keep), "seconds": time.perf_counter() - t0, "kept": n - k_prune}
    return {"N": n, "planted": int(planted.numel()), "sparsity": sparsity, "rows": rows,
            "device": _resolved_device(args)}


# ------------------------------------------------------------------------------ parent
def run_child(kind: str, n: int, args) -> dict:
    out = Path(args.out).with_suffix(f".{kind}-{n}.part.json")
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n), "--child-out", str(out)] + args.passthrough
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=args.timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"N": n, "error": f"timed out after {args.timeout} s"}
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"N": n, "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    rec = json.loads(out.read_text())
    out.unlink()
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def growth_exponents(rows: List[dict], keys=COSTS) -> Dict[str, Optional[float]]:
    """Least-squares slope of ``log cost`` on ``log N`` (None with fewer than two sizes)."""
    import numpy as np

    out: Dict[str, Optional[float]] = {}
    for k in keys:
        pts = [(r["N"], r[k]) for r in rows if "error" not in r and r.get(k) and r[k] > 0]
        if len({p[0] for p in pts}) < 2:
            out[k] = None
            continue
        x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
        out[k] = float(np.polyfit(x, y, 1)[0])
    return out


def print_scale_table(rows: List[dict], exps: Dict[str, Optional[float]]) -> str:
    head = ("| N | warm-up s/batch | search s/batch | fine-tune s/batch | validation s | peak RSS GB | "
            "CUDA max GB | speedup @50 % | wall s |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]

    def f(v, d=2):
        return "–" if v is None else f"{v:.{d}f}"

    for r in rows:
        if "error" in r:
            lines.append(f"| {r['N']:,} | {r['error']} |||||||| ")
            continue
        lines.append(f"| {r['N']:,} | {f(r['warmup_per_batch_s'])} | {f(r['search_per_batch_s'])} | "
                     f"{f(r['finetune_per_batch_s'])} | {f(r['val_s'])} | {f(r['peak_rss_gb'])} | "
                     f"{f(r.get('cuda_max_gb'))} | {f(r['speedup'])}x | {f(r.get('wall_s'), 0)} |")
    lines.append(f"| exponent | {f(exps.get('warmup_per_batch_s'))} | {f(exps.get('search_per_batch_s'))} | "
                 f"{f(exps.get('finetune_per_batch_s'))} | {f(exps.get('val_s'))} | {f(exps.get('peak_rss_gb'))} | "
                 f"{f(exps.get('cuda_max_gb'))} | | |")
    text = "\n".join(lines)
    print(text)
    return text


def print_planted_table(rows: List[dict]) -> str:
    lines = ["| N | planted | selector | share of planted pruned | seconds |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['N']:,} | | {r['error']} | | |")
            continue
        for name, v in r["rows"].items():
            lines.append(f"| {r['N']:,} | {r['planted']} | {name} | {100 * v['share']:.1f} % | {v['seconds']:.1f} |")
    text = "\n".join(lines)
    print(text)
    return text


def plot(rows: List[dict], path: Path) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return None
    ns = [r["N"] for r in ok]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("warmup_per_batch_s", "warm-up / batch"), ("search_per_batch_s", "search / batch"),
                       ("finetune_per_batch_s", "fine-tune / batch"), ("val_s", "validation pass")):
        ax1.loglog(ns, [max(r[key], 1e-6) for r in ok], "o-", label=label)
    ax1.set_xlabel("sensors N")
    ax1.set_ylabel("seconds")
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)
    ax2.loglog(ns, [r["peak_rss_gb"] for r in ok], "o-", label="peak RSS")
    if any("cuda_max_gb" in r for r in ok):
        ax2.loglog(ns, [r.get("cuda_max_gb", float("nan")) for r in ok], "s-", label="CUDA max allocated")
    ax2.set_xlabel("sensors N")
    ax2.set_ylabel("GB")
    ax2.legend()
    ax2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[207, 1000, 2000, 4000, 8600])
    p.add_argument("--steps", type=int, default=2016, help="series length (70 %% training)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", help="passed as DynSTConfig(device=...)")
    p.add_argument("--recon-weight", type=float, default=0.5,
                   help="DynSTConfig(recon_weight=...): weight of the reconstruction value in the importance")
    p.add_argument("--max-batches", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--speedup-batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-max-windows", type=int, default=None,
                   help="passed as DynSTConfig(val_max_windows=...): validate each epoch on at most this many windows")
    p.add_argument("--timeout", type=float, default=None, help="seconds per size (default: none)")
    p.add_argument("--planted", action="store_true", help="planted-recovery mode instead of the scale sweep")
    p.add_argument("--planted-nodes", type=int, nargs="+", default=[2000])
    p.add_argument("--planted-sparsity", type=float, default=0.3)
    p.add_argument("--exact-max", type=int, default=4000, help="largest N for the exact reconstruction row")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    p.add_argument("--child", choices=("scale", "planted"), help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        rec = (child_scale if args.child == "scale" else child_planted)(args.n, args)
        Path(args.child_out).write_text(json.dumps(rec))
        return

    import torch

    args.passthrough = ["--steps", str(args.steps), "--threads", str(args.threads), "--device", args.device,
                        "--max-batches", str(args.max_batches), "--batch-size", str(args.batch_size),
                        "--speedup-batch", str(args.speedup_batch), "--seed", str(args.seed),
                        "--planted-sparsity", str(args.planted_sparsity), "--exact-max", str(args.exact_max),
                        "--recon-weight", str(args.recon_weight),
                        "--out", args.out] + ([] if args.val_max_windows is None else
                                              ["--val-max-windows", str(args.val_max_windows)])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kind = "planted" if args.planted else "scale"
    sizes = args.planted_nodes if args.planted else args.sizes
    rows = []
    for n in sizes:
        print(f"[scale] {kind} N={n} ...", flush=True)
        rec = run_child(kind, n, args)
        rows.append(rec)
        if "error" in rec:
            print(f"[scale] N={n}: {rec['error']}; larger sizes skipped", flush=True)
            break
    meta = {"mode": kind, "device": args.device, "threads": args.threads, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "budget": {"sparsity": args.planted_sparsity if args.planted else 0.5, "schedule": "oneshot",
                       "target": "all", "warmup_epochs": 1, "search_epochs": 1, "finetune_epochs": 1,
                       "max_batches": args.max_batches, "batch_size": args.batch_size, "steps": args.steps,
                       "profile": "small", "speedup_batch": args.speedup_batch,
                       "val_max_windows": args.val_max_windows, "recon_weight": args.recon_weight}}
    if args.planted:
        table = print_planted_table(rows)
        result = {**meta, "rows": rows, "table": table}
    else:
        exps = growth_exponents(rows)
        table = print_scale_table(rows, exps)
        png = plot(rows, out.with_suffix(".png"))
        result = {**meta, "rows": rows, "exponents": exps, "table": table, "plot": png}
    out.write_text(json.dumps(result, indent=1))
    print(f"[scale] wrote {out}")


if __name__ == "__main__":
    main()
