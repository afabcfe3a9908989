"""Data-parallel DynST: 1 process vs P processes (torch.distributed) on the planted synthetic network.

Runs the same DynST search + fine-tune (Graph WaveNet ``small``, iterative schedule, 40 %
sparsity, 50 sensors of which 20 are planted redundant copies) once in one process and once
in ``P`` processes (``gloo`` on CPU, ``nccl`` on CUDA, each with ``--threads`` threads), with
the same *global* batch, and reports seconds per epoch of each phase, the speedup, whether
the masks agree and how many planted sensors each run pruned.

Every process gets ``--threads`` threads (the single process too). On a 2-core CPU shared with
other jobs the speedup is poor by construction: the two ranks compete with everything else for
the same cores, and gloo's all-reduce of the gradients goes through shared memory every step. The number that matters on such a
machine is that the runs agree; the speedup is for machines with a core (or a GPU) per rank.

Usage::

    python benchmarks/ddp_scaling.py --out benchmarks/results/ddp_scaling.json
    python benchmarks/ddp_scaling.py --nproc 4 --device cuda        # on a 4-GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from dynst_pyg.data import prepare
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.training.engine import resolve_device
from dynst_pyg.models import GraphWaveNet
from dynst_pyg.training import DynSTConfig, DynSTTrainer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nproc", type=int, default=2, help="processes of the parallel run")
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--steps", type=int, default=2016)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--search-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32, help="global batch (split over the processes)")
    p.add_argument("--max-batches", type=int, default=None, help="cap on steps per epoch (shorter timing runs)")
    p.add_argument("--repeats", type=int, default=3,
                   help="1-process and P-process runs alternate this many times; seconds are medians")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--device", default="cpu", help="cpu or cuda (one GPU per rank)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON output")
    return p.parse_args(argv)


def _run(args: argparse.Namespace, device: str) -> Dict[str, Any]:
    ds = synthetic_road_network(num_nodes=args.nodes, num_steps=args.steps, redundant_fraction=0.4, seed=0)
    cfg = DynSTConfig(sparsity=0.4, schedule="iterative", schedule_kwargs={"rounds": 4},
                      warmup_epochs=args.warmup_epochs, search_epochs=args.search_epochs,
                      finetune_epochs=args.finetune_epochs, batch_size=args.batch_size, progress=False,
                      seed=args.seed, device=device, max_batches=args.max_batches)
    tr = DynSTTrainer(lambda: GraphWaveNet(args.nodes, profile="small"), prepare(ds), cfg)
    times = {}
    t = time.perf_counter(); tr.warmup(); times["warmup"] = time.perf_counter() - t
    t = time.perf_counter(); mask = tr.search(); times["search"] = time.perf_counter() - t
    t = time.perf_counter(); res = tr.finetune(mask); times["finetune"] = time.perf_counter() - t
    planted = set(ds.meta["redundant"].tolist())
    return {"seconds": times, "keep": mask.keep.tolist(), "planted_pruned": len(planted & set(mask.pruned.tolist())),
            "planted": len(planted), "test_mae": res.test_metrics["mae"]}


def _worker(rank: int, world: int, init_file: str, out_dir: str, args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        rec = _run(args, f"cuda:{rank}" if cuda else "cpu")
        torch.save(rec, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    device = resolve_device(args.device)
    # same threads per process in both runs: with 2 intra-op threads on a loaded 2-core machine one
    # process spends most of its time spinning, which would flatter the parallel run
    torch.set_num_threads(args.threads)
    ones, pars, walls = [], [], {"single": [], "parallel": []}
    for _ in range(args.repeats):   # alternate, so that a change of load on a shared machine hits both
        t = time.perf_counter()
        ones.append(_run(args, str(device)))
        walls["single"].append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            mp.spawn(_worker, args=(args.nproc, os.path.join(tmp, "init"), tmp, args), nprocs=args.nproc,
                     join=True)
            walls["parallel"].append(time.perf_counter() - t)
            pars.append([torch.load(os.path.join(tmp, f"rank{r}.pt"), weights_only=False)
                         for r in range(args.nproc)])
    one, ranks = ones[0], pars[0]
    one_wall, par_wall = statistics.median(walls["single"]), statistics.median(walls["parallel"])
    epochs = {"warmup": args.warmup_epochs, "search": args.search_epochs, "finetune": args.finetune_epochs}
    rows = []
    for phase, e in epochs.items():
        s1 = statistics.median(o["seconds"][phase] for o in ones) / max(1, e)
        sp = statistics.median(r[0]["seconds"][phase] for r in pars) / max(1, e)
        rows.append({"phase": phase, "s_per_epoch_1": s1, f"s_per_epoch_{args.nproc}": sp, "speedup": s1 / sp})
    print(f"device {device}, 1 process vs {args.nproc} processes, {args.threads} thread(s) each; "
          f"global batch {args.batch_size}; "
          f"{args.nodes} sensors, {args.steps} steps")
    print(f"{'phase':>9} {'s/epoch (1)':>12} {f's/epoch ({args.nproc})':>12} {'speedup':>8}")
    for r in rows:
        print(f"{r['phase']:>9} {r['s_per_epoch_1']:12.2f} {r[f's_per_epoch_{args.nproc}']:12.2f} {r['speedup']:8.2f}")
    same_ranks = all(r["keep"] == ranks[0]["keep"] for r in ranks)
    print(f"masks: ranks agree {same_ranks}; parallel == single {ranks[0]['keep'] == one['keep']}; planted pruned "
          f"{one['planted_pruned']}/{one['planted']} (1 process), {ranks[0]['planted_pruned']}/{ranks[0]['planted']} "
          f"({args.nproc} processes); test MAE {one['test_mae']:.3f} vs {ranks[0]['test_mae']:.3f}")
    print(f"wall (median of {args.repeats}): 1 process {one_wall:.1f} s, {args.nproc} processes {par_wall:.1f} s "
          f"(incl. process start)")
    result = {"device": str(device), "threads_per_process": args.threads, "nproc": args.nproc,
              "budget": {**epochs, "batch_size": args.batch_size, "max_batches": args.max_batches,
                         "nodes": args.nodes, "steps": args.steps, "repeats": args.repeats},
              "walls": walls,
              "rows": rows, "single": one, "ranks": ranks, "ranks_agree": same_ranks,
              "parallel_equals_single": ranks[0]["keep"] == one["keep"], "wall_single": one_wall,
              "wall_parallel": par_wall}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
