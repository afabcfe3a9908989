"""The ``dynst-pyg`` command (also ``python -m dynst_pyg`` and ``torchrun -m dynst_pyg``).

Subcommands are registered in :data:`COMMANDS`; each has its own ``--help`` with
defaults shown. Input errors (a bad argument, file or checkpoint) print one clear line and
exit with code 2; anything else is a bug and keeps its traceback. ``--debug`` shows the
traceback of input errors too.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

from .run_folder import RunFolderBusy

__all__ = ["main", "build_parser", "COMMANDS", "INPUT_ERRORS"]


def _fmt() -> type:
    return argparse.ArgumentDefaultsHelpFormatter


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..datasets import data_root, dataset_summary, format_summary

    if args.data is not None:
        from .spec import load_run_dataset

        ds = load_run_dataset(data=args.data, graph=args.graph, drop_empty_sensors=args.drop_empty_sensors)
        obs = float(ds.null_mask().float().mean())
        print(f"{args.data}: {ds!r}; observed share {obs:.3f}; coordinates {'yes' if ds.pos is not None else 'no'}")
        return 0
    root = data_root(args.root)
    print(format_summary(dataset_summary(root, synthetic_nodes=args.synthetic_nodes), root))
    return 0


def add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="summary table of every dataset that can be found",
                       description="List every dataset the loaders know (and the synthetic default): sensors, "
                                   "steps, interval, source and checksum state.", formatter_class=_fmt())
    p.add_argument("--root", default=None, help="data root (default: $DYNST_DATA, else ../shared/data, else datasets/)")
    p.add_argument("--synthetic-nodes", type=int, default=100, help="sensors of the synthetic default")
    _add_data(p)
    p.set_defaults(func=cmd_datasets)


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="DIR",
                   help="your own data: a folder with readings.csv (time column + one column per sensor; or .npz/"
                        ".parquet), edges.csv (from,to[,weight|distance]) or locations.csv to build a graph from, "
                        "optional dataset.json (see datasets/example/README.md); replaces --dataset")
    p.add_argument("--graph", default=None, metavar="knn:K|radius:KM",
                   help="--data: build the graph from locations.csv, each sensor to its K nearest or all pairs "
                        "within KM km ('edges' insists on edges.csv); overrides dataset.json's \"graph\"; unset: "
                        "edges.csv, else knn:8")
    p.add_argument("--drop-empty-sensors", action="store_true",
                   help="--data: drop sensors without a reading in the first 70%% of the steps (the training split); "
                        "the report lists them")


def cmd_prune(args: argparse.Namespace) -> int:
    from ..training.engine import DistContext, ddp_timeout_s, init_distributed
    from .launch import launch
    from .pipeline import run_prune
    from .spec import RunSpec

    if args.nproc > 1:
        return launch(args.nproc, args.argv, args.out)
    device = init_distributed(args.device, timeout_s=args.ddp_timeout)
    ctx = DistContext.current()
    spec = RunSpec(dataset=args.dataset, root=args.root, data=args.data, nodes=args.nodes,
                   adaptive_topk=args.adaptive_topk, steps=args.steps, backbone=args.backbone,
                   profile=args.profile, selector=args.selector, sparsity=args.sparsity, budget=args.budget,
                   target=args.target, epochs=args.epochs, finetune_lr=args.finetune_lr,
                   finetune_validate_start=args.finetune_validate_start, warmup_epochs=args.warmup_epochs,
                   search_epochs=args.search_epochs, sample_pruning=args.sample_pruning, seed=args.seed,
                   max_batches=args.max_batches, batch_size=args.batch_size,
                   device=str(device) if ctx.is_distributed else args.device, precision=args.precision,
                   costs=args.costs, regions=args.regions, cost_budget=args.cost_budget,
                   min_per_region=args.min_per_region, protected=args.protected, graph=args.graph,
                   drop_empty_sensors=args.drop_empty_sensors, time_features=args.time_features)
    if spec.sparsity is None and spec.budget is None and spec.cost_budget is None:
        spec.sparsity = 0.5
    try:
        s = run_prune(spec, args.out, dense_reference=not args.no_dense, progress=not args.quiet,
                      restart=args.restart)
    except RuntimeError as exc:
        if not ctx.is_distributed:
            raise
        # a collective failed: another process died or stopped answering; say so in one line
        first = " ".join(str(exc).split())[:160]
        print(f"dynst-pyg prune: error: rank {ctx.rank} of {ctx.world_size} lost the other processes ({first}); "
              f"collective timeout {ddp_timeout_s(args.ddp_timeout):g} s", file=sys.stderr, flush=True)
        return 3
    except KeyboardInterrupt:
        print(f"dynst-pyg prune: interrupted; the last finished epoch is checkpointed in {args.out}/checkpoint, "
              "run the same command again to resume", file=sys.stderr)
        return 130
    if ctx.is_main:
        print((Path(args.out) / "report.md").read_text())
        print(f"wrote {args.out}/: mask.json, model.pt, report.md, metrics.json, map.png, run.json "
              f"({s['processes']} process(es) on {s['device']})")
        for line in s.get("warnings", []):
            print(line)
    return 0


def add_prune(sub) -> None:
    from ..training.config import DynSTConfig
    from .spec import SELECTOR_CHOICES

    p = sub.add_parser("prune", help="learn which sensors to switch off and fine-tune on the smaller graph",
                       description="Select sensors (DynST or a baseline), fine-tune the backbone on the physical "
                                   "sub-graph, and write mask.json, model.pt, report.md and map.png.",
                       formatter_class=_fmt())
    p.add_argument("--dataset", default="synthetic", help="synthetic, los-loop, aarhus, metr-la, pems-bay, pems04, pems08")
    p.add_argument("--root", default=None, help="data root (default: $DYNST_DATA, else ../shared/data, else datasets/)")
    _add_data(p)
    p.add_argument("--nodes", type=int, default=100, help="sensors of the synthetic dataset")
    p.add_argument("--steps", type=int, default=2016, help="time steps of the synthetic dataset")
    p.add_argument("--backbone", default="gwnet", help="gwnet, dcrnn, stid (windows get time-of-day and day-of-week "
                                                       "channels), or a PyG-Temporal cell (GConvGRU, TGCN, A3TGCN)")
    p.add_argument("--profile", default="small", choices=["small", "reference"], help="backbone size")
    p.add_argument("--adaptive-topk", type=int, default=None, metavar="K",
                   help="gwnet: keep K entries per row of the adaptive adjacency (O(N K) support; large networks)")
    p.add_argument("--selector", default="dynst-iterative", choices=SELECTOR_CHOICES,
                   help="how sensors are chosen (dynst = dynst-iterative)")
    p.add_argument("--time-features", action=argparse.BooleanOptionalAction, default=None,
                   help="time-of-day and day-of-week input channels (prepare(time_features=True)); default: on when "
                        "the series has timestamps, off for step-number times (STID always has them)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sparsity", type=float, default=None,
                   help="fraction of sensors removed, in [0, 1) (0.5 unless --budget or --cost-budget is given)")
    g.add_argument("--budget", type=int, default=None, help="number of sensors kept (instead of --sparsity)")
    c = p.add_argument_group("constraints", "which selections are allowed (every selector obeys them)")
    c.add_argument("--costs", default=None, metavar="FILE", help="sensor_id,cost CSV (may sit in --data DIR)")
    c.add_argument("--cost-budget", type=float, default=None, help="most total cost of the kept sensors")
    c.add_argument("--regions", default=None, metavar="FILE", help="sensor_id,region CSV (may sit in --data DIR)")
    c.add_argument("--min-per-region", type=int, default=None, help="sensors kept at least in every region")
    c.add_argument("--protected", default=None, metavar="FILE",
                   help="sensor ids always kept, one per line (may sit in --data DIR)")
    p.add_argument("--target", default="all", choices=["all", "kept"],
                   help="forecast every sensor from the kept ones (all) or only the kept ones")
    p.add_argument("--epochs", type=int, default=6, help="sparse fine-tune epochs (early stopping on validation)")
    p.add_argument("--finetune-lr", type=float, default=None, metavar="LR",
                   help=f"learning rate of the sparse fine-tune; None: the warm-up's ({DynSTConfig.lr:g})")
    p.add_argument("--finetune-validate-start", action="store_true",
                   help="count the fine-tune's start (dense weights on the kept sensors) as its epoch 0 of early "
                        "stopping: served when no fine-tune epoch beats it on validation")
    p.add_argument("--warmup-epochs", type=int, default=2, help="dense warm-up epochs")
    p.add_argument("--search-epochs", type=int, default=2, help="DynST mask-search epochs")
    p.add_argument("--sample-pruning", default="none", choices=["none", "stprune", "infobatch", "random"],
                   help="skip training windows with ST-Prune or a baseline")
    p.add_argument("--batch-size", type=int, default=64, help="training batch size")
    p.add_argument("--max-batches", type=int, default=None, help="cap on batches per epoch (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--no-dense", action="store_true", help="skip the dense reference model in the report")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", default="runs/prune", help="output directory")
    p.add_argument("--restart", action="store_true",
                   help="delete OUT/checkpoint first (a checkpoint of another run is never resumed)")
    _add_device(p)
    p.add_argument("--precision", default="32", choices=["32", "bf16", "16"],
                   help="training precision (autocast; 16 also scales the loss); metrics are float32")
    p.add_argument("--ddp-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --nproc: a collective waits this long for the other processes before the run stops "
                        "(default: $DYNST_DDP_TIMEOUT, else 300)")
    p.add_argument("--nproc", type=int, default=1,
                   help="processes on this machine: re-launches through torch.distributed.run (DDP; gloo on CPU, "
                        "nccl on GPU); under torchrun leave it at 1")
    p.set_defaults(func=cmd_prune)


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="directory written by `dynst-pyg prune`")


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .runs import evaluate_loaded, load_run

    run = load_run(args.run, device=args.device, allow_other_data=args.allow_other_data)
    m = evaluate_loaded(run, args.split)
    print(f"{args.split} metrics of {args.run}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()
                                                           if not k.startswith(("rmse_", "mape_"))))
    if not run.data_matches:
        print(f"note: the data of {run.spec.data or run.spec.dataset} differ from the data run {run.run_id} was "
              f"trained on (--allow-other-data); these metrics are of other data")
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a saved mask + model on a split", formatter_class=_fmt(),
                       description="Rebuild the served model of a `dynst-pyg prune` run and report its metrics.")
    _add_run(p)
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split")
    p.add_argument("--allow-other-data", action="store_true",
                   help="evaluate even when the data differ from the run's (checksum in model.pt); says so")
    _add_device(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_forecast(args: argparse.Namespace) -> int:
    from .run_folder import atomic_write
    from .serve import Forecaster, read_readings

    fc = Forecaster.load(args.run, device=None if args.device == "auto" else args.device)
    rows = fc.predict(read_readings(args.readings), every_window=args.every_window)
    out = Path(args.out)
    if out.suffix.lower() == ".parquet":
        import io

        buf = io.BytesIO()
        rows.to_parquet(buf, index=False)
        atomic_write(out, buf.getvalue())
    else:
        atomic_write(out, rows.to_csv(index=False))
    silent = sorted(set(rows.loc[rows["input_missing"], "sensor_id"]))
    print(f"wrote {out}: {len(rows)} rows ({rows['sensor_id'].nunique()} sensors x {fc.t_out} horizons"
          f"{'' if not args.every_window else ' x every window'}, target={fc.target})")
    if silent:
        print(f"note: no reading in the last {fc.t_in} steps from {len(silent)} kept sensor(s), forecast from filled "
              f"values (input_missing=True): {', '.join(silent[:10])}{' ...' if len(silent) > 10 else ''}")
    return 0


def add_forecast(sub) -> None:
    p = sub.add_parser("forecast", help="forecast from live readings of the kept sensors", formatter_class=_fmt(),
                       description="Forecast every horizon from the last T_in readings with the served model of a "
                                   "`dynst-pyg prune` run; writes long rows time,sensor_id,horizon,forecast,"
                                   "input_missing on the original scale.")
    _add_run(p)
    p.add_argument("--readings", required=True, metavar="FILE",
                   help="CSV or Parquet in the --data readings format (time column, one column per sensor); only "
                        "the kept sensors' columns are needed")
    p.add_argument("--out", default="forecasts.csv", help="output CSV (or .parquet)")
    p.add_argument("--every-window", action="store_true", help="forecast from every T_in consecutive rows")
    _add_device(p)
    p.set_defaults(func=cmd_forecast)


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    c = export_run(args.run, args.out, aot=args.aot)
    note = "" if c["kind"] == "export" else f" (TorchScript: torch.export failed: {c['export_fallback_reason']})"
    if c["aoti_program"]:
        note += f", {c['aoti_program']} (AOTInductor)"
    print(f"wrote {args.out}/: {c['program']}{note}, contract.json ({len(c['kept_sensor_ids'])} kept sensors in, "
          f"{len(c['output_sensor_ids'])} out, T_in {c['t_in']}, T_out {c['t_out']})")
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export the served model as a stand-alone program", formatter_class=_fmt(),
                       description="Write a torch.export program (TorchScript where export fails) whose only input "
                                   "is the normalised input tensor [B, T_in, K, F], plus contract.json (kept sensor "
                                   "ids in order, scaler, T_in, T_out, interval, channels, target).")
    _add_run(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--aot", action="store_true",
                   help="also compile the program with AOTInductor to model.aoti.pt2 (needs a C++ compiler; minutes); "
                        "load it with torch._inductor.aoti_load_package")
    p.set_defaults(func=cmd_export)


def cmd_map(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ..selection.mask import SensorMask
    from ..viz.maps import plot_sensor_map

    mask = SensorMask.load(args.mask)
    from .spec import load_run_dataset

    if args.data is None and args.dataset is None:
        raise ValueError("map needs the network the mask belongs to: give --data DIR or --dataset NAME")
    ds = load_run_dataset(args.dataset, args.root, args.data, nodes=mask.num_nodes, seed=args.seed, graph=args.graph,
                          drop_empty_sensors=args.drop_empty_sensors)
    if ds.pos is None:
        raise ValueError(f"{args.data or args.dataset} has no sensor coordinates to draw"
                         + (": add locations.csv (sensor_id,lat,lon) to the folder" if args.data else ""))
    scores = None
    if args.scores:
        scores = torch.tensor(json.loads(Path(args.scores).read_text()), dtype=torch.float32)
    try:
        fig, _ = plot_sensor_map(ds, mask, scores=scores, title=args.title)
    except ValueError as exc:  # e.g. a mask of another network: name the file
        raise ValueError(f"{args.mask}: {exc}") from None
    fig.savefig(args.out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


def add_map(sub) -> None:
    p = sub.add_parser("map", help="draw a map of kept and pruned sensors from a mask file", formatter_class=_fmt(),
                       description="Sensors at their coordinates, kept vs pruned, coloured by importance.")
    p.add_argument("--mask", required=True, help="mask.json written by `dynst-pyg prune` or SensorMask.save")
    p.add_argument("--dataset", default=None, help="dataset whose coordinates to use (or --data DIR)")
    _add_data(p)
    p.add_argument("--root", default=None, help="data root")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic dataset")
    p.add_argument("--scores", default=None, help="optional JSON list of per-sensor scores (else the mask's)")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--out", default="map.png", help="output PNG")
    p.set_defaults(func=cmd_map)


#: Subcommand registrars, in --help order.
COMMANDS: list[Callable] = [add_prune, add_evaluate, add_forecast, add_export, add_map, add_datasets]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynst-pyg", description="Which sensors can be switched off (DynST) and "
                                     "which training windows can be skipped (ST-Prune).")
    parser.add_argument("--debug", action="store_true", help="show the traceback of input errors too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


#: Errors caused by the user's input (arguments, files, checkpoints): one line, exit code 2.
INPUT_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
                RunFolderBusy)


def _format_warning(message, category, filename, lineno, line=None, _default=warnings.formatwarning) -> str:
    """Notices of the folder loader (what it built or dropped) print as one line; other warnings as usual."""
    if category.__name__ == "FolderNotice":
        return f"dynst-pyg: note: {message}\n"
    return _default(message, category, filename, lineno, line)


def main(argv: Optional[Sequence[str]] = None) -> int:
    warnings.formatwarning = _format_warning
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("dynst-pyg: interrupted", file=sys.stderr)
        return 130
    except INPUT_ERRORS as exc:
        if args.debug:
            raise
        msg = " ".join(str(exc).split())  # one line, whatever the exception text
        print(f"dynst-pyg {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
