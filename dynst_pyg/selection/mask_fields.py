"""Validation of the fields of a :class:`~dynst_pyg.selection.SensorMask` and of its dict / JSON form.

Each check raises naming the field and what was expected, and returns the field in the form
the mask stores (new CPU tensors, plain lists, a JSON round-tripped dict).
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import torch
from torch import Tensor

from .constraints import COST_RTOL, SelectionConstraints

__all__ = ["MASK_FORMAT_VERSION", "validate_keep", "check_scores_field", "check_sensor_ids", "check_meta",
           "check_constraints_meta", "check_mask_dict", "check_mask_dict_matches"]

#: Version of the JSON layout written by :meth:`SensorMask.save <dynst_pyg.selection.SensorMask.save>`.
MASK_FORMAT_VERSION = 1


def validate_keep(keep: Tensor, num_nodes: int, name: str = "keep") -> Tensor:
    """The kept indices sorted, after checking they are non-empty, unique and in ``[0, num_nodes)``."""
    if keep.numel() == 0:
        raise ValueError(f"'{name}' is an empty selection: at least one sensor must be kept")
    lo, hi = int(keep.min()), int(keep.max())
    if lo < 0 or hi >= num_nodes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"'{name}' holds index {bad}, outside the valid range [0, {num_nodes - 1}] "
                         f"for num_nodes={num_nodes}")
    sorted_keep = torch.sort(keep).values
    if sorted_keep.numel() > 1:
        dup = sorted_keep[1:] == sorted_keep[:-1]
        if bool(dup.any()):
            first = int(sorted_keep[1:][dup][0])
            raise ValueError(f"'{name}' holds duplicate index {first}: kept indices must be unique")
    return sorted_keep


def check_scores_field(scores: Any, num_nodes: Optional[int], name: str = "scores") -> Tensor:
    """One finite score per sensor as a new float32 CPU tensor."""
    if isinstance(scores, Tensor):
        t = scores.detach()
    elif isinstance(scores, (np.ndarray, list, tuple)):
        try:
            t = torch.as_tensor(np.asarray(scores, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"'{name}' must be a 1-D float tensor of numbers: {exc}") from None
    else:
        raise TypeError(f"'{name}' must be a 1-D float tensor, got {type(scores).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"'{name}' must be a real-valued tensor, got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"'{name}' must be 1-D with one score per sensor, got shape {tuple(t.shape)}")
    if num_nodes is not None and t.numel() != num_nodes:
        raise ValueError(f"'{name}' must have length num_nodes={num_nodes}, got {t.numel()}")
    t = t.to(device="cpu", dtype=torch.float32).clone()
    if t.numel() and not bool(torch.isfinite(t).all()):
        nbad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"'{name}' must be finite, found {nbad} NaN/inf value(s)")
    return t


def check_sensor_ids(sensor_ids: Any, num_nodes: Optional[int], name: str = "sensor_ids") -> List[str]:
    """Unique sensor ids as a list of str (int ids become str)."""
    if isinstance(sensor_ids, (str, bytes)) or not isinstance(sensor_ids, Iterable):
        raise TypeError(f"'{name}' must be a sequence of str, got {type(sensor_ids).__name__}")
    if isinstance(sensor_ids, Tensor):
        ids = [str(int(v)) for v in sensor_ids.reshape(-1).tolist()]
    else:
        ids = list(sensor_ids)
        for v in ids:
            if not isinstance(v, (str, int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"'{name}' must contain str (or int) ids, got {v!r}")
        ids = [str(v) for v in ids]
    if num_nodes is not None and len(ids) != num_nodes:
        raise ValueError(f"'{name}' must have length num_nodes={num_nodes}, got {len(ids)}")
    if len(set(ids)) != len(ids):
        seen, dup = set(), None
        for v in ids:
            if v in seen:
                dup = v
                break
            seen.add(v)
        raise ValueError(f"'{name}' holds duplicate id {dup!r}: sensor ids must be unique")
    return ids


def check_meta(meta: Any) -> Dict[str, Any]:
    """A JSON round-tripped copy of the ``meta`` dict (:obj:`None` gives ``{}``)."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise TypeError(f"'meta' must be a dict of JSON-serialisable values, got {type(meta).__name__}")
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"'meta' must be JSON-serialisable (str keys; numbers, str, lists, dicts): {exc}") \
            from None
    return json.loads(text)


def check_constraints_meta(obj: Any, keep: Tensor, num_nodes: int) -> None:
    """Checks that ``meta["constraints"]`` is a valid constraints dict that the kept sensors satisfy."""
    c = SelectionConstraints.from_dict(obj, source="meta['constraints']")
    try:
        c.check(num_nodes)
    except ValueError as exc:
        raise ValueError(f"meta['constraints']: {exc}") from None
    bool_mask = torch.zeros(num_nodes, dtype=torch.bool)
    bool_mask[keep] = True
    broken = c.violations(bool_mask)
    if broken:
        raise ValueError(f"'keep' does not satisfy meta['constraints']: {'; '.join(broken)}")


def check_mask_dict(obj: Any, source: str) -> None:
    """Checks the layout of a mask dict before the mask is built from it (errors name :obj:`source`)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(obj).__name__}")
    if "format_version" not in obj:
        raise ValueError(f"{source}: missing 'format_version' (is this a SensorMask file?)")
    version = obj["format_version"]
    if version != MASK_FORMAT_VERSION:
        raise ValueError(f"{source}: unsupported 'format_version' {version!r}; this version of "
                         f"dynst_pyg reads format_version {MASK_FORMAT_VERSION}")
    for key in ("num_nodes", "keep", "method"):
        if key not in obj:
            raise ValueError(f"{source}: missing field '{key}'")


def check_mask_dict_matches(obj: Any, mask: Any, source: str) -> None:
    """Checks that the redundant fields of a mask dict (``num_kept``, ``kept_cost``,
    ``kept_sensor_ids``) agree with the mask built from it."""
    keep = obj["keep"]
    if "num_kept" in obj and obj["num_kept"] != mask.num_kept:
        raise ValueError(f"{source}: 'num_kept' is {obj['num_kept']!r} but 'keep' lists {mask.num_kept} "
                         f"sensors")
    if len(keep) != mask.num_kept:  # cannot happen after validation, kept for clarity
        raise ValueError(f"{source}: 'keep' is inconsistent")
    if obj.get("kept_cost") is not None:
        cost = mask.kept_cost
        given = obj["kept_cost"]
        if cost is None or isinstance(given, bool) or not isinstance(given, (int, float)) \
                or abs(float(given) - cost) > COST_RTOL * max(1.0, abs(cost)) * 1e3:
            raise ValueError(f"{source}: 'kept_cost' is {given!r} but the kept sensors cost {cost!r} "
                             f"under meta['constraints']")
    kept_ids = obj.get("kept_sensor_ids")
    if kept_ids is not None:
        if mask.kept_sensor_ids is None:
            raise ValueError(f"{source}: 'kept_sensor_ids' given without 'sensor_ids'")
        if list(kept_ids) != mask.kept_sensor_ids:
            raise ValueError(f"{source}: 'kept_sensor_ids' does not match 'keep' and 'sensor_ids'")
