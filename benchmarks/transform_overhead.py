"""Cost of removing sensors from a graph with ``DynSTMask``, per reconnect mode.

Two tables:

1. ``DynSTMask`` on a node-first window (``x [N, 12, 1]``, ``y [N, 12, 1]``, ``pos``,
   ``sensor_id``, weighted edges) of road-like graphs with 1k, 10k and 100k nodes
   (each node linked to its 8 nearest neighbours in both directions, about 10 directed
   edges per node, Gaussian-kernel weights), ``--sparsity`` of the sensors pruned at
   random, for ``reconnect`` = none / khop (k=2) / kron. ``cold`` is a fresh transform
   (edges rebuilt); ``cached`` is the same transform on the next window of the same
   graph (the transform reuses the rebuilt edges when the graph is unchanged, as in a
   ``DataLoader`` over windows). The reference is PyG's own ``Data.subgraph`` on the
   same data (``ratio = cold / Data.subgraph``).
2. Kron reduction alone at N = 2,000 with half of the sensors pruned, on the road-like
   graph and on an Erdos-Renyi graph with 10 edges per node (the hard case: the pruned
   half forms one big component, so the reduced graph is dense), against the dense
   Schur complement ``L_kk - L_kp L_pp^-1 L_pk`` computed with numpy in the same run.

Every time is the median of ``--repeats`` runs. Usage::

    python benchmarks/transform_overhead.py --out transform_overhead.json
    python benchmarks/transform_overhead.py --quick      # 1k and 10k nodes, fewer repeats

The full run takes about two minutes on 2 CPU cores (``torch.set_num_threads(1)``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional


def _threads_from_argv(argv: List[str]) -> str:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# BLAS thread pools must be sized before numpy/scipy load them: an oversubscribed
# OpenBLAS on a shared machine makes small dense solves 100x slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads_from_argv(sys.argv[1:]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from torch_geometric.data import Data  # noqa: E402

from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.graph import kron_reduction
from dynst_pyg.transforms.dynst_mask import DynSTMask

MODES = ("none", "khop", "kron")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[1_000, 10_000, 100_000],
                   help="graph sizes (default: 1000 10000 100000)")
    p.add_argument("--sparsity", type=float, default=0.3,
                   help="fraction of sensors pruned in table 1 (default: 0.3)")
    p.add_argument("--neighbors", type=int, default=8,
                   help="nearest neighbours per node, linked both ways (default: 8, about 10 edges per node)")
    p.add_argument("--k", type=int, default=2, help="hops for reconnect='khop' (default: 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats, median reported (default: 5)")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1k and 10k nodes, 3 repeats")
    p.add_argument("--out", type=str, default=None, help="write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 10_000] or [1_000]
        args.repeats = min(args.repeats, 3)
    if not 0.0 <= args.sparsity < 1.0:
        p.error("--sparsity must be in [0, 1)")
    return args


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def road_graph(n: int, neighbors: int, seed: int):
    """Random sensors in the unit square, each linked to its nearest neighbours both ways."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    dist, nbr = cKDTree(pos).query(pos, k=neighbors + 1)
    src = np.repeat(np.arange(n), neighbors)
    dst = nbr[:, 1:].reshape(-1)
    d = dist[:, 1:].reshape(-1)
    sigma = d.std() + 1e-12
    pairs = np.concatenate([np.stack([src, dst]), np.stack([dst, src])], 1)
    w = np.exp(-(np.concatenate([d, d]) / sigma) ** 2)
    key = pairs[0] * n + pairs[1]
    _, first = np.unique(key, return_index=True)
    ei = torch.from_numpy(pairs[:, first].astype(np.int64))
    return ei, torch.from_numpy(w[first].astype(np.float32)), torch.from_numpy(pos.astype(np.float32))


def er_graph(n: int, edges_per_node: int, seed: int):
    rng = np.random.default_rng(seed)
    m = n * edges_per_node
    pairs = rng.integers(0, n, size=(2, m))
    pairs = pairs[:, pairs[0] != pairs[1]]
    ei = torch.from_numpy(pairs.astype(np.int64))
    return ei, torch.from_numpy(rng.uniform(0.1, 1.0, ei.size(1)).astype(np.float32))


def window(ei: torch.Tensor, w: torch.Tensor, pos: torch.Tensor, seed: int) -> Data:
    n = pos.size(0)
    g = torch.Generator().manual_seed(seed)
    return Data(x=torch.randn(n, 12, 1, generator=g), y=torch.randn(n, 12, 1, generator=g), edge_index=ei,
                edge_weight=w, pos=pos, sensor_id=[str(i) for i in range(n)], num_nodes=n)


def largest_pruned_component(ei: torch.Tensor, mask: SensorMask) -> int:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    pr = mask.pruned.numpy()
    if pr.size == 0:
        return 0
    n = mask.num_nodes
    A = sp.coo_matrix((np.ones(ei.size(1)), (ei[0].numpy(), ei[1].numpy())), shape=(n, n)).tocsr()
    _, comp = connected_components(A[pr][:, pr], directed=False)
    return int(np.bincount(comp).max())


def dense_schur(ei: torch.Tensor, w: torch.Tensor, keep: np.ndarray, n: int) -> np.ndarray:
    W = np.zeros((n, n))
    np.add.at(W, (ei[0].numpy(), ei[1].numpy()), w.numpy().astype(np.float64))
    np.fill_diagonal(W, 0.0)
    A = (W + W.T) / 2
    L = np.diag(A.sum(1)) - A
    p = np.setdiff1d(np.arange(n), keep)
    return L[np.ix_(keep, keep)] - L[np.ix_(keep, p)] @ np.linalg.solve(L[np.ix_(p, p)], L[np.ix_(p, keep)])


