"""Checkpoints that belong to their run.

A :class:`Checkpointer` writes one file per run directory after every epoch (atomically,
rank 0 only) and stamps it with a *fingerprint*: a flat dict of everything that determines
the result (:func:`run_fingerprint`: the configuration, the dataset's name, shape and a
checksum of its series and graph, the backbone's class and hyper-parameters, the package
version). A checkpoint whose fingerprint differs from the current run's is never resumed:
:meth:`Checkpointer.load` raises :class:`CheckpointMismatchError` naming the fields that
differ.

The file holds tensors and plain Python data only (the configuration and record as dicts, the
mask as its ``to_dict``) and is read with ``torch.load(..., weights_only=True)``: a file that
holds any other pickled object is refused as unreadable, and loading it runs no code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from .engine import DistContext

__all__ = ["CheckpointMismatchError", "Checkpointer", "run_fingerprint", "tensor_checksum"]

#: Configuration fields that do not change what a run computes.
_NOT_FINGERPRINTED = ("progress", "checkpoint_dir", "device")


class CheckpointMismatchError(ValueError):
    """A checkpoint was written by another run (configuration, data, backbone or version)."""


def tensor_checksum(*tensors: torch.Tensor) -> str:
    """A short sha256 of the tensors' dtypes, shapes and values."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _plain(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "tolist"):
        return o.tolist()
    return repr(o)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists, tensors lists, objects their repr)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = {f: getattr(value, f) for f in value.__dataclass_fields__}
    try:
        return json.loads(json.dumps(value, sort_keys=True, default=_plain))
    except (TypeError, ValueError):
        return repr(value)


def run_fingerprint(config: Any, splits: Any, backbone: nn.Module, extra: Optional[Mapping[str, Any]] = None
                    ) -> dict[str, Any]:
    """What determines a run's result, as a flat ``{field: value}`` dict.

    Args:
        config: The run's configuration (a dataclass such as
            :class:`~dynst_pyg.training.DynSTConfig`); ``progress``, ``checkpoint_dir`` and
            ``device`` are left out.
        splits (ForecastSplits): The windows (dataset name, shape, checksum of series and graph,
            windowing).
        backbone (nn.Module): A freshly built backbone (class, hyper-parameters via its ``repr``,
            parameter count).
        extra (dict, optional): More fields, e.g. the selector of a baseline run (default: none).
    """
    from .._version import __version__

    cfg = _jsonable(config)
    out: dict[str, Any] = {f"config.{k}": v for k, v in sorted(cfg.items()) if k not in _NOT_FINGERPRINTED}
    ds = splits.dataset
    out.update({
        "dataset.name": ds.name,
        "dataset.shape": list(ds.series.shape),
        "dataset.checksum": tensor_checksum(ds.series, ds.edge_index, ds.edge_weight),
        "windows": [splits.t_in, splits.t_out, splits.stride, list(splits.ratios), list(splits.target_features),
                    bool(splits.time_features)],
        "backbone.class": type(backbone).__name__,
        "backbone.checksum": hashlib.sha256(repr(backbone).encode()).hexdigest()[:16],
        "backbone.parameters": int(sum(p.numel() for p in backbone.parameters())),
        "version": __version__,
    })
    for k, v in (extra or {}).items():
        out[f"extra.{k}"] = _jsonable(v)
    return out


class Checkpointer:
    """One checkpoint file per run directory, stamped with the run's fingerprint.

    Args:
        directory (str or Path, optional): Where to keep ``dynst_checkpoint.pt``; :obj:`None`
            disables checkpoints (default: :obj:`None`).
        fingerprint (dict, optional): The run's :func:`run_fingerprint` (default: empty).
        dist (DistContext, optional): Rank 0 writes, every rank reads (default: current).
    """

    FILENAME = "dynst_checkpoint.pt"

    def __init__(self, directory: Optional[str | Path] = None, fingerprint: Optional[Mapping[str, Any]] = None,
                 dist: Optional[DistContext] = None) -> None:
        self.directory = None if directory is None else Path(directory)
        self.fingerprint = dict(fingerprint or {})
        self.dist = dist or DistContext.current()
        if self.directory is not None and self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"checkpoint directory {self.directory} exists and is not a directory")

    @property
    def path(self) -> Optional[Path]:
        return None if self.directory is None else self.directory / self.FILENAME

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def load(self) -> Optional[dict]:
        """The saved state of this run, :obj:`None` when there is none.

        Raises:
            CheckpointMismatchError: The file belongs to another run (the message names the
                fields that differ) or cannot be read.
        """
        p = self.path
        if p is None or not p.is_file():
            return None
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            raise CheckpointMismatchError(f"the checkpoint {p} cannot be read ({type(exc).__name__}: {exc}); "
                                          f"{self._advice()}") from exc
        if not isinstance(state, dict) or "fingerprint" not in state:
            raise CheckpointMismatchError(f"the checkpoint {p} was written by an older dynst_pyg without a run "
                                          f"fingerprint; {self._advice()}")
        diff = self.differences(state["fingerprint"])
        if diff:
            shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
            raise CheckpointMismatchError(f"the checkpoint {p} belongs to another run ({shown}); "
                                          f"{self._advice()}")
        return state

    def differences(self, other: Mapping[str, Any]) -> list[str]:
        """``"field: checkpoint value -> this run's value"`` for every differing field."""
        keys = sorted(set(other) | set(self.fingerprint))
        return [f"{k}: {other.get(k, '<absent>')!r} -> {self.fingerprint.get(k, '<absent>')!r}"
                for k in keys if _jsonable(other.get(k)) != _jsonable(self.fingerprint.get(k))]

    def save(self, state: dict) -> None:
        """Writes ``state`` (plus the fingerprint) atomically on rank 0; all ranks then meet at a barrier."""
        if self.directory is None:
            return
        if self.dist.is_main:
            self.directory.mkdir(parents=True, exist_ok=True)
            # a unique temporary name: two processes saving here never rename each other's file
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.FILENAME}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    torch.save({**state, "fingerprint": self.fingerprint}, f)
                os.replace(tmp, self.path)  # an interrupted save never leaves a broken checkpoint
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        self.dist.barrier()

    def clear(self) -> None:
        """Deletes the checkpoint directory (rank 0), so the run starts afresh."""
        if self.directory is not None and self.directory.exists() and self.dist.is_main:
            shutil.rmtree(self.directory)
        self.dist.barrier()

    def load_into(self, module: nn.Module, state: dict, what: str) -> None:
        """``module.load_state_dict(state)`` with an actionable error when it does not fit."""
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()
            raise CheckpointMismatchError(f"the checkpoint {self.path} does not fit this run's {what} ({first}); "
                                          f"{self._advice()}") from exc

    def _advice(self) -> str:
        return (f"start afresh with --restart (or delete {self.directory}), or choose another output directory")
