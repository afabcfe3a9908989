"""Reading a run folder back: the served model of ``model.pt`` and its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Optional

import torch

from ..data import ForecastSplits
from ..models import LiftHead, ServedModel, make_backbone
from ..scoring import SensorGate
from ..selection.mask import SensorMask
from ..training import evaluate_served, resolve_device
from ..training.engine import autocast_for
from ..transforms import DynSTMask
from .spec import RunSpec, load_splits

__all__ = ["LoadedRun", "load_run", "rebuild_served_model", "evaluate_run"]


class LoadedRun(NamedTuple):
    """A run folder read back: its spec, the full-network splits (on ``device``), the mask, the
    served model (eval mode, on ``device``) and the kept sensors' splits."""

    spec: RunSpec
    splits: ForecastSplits
    mask: SensorMask
    served: ServedModel
    sub: ForecastSplits
    device: torch.device


def rebuild_served_model(spec: RunSpec, splits: ForecastSplits, mask: SensorMask, sub: ForecastSplits,
                         state: dict) -> ServedModel:
    """The served model a run's ``spec`` describes, with the weights ``state`` (no training object).

    Args:
        spec (RunSpec): The run's specification (backbone, profile, target, lift).
        splits (ForecastSplits): The full-network splits (graph, features, horizon).
        mask (SensorMask): The kept sensors.
        sub (ForecastSplits): The kept sensors' splits (the sub-graph the backbone runs on).
        state (dict): ``ServedModel.state_dict()`` as saved in ``model.pt``.
    """
    N = splits.num_nodes
    backbone = make_backbone(spec.backbone, N, splits.in_features, splits.out_features, splits.t_in, splits.t_out,
                             spec.profile, spec.adaptive_topk)
    lift = None
    if spec.target == "all":
        harmonic = spec.extra.get("lift", "ridge") == "harmonic" or "lift.prop_weight" not in state
        lift = LiftHead(N, splits.edge_index, splits.edge_weight, features=splits.out_features,
                        node_index=None if harmonic else mask.keep)
    served = ServedModel(SensorGate(N), backbone, mask.keep, sub.edge_index, sub.edge_weight, lift)
    served.load_state_dict(state)
    return served


def load_run(run_dir: str | Path, device: Optional[str] = None) -> LoadedRun:
    """Rebuilds a run folder's served model from ``model.pt`` (on ``device``; default: the device
    the run was trained with, if this machine has it, else auto)."""
    run_dir = Path(run_dir)
    for f in ("mask.json", "model.pt"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir / f} not found: point --run at a directory written by `dynst-pyg prune`")
    try:
        ck = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)
        spec = RunSpec(**ck["spec"])
        state = ck["state_dict"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{run_dir / 'model.pt'} is not a model file written by `dynst-pyg prune` "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); run prune again") from exc
    try:
        mask = SensorMask.load(run_dir / "mask.json")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{run_dir / 'mask.json'} is not a valid mask file ({exc})") from exc
    splits = load_splits(spec)
    if mask.num_nodes != splits.num_nodes:
        raise ValueError(f"mask.json covers {mask.num_nodes} sensors but the dataset has {splits.num_nodes}")
    dev = resolve_device(device if device is not None else ("cpu" if spec.device == "cpu" else "auto"))
    sub_ds = DynSTMask(mask, reconnect=spec.extra.get("reconnect", "none"))(splits.dataset)
    sub = splits.reprepare(sub_ds, scaler=splits.scaler.select_nodes(mask.keep))
    try:
        served = rebuild_served_model(spec, splits, mask, sub, state)
    except RuntimeError as exc:
        raise ValueError(f"{run_dir / 'model.pt'} does not fit the model its spec describes "
                         f"({str(exc).strip().splitlines()[-1].strip()})") from exc
    return LoadedRun(spec, splits.to(dev), mask, served.to(dev).eval(), sub.to(dev), dev)


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto") -> dict:
    """Metrics of a saved run's served model on ``split``, computed on ``device``."""
    run = load_run(run_dir, device=device)
    return evaluate_served(run.served, run.splits, run.splits, run.sub, split,
                           autocast=lambda: autocast_for(run.device, run.spec.precision))
