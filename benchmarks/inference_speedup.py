"""Inference speed-up from running a backbone on the pruned sensor graph (issue 4).

For Graph WaveNet and DCRNN (``reference`` and ``small`` profiles), on the METR-LA graph
(N = 207), the PEMS-BAY graph (N = 325) and a synthetic road graph (N = 2,000), at
sparsity 0 / 0.3 / 0.5 / 0.7 and batch 64 and 1, this measures in one run:

* ``dense_ms``: median forward latency on the full graph (supports cached);
* ``pruned_ms``: median forward latency on the induced sub-graph of a random kept set
  (``node_index`` given, supports of the *sub*-graph cached); dense and pruned forwards
  are timed alternately so that load on a shared machine affects both alike;
* ``*_prepare_ms``: the one-off cost of building the graph used by those forwards
  (for the pruned graph: induced sub-graph + its supports), and
  ``speedup_incl_prepare = (dense_ms + dense_prepare_ms) / (pruned_ms + pruned_prepare_ms)``,
  the speed-up of a single first call that pays the preparation;
* ``lift_ms``: cost of :class:`~dynst_pyg.models.LiftHead` mapping the pruned forecast
  back to all N nodes (``target="all"``), with ``lift_fraction = lift_ms / pruned_ms``.

``speedup = dense_ms / pruned_ms``. Models run in eval mode under ``torch.no_grad()``.

Usage::

    python benchmarks/inference_speedup.py --quick --out speedup.json
    python benchmarks/inference_speedup.py --cell-choice      # DCRNN cell: own vs PyG-Temporal
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dynst_pyg.data import prepare
from dynst_pyg.datasets import data_root
from dynst_pyg.models import DCRNN, GraphWaveNet, LiftHead

from dynst_pyg.training.engine import resolve_device
from dynst_pyg.graph.subgraph import induced_subgraph

#: the device every tensor of a run lives on, and its synchronisation (a no-op on the CPU)
DEVICE = torch.device("cpu")


def sync() -> None:
    """Waits for queued CUDA kernels, so a timed call measures their work, not their launch."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def load_pkl_graph(relpath: str) -> Tuple[torch.Tensor, torch.Tensor, int]:
    path = data_root() / relpath
    if not path.is_file():
        raise SystemExit(f"missing graph file {path} (set DYNST_DATA to the data folder)")
    with open(path, "rb") as fh:
        _, _, adj = pickle.load(fh, encoding="latin1")
    a = torch.as_tensor(np.asarray(adj), dtype=torch.float32)
    idx = a.nonzero().t().contiguous()
    return idx, a[idx[0], idx[1]], a.size(0)


