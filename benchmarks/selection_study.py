"""The selection study: every selector from one converged dense model, same fine-tune budget.

Protocol (DESIGN.md §8), for each (dataset, backbone, seed):

1. **One dense model** is trained to early stopping on validation (``DynSTTrainer.warmup``
   with ``warmup_patience``; best epoch restored). Its state is saved once under
   ``<out>/dense/`` and reused by every selector, target and sparsity of that seed. It must
   beat persistence and the time-of-day average at horizons 3, 6 and 12 on validation;
   otherwise the study stops (raise the budget, never report it).
2. **Every selector** picks a mask: random / degree / pagerank / betweenness / qr (and
   backward-elimination where :func:`~dynst_pyg.placement.select_sensors` offers it) from the
   graph and training series; DynST searches its mask starting from the dense state.
3. **Every mask** gets the same sparse fine-tune, *from the dense state*
   (``finetune(mask, start="dense")``, DynST included), with the same epoch cap and the same
   early stopping on validation; validation and test metrics are those of the served model.

Each (dataset, backbone, selector, sparsity, target, seed) cell writes one JSON under
``<out>/cells/`` holding its full configuration; a cell whose JSON exists with the same
configuration is skipped, one with another configuration is recomputed. ``--sweep`` cells
(DynST importance weights and schedule chosen on validation) go to ``<out>/sweep/`` and keep
validation metrics only: test is never read for a configuration that was not chosen.
``--planted`` writes the recovery of planted redundant sensors on the synthetic network.

    python benchmarks/selection_study.py --dataset los-loop --selectors random qr --seeds 0 1 2 3 4
    python benchmarks/selection_study.py --selectors dynst --dynst-schedule oneshot --recon-weight 0.5 --sweep
    python benchmarks/selection_study.py --planted --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynst_pyg.data import prepare, resample_mean
from dynst_pyg.datasets import load_aarhus, load_los_loop, synthetic_road_network
from dynst_pyg.metrics import forecast_metrics
from dynst_pyg.models import make_backbone
from dynst_pyg.placement.selectors import SELECTORS as BASELINES, select_sensors
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.training import DynSTConfig, DynSTTrainer
from dynst_pyg.training.evaluation import raw_forecast
from dynst_pyg.training.references import reference_metrics

HORIZONS = (3, 6, 12)
OUT = Path(__file__).resolve().parent / "results" / "selection_study"
BASELINE_ORDER = ["random", "degree", "pagerank", "betweenness", "qr", "backward-elimination"]


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="los-loop", choices=["los-loop", "aarhus"])
    p.add_argument("--backbone", default="stid", choices=["stid", "gwnet"])
    p.add_argument("--profile", default=None, help="backbone profile (default: reference for stid, small for gwnet)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.5])
    p.add_argument("--targets", nargs="+", default=["all"], choices=["all", "kept"])
    p.add_argument("--selectors", nargs="+", default=BASELINE_ORDER + ["dynst"])
    p.add_argument("--dynst-schedule", default="iterative")
    p.add_argument("--recon-weight", type=float, default=1.0)
    p.add_argument("--gate-weight", type=float, default=0.1)
    p.add_argument("--marginal-weight", type=float, default=0.8)
    p.add_argument("--search-epochs", type=int, default=3)
    p.add_argument("--dense-epochs", type=int, default=200, help="cap of the dense warm-up (epochs)")
    p.add_argument("--dense-patience", type=int, default=15)
    p.add_argument("--finetune-epochs", type=int, default=30, help="cap of every sparse fine-tune (epochs)")
    p.add_argument("--patience", type=int, default=5, help="early stopping of every sparse fine-tune")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--finetune-lr", type=float, default=None,
                   help="learning rate of every sparse fine-tune (default: --lr); a set value is part of the "
                        "selector's name, so its cells never replace those of the default")
    p.add_argument("--validate-start", action="store_true",
                   help="count the fine-tune's start state as its epoch 0 of the early stopping "
                        "(DynSTConfig.finetune_validate_start); part of the selector's name, like --finetune-lr")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--max-batches", type=int, default=None, help="cap on batches per epoch (default: all)")
    p.add_argument("--sweep", action="store_true", help="validation-only cells under sweep/ (no test metrics)")
    p.add_argument("--planted", action="store_true", help="planted-recovery table on the synthetic network")
    p.add_argument("--dense-only", action="store_true", help="train (or check) the seeds' dense models only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(OUT))
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------- data
def load_splits(dataset: str) -> tuple[Any, str]:
    """The study's windows of ``dataset`` (12 -> 12, chronological 7:1:2, time channels)."""
    if dataset == "los-loop":
        ds, note = load_los_loop(), "Los-loop, 207 sensors, 5 min, speed (mph); missing (0) masked"
    else:
        ds = resample_mean(load_aarhus(), 3)
        note = "Aarhus, 449 segments, resampled to 15 min (mean of observed readings), speed (km/h); gaps masked"
    return prepare(ds, t_in=12, t_out=12, ratios=(0.7, 0.1, 0.2), time_features=True), note


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def short(m: dict) -> dict:
    return {k: float(m[k]) for k in ("mae", "rmse", "mape", *(f"mae_h{h}" for h in HORIZONS)) if k in m}