def bench_transform(args: argparse.Namespace) -> List[Dict[str, Any]]:
    rows = []
    for n in args.sizes:
        ei, w, pos = road_graph(n, args.neighbors, args.seed)
        data = window(ei, w, pos, args.seed)
        data_next = window(ei, w, pos, args.seed + 1)
        g = torch.Generator().manual_seed(args.seed)
        mask = SensorMask.from_scores(torch.rand(n, generator=g), sparsity=args.sparsity)
        keep = mask.keep
        reps = args.repeats if n <= 10_000 else max(1, min(args.repeats, 3))
        t_pyg = median_time(lambda: data.subgraph(keep), reps)
        largest = largest_pruned_component(ei, mask)
        for mode in MODES:
            def cold() -> Data:
                return DynSTMask(mask, reconnect=mode, k=args.k)(data)

            out = cold()
            t_cold = median_time(cold, reps, warmup=0)
            tf = DynSTMask(mask, reconnect=mode, k=args.k)
            tf(data)
            t_cached = median_time(lambda: tf(data_next), reps)
            rows.append(dict(nodes=n, edges=int(ei.size(1)), reconnect=mode, kept=mask.num_kept,
                             edges_out=int(out.edge_index.size(1)), largest_pruned_component=largest,
                             cold_ms=1e3 * t_cold, cached_ms=1e3 * t_cached, pyg_subgraph_ms=1e3 * t_pyg,
                             ratio_vs_pyg=t_cold / t_pyg, repeats=reps))
            print(f"  N={n:>7} {mode:>5}: cold {1e3 * t_cold:9.2f} ms, cached {1e3 * t_cached:8.2f} ms",
                  file=sys.stderr, flush=True)
    return rows


def bench_kron(args: argparse.Namespace) -> List[Dict[str, Any]]:
    n = 2_000
    rows = []
    road_ei, road_w, _ = road_graph(n, args.neighbors, args.seed)
    er_ei, er_w = er_graph(n, 10, args.seed)
    reps = max(3, args.repeats)
    for name, ei, w in (("road-like kNN", road_ei, road_w), ("Erdos-Renyi", er_ei, er_w)):
        g = torch.Generator().manual_seed(args.seed)
        mask = SensorMask.from_scores(torch.rand(n, generator=g), sparsity=0.5)
        keep_np = mask.keep.numpy()
        out_ei, out_w = kron_reduction(mask, ei, w, tol=0.0)
        t_kron = median_time(lambda: kron_reduction(mask, ei, w), reps)
        t_dense = median_time(lambda: dense_schur(ei, w, keep_np, n), max(1, reps // 2))
        S = dense_schur(ei, w, keep_np, n)
        R = np.zeros_like(S)
        e = out_ei.numpy()
        off = e[0] != e[1]
        R[e[0][off], e[1][off]] = out_w.numpy()[off]
        ref = -S
        np.fill_diagonal(ref, 0.0)
        err = float(np.abs(R - ref).max())
        rows.append(dict(graph=name, nodes=n, edges=int(ei.size(1)), kept=mask.num_kept,
                         edges_out=int(out_ei.size(1)), largest_pruned_component=largest_pruned_component(ei, mask),
                         kron_ms=1e3 * t_kron, dense_schur_ms=1e3 * t_dense, speedup_vs_dense=t_dense / t_kron,
                         max_abs_err_vs_dense=err, repeats=reps))
        print(f"  kron N=2000 {name}: {1e3 * t_kron:.1f} ms", file=sys.stderr, flush=True)
    return rows


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    transform_rows = bench_transform(args)
    kron_rows = bench_kron(args)

    print(f"\nDynSTMask on road-like graphs, {args.neighbors}-NN both ways, sparsity {args.sparsity}, "
          f"k={args.k}, median of {args.repeats} (3 at 100k), torch threads {args.threads}")
    print(f"{'nodes':>8} {'edges':>9} {'reconnect':>9} {'kept':>7} {'max pruned comp':>15} {'edges out':>10} "
          f"{'cold ms':>10} {'cached ms':>10} {'Data.subgraph ms':>17} {'cold/PyG':>9}")
    for r in transform_rows:
        print(f"{r['nodes']:>8} {r['edges']:>9} {r['reconnect']:>9} {r['kept']:>7} "
              f"{r['largest_pruned_component']:>15} {r['edges_out']:>10} "
              f"{r['cold_ms']:>10.2f} {r['cached_ms']:>10.2f} {r['pyg_subgraph_ms']:>17.2f} "
              f"{r['ratio_vs_pyg']:>9.2f}")
    print("\nKron reduction, N = 2000, half pruned (tol 1e-8), vs dense numpy Schur complement")
    print(f"{'graph':>14} {'edges':>7} {'kept':>5} {'largest pruned comp':>20} {'edges out':>10} "
          f"{'kron ms':>9} {'dense ms':>9} {'speedup':>8} {'max |err|':>10}")
    for r in kron_rows:
        print(f"{r['graph']:>14} {r['edges']:>7} {r['kept']:>5} {r['largest_pruned_component']:>20} "
              f"{r['edges_out']:>10} {r['kron_ms']:>9.1f} {r['dense_schur_ms']:>9.1f} "
              f"{r['speedup_vs_dense']:>8.1f} {r['max_abs_err_vs_dense']:>10.1e}")
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.1f} s")
    result = dict(benchmark="transform_overhead", args=vars(args), transform=transform_rows, kron=kron_rows,
                  total_seconds=total,
                  environment=dict(python=platform.python_version(), torch=torch.__version__,
                                   numpy=np.__version__, cpus=os.cpu_count(), threads=args.threads,
                                   machine=platform.machine()))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