def synthetic_graph(n: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
    from dynst_pyg.datasets import synthetic_road_network

    ds = synthetic_road_network(num_nodes=n, num_steps=24, seed=0)
    return ds.edge_index, ds.edge_weight, n


GRAPHS: Dict[str, Callable[[], Tuple[torch.Tensor, torch.Tensor, int]]] = {
    "metr-la": lambda: load_pkl_graph("metr-la/adj_mx.pkl"),
    "pems-bay": lambda: load_pkl_graph("pems-bay/adj_mx_bay.pkl"),
    "synthetic-2000": lambda: synthetic_graph(2000),
}


def build_model(name: str, profile: str, n: int) -> torch.nn.Module:
    if name == "gwnet":
        return GraphWaveNet(n, in_features=1, out_features=1, t_in=12, t_out=12, profile=profile).eval()
    if name == "dcrnn":
        return DCRNN(n, in_features=1, out_features=1, t_in=12, t_out=12, profile=profile).eval()
    raise ValueError(name)


def time_ms(fn: Callable[[], object], repeats: int, budget_s: float) -> float:
    """Median wall time (ms) of ``fn`` after one warm-up call; fewer repeats if a call is slow."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - t0
    reps = max(1, min(repeats, int(budget_s / max(first, 1e-6))))
    times = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def time_pair_ms(f_a: Callable[[], object], f_b: Callable[[], object], repeats: int,
                 budget_s: float) -> Tuple[float, float]:
    """Median wall times (ms) of two functions timed alternately (A, B, A, B, ...) after a
    warm-up of each, so that load changes on a shared machine hit both alike."""
    sync()
    t0 = time.perf_counter()
    f_a()
    f_b()
    sync()
    first = time.perf_counter() - t0
    reps = max(1, min(repeats, int(budget_s / max(first, 1e-6))))
    ta, tb = [], []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        f_a()
        sync()
        t1 = time.perf_counter()
        f_b()
        sync()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return 1000.0 * statistics.median(ta), 1000.0 * statistics.median(tb)


def once_ms(fn: Callable[[], object]) -> Tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return 1000.0 * (time.perf_counter() - t0), out


@torch.no_grad()
def run(models: List[str], profiles: List[str], graphs: List[str], sparsities: List[float], batches: List[int],
        repeats: int, budget_s: float, seed: int) -> List[dict]:
    rows = []
    for gname in graphs:
        ei, ew, n = GRAPHS[gname]()
        ei, ew = ei.to(DEVICE), ew.to(DEVICE)
        induced_subgraph(torch.arange(min(n, 3)), ei, ew, num_nodes=n)  # warm-up (lazy imports are not graph cost)
        for mname in models:
            for profile in profiles:
                torch.manual_seed(seed)
                model = build_model(mname, profile, n).to(DEVICE)
                for b in batches:
                    x = torch.randn(b, 12, n, 1, device=DEVICE)
                    model.clear_graph_cache()
                    dense_prep, _ = once_ms(lambda: model.prepare_graph(ei, ew))
                    for sp in sparsities:
                        g = torch.Generator().manual_seed(seed + int(1000 * sp))
                        k = max(1, int(round((1.0 - sp) * n)))
                        keep = torch.sort(torch.randperm(n, generator=g)[:k]).values.to(DEVICE)
                        xs = x[:, :, keep].contiguous()

                        def prep():
                            sei, sew = induced_subgraph(keep, ei, ew, num_nodes=n)
                            model.prepare_graph(sei, sew, keep)
                            return sei, sew

                        pruned_prep, (sei, sew) = once_ms(prep)
                        dense_ms, pruned_ms = time_pair_ms(lambda: model(x, ei, ew),
                                                           lambda: model(xs, sei, sew, keep), repeats, budget_s)
                        row = dict(model=mname, profile=profile, graph=gname, num_nodes=n, sparsity=sp, batch=b,
                                   kept=k, dense_ms=round(dense_ms, 3), pruned_ms=round(pruned_ms, 3),
                                   speedup=round(dense_ms / pruned_ms, 3),
                                   dense_prepare_ms=round(dense_prep, 3), pruned_prepare_ms=round(pruned_prep, 3),
                                   speedup_incl_prepare=round((dense_ms + dense_prep) / (pruned_ms + pruned_prep), 3))
                        if sp > 0:
                            head = LiftHead(n, ei, ew, features=1).to(DEVICE).eval()
                            lift_prep, _ = once_ms(lambda: prepare(head, keep))
                            y_small = torch.randn(b, 12, k, 1, device=DEVICE)
                            lift_ms = time_ms(lambda: head(y_small, keep), repeats, budget_s)
                            row.update(lift_ms=round(lift_ms, 3), lift_prepare_ms=round(lift_prep, 3),
                                       lift_fraction=round(lift_ms / pruned_ms, 4))
                        rows.append(row)
                        print(format_row(row), flush=True)
    return rows


HEADER = (f"{'model':6} {'profile':9} {'N':>5} {'sparsity':>8} {'batch':>5} {'dense_ms':>10} {'pruned_ms':>10} "
          f"{'speedup':>8} {'prep_ms':>8} {'w/prep':>7} {'lift_ms':>8}")


def format_row(r: dict) -> str:
    lift = f"{r['lift_ms']:8.2f}" if "lift_ms" in r else f"{'-':>8}"
    return (f"{r['model']:6} {r['profile']:9} {r['num_nodes']:5d} {r['sparsity']:8.1f} {r['batch']:5d} "
            f"{r['dense_ms']:10.2f} {r['pruned_ms']:10.2f} {r['speedup']:7.2f}x {r['pruned_prepare_ms']:8.2f} "
            f"{r['speedup_incl_prepare']:6.2f}x {lift}")


@torch.no_grad()
def cell_choice(repeats: int, budget_s: float, batch: int = 64, hidden: int = 64) -> dict:
    """Time one DCGRU step: ours (batched, cached supports) vs PyG-Temporal's DCRNN cell (unbatched,
    looped over the batch) and, when present, its BatchedDCRNN, on the METR-LA graph."""
    from dynst_pyg.models.dcrnn import DCGRUCell

    ei, ew, n = GRAPHS["metr-la"]()
    x = torch.randn(batch, n, 1)
    h = torch.randn(batch, n, hidden)
    model = DCRNN(n, hidden=hidden, num_layers=1)
    sup = model.prepare_graph(ei, ew)
    ours = DCGRUCell(1, hidden, num_supports=2, diffusion_steps=2).eval()
    xn, hn = x.transpose(0, 1).contiguous(), h.transpose(0, 1).contiguous()
    res = {"batch": batch, "hidden": hidden, "num_nodes": n, "diffusion_steps": 2}
    res["own_cell_step_ms"] = round(time_ms(lambda: ours(xn, hn, sup), repeats, budget_s), 3)
    try:
        from torch_geometric_temporal.nn.recurrent import DCRNN as TGTDCRNN
    except ImportError as exc:  # pragma: no cover
        res["pyg_temporal"] = f"not importable: {exc}"
        return res
    tgt = TGTDCRNN(1, hidden, K=3).eval()  # K=3 in its convention = 2 diffusion steps

    def tgt_step():
        return torch.stack([tgt(x[i], ei, ew, h[i]) for i in range(batch)])

    res["pyg_temporal_dcrnn_step_ms"] = round(time_ms(tgt_step, repeats, budget_s), 3)
    try:
        from torch_geometric_temporal.nn.recurrent import BatchedDCRNN
        bt = BatchedDCRNN(1, hidden, K=3).eval()
        res["pyg_temporal_batched_dcrnn_step_ms"] = round(
            time_ms(lambda: bt(x.unsqueeze(1), ei, ew), repeats, budget_s), 3)
    except ImportError:
        res["pyg_temporal_batched_dcrnn_step_ms"] = None
    return res


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="METR-LA graph only, 3 repeats (< 5 min on 2 cores)")
    p.add_argument("--out", type=Path, default=None, help="write {'rows': [...]} as JSON")
    p.add_argument("--models", default="gwnet,dcrnn")
    p.add_argument("--profiles", default="reference,small")
    p.add_argument("--graphs", default=None, help="comma list of " + ",".join(GRAPHS))
    p.add_argument("--sparsities", default="0,0.3,0.5,0.7")
    p.add_argument("--batches", default="64,1")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per cell (default 5, quick 3)")
    p.add_argument("--budget", type=float, default=None,
                   help="max seconds of timed repeats per row; slow rows use fewer repeats (default 30, quick 8)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1: stable ratios)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cell-choice", action="store_true", help="also time DCRNN cells: own vs PyG-Temporal")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    global DEVICE
    DEVICE = resolve_device(a.device)
    graphs = a.graphs.split(",") if a.graphs else (["metr-la"] if a.quick else list(GRAPHS))
    for g in graphs:
        if g not in GRAPHS:
            p.error(f"--graphs: unknown graph {g!r}; choose from {sorted(GRAPHS)}")
    repeats = a.repeats or (3 if a.quick else 5)
    budget = a.budget or (8.0 if a.quick else 30.0)
    t0 = time.perf_counter()
    print(f"torch {torch.__version__}, device {DEVICE}, threads={torch.get_num_threads()}, "
          f"median of up to {repeats} repeats")
    print(HEADER)
    rows = run(a.models.split(","), a.profiles.split(","), graphs, [float(s) for s in a.sparsities.split(",")],
               [int(b) for b in a.batches.split(",")], repeats, budget, a.seed)
    out = {"rows": rows, "device": str(DEVICE), "device_name": torch.cuda.get_device_name(DEVICE)
           if DEVICE.type == "cuda" else "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
           "budget": {"repeats": repeats, "budget_s": budget},
           "seconds": round(time.perf_counter() - t0, 1)}
    if a.cell_choice:
        out["cell_choice"] = cell_choice(repeats, budget)
        print("DCRNN cell choice (one GRU step, METR-LA, batch 64, hidden 64):", json.dumps(out["cell_choice"]))
    print(f"total {out['seconds']} s")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