def references(splits, split: str, nodes=None) -> dict:
    ref = reference_metrics(splits, split, horizons=HORIZONS, nodes=nodes)
    return {k: short(v) for k, v in ref.items()}


def beats_references(metrics: dict, refs: dict) -> list[str]:
    """Horizons at which ``metrics`` does not beat a reference (empty: beats both everywhere)."""
    return [f"{name} h{h}: {metrics[f'mae_h{h}']:.3f} vs {ref[f'mae_h{h}']:.3f}"
            for name, ref in refs.items() for h in HORIZONS if not metrics[f"mae_h{h}"] < ref[f"mae_h{h}"]]


@torch.no_grad()
def dense_forecast(trainer: DynSTTrainer, state: dict, split: str):
    """Raw-scale forecasts and targets of the dense model on every window of ``split``."""
    model = trainer.full_model(state).eval()
    w = getattr(trainer.windows, split)
    preds, ys = [], []
    for idx in torch.arange(len(w)).split(256):
        x, y = w.batch(idx)
        preds.append(raw_forecast(trainer.splits, model(x)))
        ys.append(y)
    return torch.cat(preds).cpu(), torch.cat(ys).cpu()


# ---------------------------------------------------------------------------------------- runs
class Study:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.profile = args.profile or ("reference" if args.backbone == "stid" else "small")
        self.splits, self.data_note = load_splits(args.dataset)
        self.out = Path(args.out)
        self.tag = f"{args.dataset}_{args.backbone}"
        self._dense_preds: dict = {}

    def factory(self):
        sp, a = self.splits, self.args
        return lambda: make_backbone(a.backbone, sp.num_nodes, sp.in_features, sp.out_features, sp.t_in, sp.t_out,
                                     profile=self.profile)

    def base_config(self, seed: int, **kw) -> DynSTConfig:
        a = self.args
        return DynSTConfig(seed=seed, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                           warmup_epochs=a.dense_epochs, warmup_patience=a.dense_patience,
                           finetune_epochs=a.finetune_epochs, patience=a.patience, search_epochs=a.search_epochs,
                           max_batches=a.max_batches, progress=False, device=a.device,
                           finetune_lr=a.finetune_lr, finetune_validate_start=a.validate_start, **kw)

    def budget(self) -> dict:
        a = self.args
        steps = -(-len(self.splits.train) // a.batch_size)
        if a.max_batches:
            steps = min(steps, a.max_batches)
        return {"dense_max_epochs": a.dense_epochs, "dense_patience": a.dense_patience,
                "finetune_max_epochs": a.finetune_epochs, "finetune_patience": a.patience,
                "finetune_step_cap": a.finetune_epochs * steps, "steps_per_epoch": steps,
                "batch_size": a.batch_size, "lr": a.lr, "weight_decay": a.weight_decay, "max_batches": a.max_batches,
                **({} if a.finetune_lr is None else {"finetune_lr": a.finetune_lr}),
                **({"finetune_validate_start": True} if a.validate_start else {})}

    def environment(self) -> dict:
        return {"device": self.args.device, "torch_threads": torch.get_num_threads(), "torch": torch.__version__}

    # ------------------------------------------------------------------ dense
    def dense(self, seed: int) -> tuple[dict, dict]:
        """The seed's dense state and its record (trained once, then loaded)."""
        d = self.out / "dense"
        key = {"dataset": self.args.dataset, "backbone": self.args.backbone, "profile": self.profile, "seed": seed,
               **{k: v for k, v in self.budget().items() if not k.startswith("finetune")}}
        rec_path, st_path = d / f"{self.tag}_seed{seed}.json", d / f"{self.tag}_seed{seed}.pt"
        rec = read_json(rec_path)
        if rec is not None and rec.get("config") == key and st_path.exists():
            return torch.load(st_path, map_location="cpu", weights_only=False), rec
        t0 = time.perf_counter()
        trainer = DynSTTrainer(self.factory(), self.splits, self.base_config(seed))
        state = trainer.warmup()
        seconds = time.perf_counter() - t0
        model = trainer.full_model(state)
        val = short(trainer.evaluate_full(model, trainer.windows.val))
        refs_val = references(self.splits, "val")
        fails = beats_references(val, refs_val)
        epochs = [h for h in trainer.history if h.get("phase", "warmup") == "warmup"]
        if fails:
            raise SystemExit(f"dense {self.tag} seed {seed} does not beat the references on validation "
                             f"({'; '.join(fails)}): raise the budget, do not report it")
        test = short(trainer.evaluate_full(model, trainer.windows.test))
        rec = {"config": key, **self.environment(), "data": self.data_note, "train_seconds": seconds,
               "epochs_run": len(epochs), "parameters": sum(p.numel() for p in model.backbone.parameters()),
               "val": val, "test": test, "reference_val": refs_val, "reference_test": references(self.splits, "test"),
               "chosen_by": "early stopping on validation MAE (best epoch restored); beats both references "
                            "at h3/h6/h12 on validation (checked before test was read)"}
        d.mkdir(parents=True, exist_ok=True)
        torch.save(state, st_path)
        write_json(rec_path, rec)
        print(f"dense {self.tag} seed {seed}: {len(epochs)} epochs, {seconds:.0f} s, val MAE {val['mae']:.3f}, "
              f"test MAE {test['mae']:.3f}", flush=True)
        return state, rec

    # ------------------------------------------------------------------ cells
    def selector_name(self, sel: str) -> str:
        a = self.args
        protocol = ("" if a.finetune_lr is None else f"-ftlr{a.finetune_lr:g}") + ("-vs" if a.validate_start else "")
        if sel != "dynst":
            return sel + protocol
        return (f"dynst-{a.dynst_schedule}-rw{a.recon_weight:g}-gw{a.gate_weight:g}-mw{a.marginal_weight:g}"
                f"-se{a.search_epochs}{protocol}")

    def cell(self, sel: str, sparsity: float, target: str, seed: int) -> None:
        a = self.args
        name = self.selector_name(sel)
        config = {"dataset": a.dataset, "backbone": a.backbone, "profile": self.profile, "selector": name,
                  "sparsity": sparsity, "target": target, "seed": seed, **self.budget(),
                  **({"schedule": a.dynst_schedule, "recon_weight": a.recon_weight, "gate_weight": a.gate_weight,
                      "marginal_weight": a.marginal_weight, "search_epochs": a.search_epochs}
                     if sel == "dynst" else {}),
                  "reads": "val" if a.sweep else "val+test"}
        path = self.out / ("sweep" if a.sweep else "cells") / f"{self.tag}_{name}_s{sparsity:g}_{target}_seed{seed}.json"
        old = read_json(path)
        if old is not None and old.get("config") == config:
            print(f"skip {path.name} (present)", flush=True)
            return
        if sel != "dynst" and sel not in BASELINES:
            print(f"not run {path.name}: selector {sel!r} is not offered by select_sensors here", flush=True)
            return
        state, dense_rec = self.dense(seed)
        t0 = time.perf_counter()
        kw = {"sparsity": sparsity, "target": target}
        if sel == "dynst":
            kw.update(schedule=a.dynst_schedule, recon_weight=a.recon_weight, gate_weight=a.gate_weight,
                      marginal_weight=a.marginal_weight)
        trainer = DynSTTrainer(self.factory(), self.splits, self.base_config(seed, **kw))
        trainer.load_dense_state(state)
        if sel == "dynst":
            mask = trainer.search()
        else:
            mask = select_sensors(sel, self.splits, sparsity=sparsity, seed=seed)
        select_s = time.perf_counter() - t0
        res = trainer.finetune(mask, start="dense", checkpoint=False)
        ft = [h for h in res.history if h.get("phase") == "finetune"]
        out: dict = {"config": config, **self.environment(), "data": self.data_note,
                     "select_seconds": select_s, "total_seconds": time.perf_counter() - t0,
                     "finetune_epochs_run": len(ft), "finetune_steps": len(ft) * self.budget()["steps_per_epoch"],
                     "finetune_samples": sum(int(h["samples"]) for h in ft),
                     "kept": mask.keep.tolist(), "num_kept": mask.num_kept, "val": short(res.val_metrics),
                     "dense_val": dense_rec["val"]}
        keep = mask.keep if target == "kept" else None
        if not a.sweep:
            out["test"] = short(res.test_metrics)
            out["reference_test"] = references(self.splits, "test", keep)
            out["dense_test"] = self.dense_on(seed, state, keep)
        out["reference_val"] = references(self.splits, "val", keep)
        out["start"] = "dense state of this seed (dense/), for the search and the fine-tune alike"
        write_json(path, out)
        msg = f"test MAE {out['test']['mae']:.3f}" if "test" in out else "(validation only)"
        print(f"{path.name}: kept {mask.num_kept}, {len(ft)} fine-tune epochs, val MAE {out['val']['mae']:.3f}, "
              f"{msg}, {out['total_seconds']:.0f} s", flush=True)

    def dense_on(self, seed: int, state: dict, keep) -> dict:
        """Test metrics of the dense model over all sensors or the kept ones (same windows as the cell)."""
        if seed not in self._dense_preds:
            trainer = DynSTTrainer(self.factory(), self.splits, self.base_config(seed))
            self._dense_preds[seed] = dense_forecast(trainer, state, "test")
        p, y = self._dense_preds[seed]
        if keep is not None:
            p, y = p[:, :, keep], y[:, :, keep]
        return short(forecast_metrics(p, y, self.splits.null_value, HORIZONS))

    def run(self) -> None:
        a = self.args
        for seed in a.seeds:
            self.dense(seed)
        if a.dense_only:
            return
        for target in a.targets:
            for sparsity in a.sparsities:
                for sel in a.selectors:
                    for seed in a.seeds:
                        self.cell(sel, sparsity, target, seed)


# ---------------------------------------------------------------------------------------- planted
def planted(args: argparse.Namespace) -> None:
    """How many planted redundant sensors each selector prunes at sparsity 0.3 (synthetic network)."""
    rows = []
    for seed in args.seeds:
        ds = synthetic_road_network(num_nodes=100, num_steps=2016, seed=seed)
        splits = prepare(ds, t_in=12, t_out=12, ratios=(0.7, 0.1, 0.2), time_features=True)
        planted_set = set(int(i) for i in ds.meta["redundant"])
        masks: dict[str, SensorMask] = {}
        for sel in BASELINE_ORDER:
            if sel in BASELINES:
                masks[sel] = select_sensors(sel, splits, sparsity=0.3, seed=seed)
        fac = lambda: make_backbone("stid", splits.num_nodes, splits.in_features, splits.out_features, 12, 12,
                                    profile="reference")
        for label, rw in (("dynst (recon_weight=1, default)", 1.0), ("dynst (recon_weight=0, learned terms)", 0.0)):
            c = DynSTConfig(seed=seed, sparsity=0.3, schedule="iterative", recon_weight=rw, warmup_epochs=3,
                            search_epochs=3, batch_size=32, lr=2e-3, progress=False, device="cpu")
            masks[label] = DynSTTrainer(fac, splits, c).search()
        for name, m in masks.items():
            pruned = set(range(splits.num_nodes)) - set(m.keep.tolist())
            rows.append({"seed": seed, "selector": name, "planted": len(planted_set), "pruned": len(pruned),
                         "planted_pruned": len(pruned & planted_set)})
            print(f"planted seed {seed} {name}: {len(pruned & planted_set)}/{len(planted_set)} planted pruned "
                  f"of {len(pruned)} pruned", flush=True)
    write_json(Path(args.out) / "planted_recovery.json",
               {"data": "synthetic_road_network(num_nodes=100, num_steps=2016, redundant_fraction=0.3)",
                "sparsity": 0.3, "seeds": args.seeds, "torch_threads": torch.get_num_threads(),
                "dynst": "STID reference, 3 dense warm-up epochs + 3 search epochs, iterative", "rows": rows})


def main(argv=None) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    if args.planted:
        planted(args)
    else:
        Study(args).run()


if __name__ == "__main__":
    main()
