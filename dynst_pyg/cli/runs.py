"""Reading a run folder back: the served model of ``model.pt`` and its evaluation."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple, Optional

import torch

from ..data import ForecastSplits, StandardScaler
from ..models import LiftHead, ServedModel, make_backbone
from ..scoring import SensorGate
from ..selection.mask import SensorMask
from ..training import evaluate_served, resolve_device
from ..training.checkpoint import tensor_checksum
from ..training.engine import autocast_for
from ..transforms import DynSTMask
from .run_folder import check_manifest
from .spec import RunSpec, load_splits

__all__ = ["LoadedRun", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "data_checksum", "save_run_model", "read_run_model",
           "load_run", "rebuild_served_model", "evaluate_loaded", "evaluate_run"]


class LoadedRun(NamedTuple):
    """A run folder read back: its spec, the full-network splits (on ``device``), the mask, the
    served model (eval mode, on ``device``), the kept sensors' splits, whether the data match the
    run's checksum, the scaler stored at training time and the run id."""

    spec: RunSpec
    splits: ForecastSplits
    mask: SensorMask
    served: ServedModel
    sub: ForecastSplits
    device: torch.device
    data_matches: bool = True
    saved_scaler: Optional[StandardScaler] = None
    run_id: str = ""


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


#: What ``model.pt`` says it is.
MODEL_FORMAT = "dynst-pyg served model"
#: Version of the ``model.pt`` layout :func:`save_run_model` writes.
MODEL_FORMAT_VERSION = 2


def data_checksum(splits: ForecastSplits) -> str:
    """The checksum of a run's data: series, graph and weights (the run fingerprint's ``dataset.checksum``)."""
    ds = splits.dataset
    return tensor_checksum(ds.series, ds.edge_index, ds.edge_weight)


def _absolute_paths(spec: RunSpec) -> dict:
    """``spec`` as a dict with ``data`` and ``root`` made absolute (``evaluate`` works from any directory)."""
    d = asdict(spec)
    for key in ("data", "root"):
        if d.get(key):
            d[key] = str(Path(d[key]).expanduser().resolve())
    return d


def save_run_model(spec: RunSpec, splits: ForecastSplits, served: torch.nn.Module, mask: SensorMask,
                   run_id: str) -> bytes:
    """The bytes of ``model.pt``: the served model's tensors plus JSON metadata, readable with
    ``torch.load(..., weights_only=True)`` (no pickled objects, so loading it runs no code).

    The metadata holds the spec (``data`` and ``root`` as absolute paths), the mask the model
    was trained on, the run id and :func:`data_checksum` of the run's data; the scaler's
    statistics are stored as tensors.

    Args:
        spec (RunSpec): The run's specification.
        splits (ForecastSplits): The full-network splits the run trained on.
        served (nn.Module): The trained :class:`~dynst_pyg.models.ServedModel`.
        mask (SensorMask): The kept sensors.
        run_id (str): The run id of the folder's ``run.json``.
    """
    meta = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "spec": _absolute_paths(spec),
            "mask": mask.to_dict(), "run_id": run_id, "data_checksum": data_checksum(splits),
            "num_nodes": splits.num_nodes}
    payload = {"meta": json.dumps(meta, allow_nan=False),
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in served.state_dict().items()},
               "scaler": {"mean": splits.scaler.mean.detach().cpu(), "std": splits.scaler.std.detach().cpu()}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def read_run_model(path: str | Path) -> tuple[dict, dict, StandardScaler]:
    """``(meta, state_dict, scaler)`` of a ``model.pt`` written by :func:`save_run_model`.

    The file is read with ``torch.load(..., weights_only=True)``: a file holding any pickled
    object other than tensors and plain containers is refused (:class:`ValueError`, one line)
    before any of its code can run.
    """
    path = Path(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(ck["meta"])
        if meta.get("format") != MODEL_FORMAT or meta.get("format_version") != MODEL_FORMAT_VERSION:
            raise ValueError(f"format {meta.get('format')!r} version {meta.get('format_version')!r}, expected "
                             f"{MODEL_FORMAT!r} version {MODEL_FORMAT_VERSION}")
        state = dict(ck["state_dict"])
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError("state_dict holds something other than tensors")
        scaler = StandardScaler(ck["scaler"]["mean"], ck["scaler"]["std"])
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is reported the same way
        raise ValueError(f"{path} is not a model file written by `dynst-pyg prune` "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); run prune again") from None
    return meta, state, scaler


def load_run(run_dir: str | Path, device: Optional[str] = None, allow_other_data: bool = False) -> LoadedRun:
    """Rebuilds a run folder's served model from ``model.pt``.

    Checks, each refused with one :class:`ValueError` line: ``model.pt`` holds only tensors
    and JSON (read with ``weights_only=True``); ``mask.json`` is the mask stored in
    ``model.pt`` (the one the model was trained on); both are the files the folder's
    ``run.json`` names; the data the spec points at have the checksum stored at training
    time (unless ``allow_other_data``; :attr:`LoadedRun.data_matches` then says whether they do).

    Args:
        run_dir (str or Path): A folder written by ``dynst-pyg prune``.
        device (str, optional): Where to put the model (default: the device the run was
            trained with, if this machine has it, else auto).
        allow_other_data (bool, optional): Load even when the data differ from the run's
            (default: :obj:`False`).
    """
    run_dir = Path(run_dir)
    for f in ("mask.json", "model.pt"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir / f} not found: point --run at a directory written by `dynst-pyg prune`")
    meta, state, scaler = read_run_model(run_dir / "model.pt")
    spec = RunSpec(**meta["spec"])
    try:
        mask = SensorMask.load(run_dir / "mask.json")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{run_dir / 'mask.json'} is not a valid mask file ({exc})") from exc
    if mask.to_dict() != SensorMask.from_dict(meta["mask"], "model.pt mask").to_dict():
        raise ValueError(f"{run_dir / 'mask.json'} differs from the mask the model was trained on "
                         f"(the one stored in {run_dir / 'model.pt'}); restore it or run prune again")
    check_manifest(run_dir, ["mask.json", "model.pt"])
    splits = load_splits(spec)
    matches = data_checksum(splits) == meta["data_checksum"]
    where = spec.data or spec.dataset
    if not matches and not allow_other_data:
        raise ValueError(f"the data of {where} differ from the data run {meta['run_id']} was trained on "
                         f"(checksum {data_checksum(splits)}, expected {meta['data_checksum']}); "
                         f"pass --allow-other-data to evaluate anyway")
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
    return LoadedRun(spec, splits.to(dev), mask, served.to(dev).eval(), sub.to(dev), dev, matches, scaler,
                     str(meta["run_id"]))


def evaluate_loaded(run: LoadedRun, split: str = "test") -> dict:
    """Metrics of a loaded run's served model on ``split`` (on the run's device)."""
    return evaluate_served(run.served, run.splits, run.splits, run.sub, split,
                           autocast=lambda: autocast_for(run.device, run.spec.precision))


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto",
                 allow_other_data: bool = False) -> dict:
    """Metrics of a saved run's served model on ``split``, computed on ``device`` (see :func:`load_run`
    for what is checked first)."""
    return evaluate_loaded(load_run(run_dir, device=device, allow_other_data=allow_other_data), split)
