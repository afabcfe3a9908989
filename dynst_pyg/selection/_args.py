"""Argument readers shared by the constraint record and the selection rules.

Each reader turns one kind of user input (sensor indices, a bool selection, costs, region
labels, region minima) into its canonical numpy form or raises naming the argument.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["COST_RTOL", "BoolLike", "fits", "fmt_cost", "index_list", "bool_array", "selection_length",
           "read_costs", "read_regions", "read_minima"]

#: Relative tolerance of every cost comparison (sums of floats).
COST_RTOL = 1e-9

BoolLike = Union[Tensor, np.ndarray, Sequence[bool]]


def fits(total: float, budget: float) -> bool:
    """Whether the cost ``total`` stays within ``budget`` (up to :data:`COST_RTOL`)."""
    return total <= budget + COST_RTOL * max(1.0, abs(budget))


def fmt_cost(x: float) -> str:
    """A cost as printed in error messages."""
    return f"{x:.6g}"


def index_list(value: Any, name: str) -> List[int]:
    """Sorted unique non-negative sensor indices from a sequence, array or integer tensor."""
    if isinstance(value, Tensor):
        if value.dtype == torch.bool or value.is_floating_point() or value.dim() > 1:
            raise TypeError(f"`{name}` must be a 1-D sequence of integer sensor indices, got a {value.dtype} tensor "
                            f"of shape {tuple(value.shape)}")
        value = value.reshape(-1).tolist()
    elif isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist() if value.ndim <= 1 else value
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"`{name}` must be a sequence of integer sensor indices, got {type(value).__name__}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"`{name}` must hold integer sensor indices, got {v!r}")
        if int(v) < 0:
            raise ValueError(f"`{name}` holds the negative sensor index {int(v)}")
        out.append(int(v))
    return sorted(set(out))


def bool_array(mask: Any, n: int, name: str) -> np.ndarray:
    """A bool selection ``[n]`` (tensor, array, list or anything with ``bool_mask``, e.g. a SensorMask) as a new array."""
    if hasattr(mask, "bool_mask"):
        mask = mask.bool_mask
    if isinstance(mask, Tensor):
        arr = mask.detach().cpu().numpy()
    elif isinstance(mask, (np.ndarray, list, tuple)):
        arr = np.asarray(mask)
    else:
        raise TypeError(f"`{name}` must be a bool tensor of shape [{n}] or a SensorMask, got {type(mask).__name__}")
    if arr.dtype != np.bool_ or arr.shape != (n,):
        raise ValueError(f"`{name}` must be a bool tensor of shape [{n}], got {arr.dtype} {tuple(arr.shape)}")
    return arr.copy()


def selection_length(mask: Any) -> int:
    """Number of sensors a bool selection (or SensorMask) covers."""
    if hasattr(mask, "bool_mask"):
        return int(mask.bool_mask.shape[0])
    if isinstance(mask, (Tensor, np.ndarray)):
        return int(mask.shape[0]) if mask.ndim else 0
    return len(mask)


def read_costs(costs: Any) -> np.ndarray:
    """Costs as a read-only float64 array ``[N]``, finite and ``>= 0``."""
    if isinstance(costs, Tensor):
        if costs.dtype == torch.bool:
            raise TypeError("`costs` must hold numbers, got a bool tensor")
        arr = costs.detach().cpu().double().numpy().copy()
    else:
        if isinstance(costs, (str, bytes)):
            raise TypeError("`costs` must be a sequence of numbers, got a str")
        try:
            arr = np.array(costs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`costs` must be a sequence of numbers: {exc}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`costs` must be 1-D with one cost per sensor, got shape {tuple(arr.shape)}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"`costs[{bad[0]}]` is {arr[bad[0]]}; every cost must be a finite number >= 0")
    neg = np.flatnonzero(arr < 0)
    if neg.size:
        raise ValueError(f"`costs[{neg[0]}]` is {arr[neg[0]]}; every cost must be >= 0")
    arr.setflags(write=False)
    return arr


def read_regions(regions: Any) -> Tuple[str, ...]:
    """Region labels as a tuple of non-empty str (int labels become str)."""
    if isinstance(regions, Tensor):
        regions = regions.reshape(-1).tolist()
    elif isinstance(regions, np.ndarray):
        regions = regions.reshape(-1).tolist()
    if isinstance(regions, (str, bytes)) or not isinstance(regions, Iterable):
        raise TypeError(f"`regions` must be a sequence of region labels, got {type(regions).__name__}")
    out = []
    for i, lab in enumerate(regions):
        if isinstance(lab, bool) or not isinstance(lab, (str, int, np.integer)):
            raise TypeError(f"`regions[{i}]` must be a str (or int) label, got {lab!r}")
        s = str(lab)
        if not s.strip():
            raise ValueError(f"`regions[{i}]` is an empty label")
        out.append(s)
    if not out:
        raise ValueError("`regions` is empty: it needs one label per sensor")
    return tuple(out)


def read_minima(value: Any, known: set) -> Union[int, Dict[str, int]]:
    """``min_per_region``: one int >= 0, or a dict of them keyed by labels in ``known``."""
    def count(v: Any, where: str) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
            raise ValueError(f"`min_per_region`{where} must be an int >= 0, got {v!r}")
        return int(v)

    if isinstance(value, Mapping):
        out: Dict[str, int] = {}
        for key, v in value.items():
            lab = str(key)
            if lab not in known:
                raise ValueError(f"`min_per_region` names region {lab!r}, which no sensor belongs to "
                                 f"(regions: {', '.join(repr(k) for k in sorted(known)[:8])}"
                                 f"{' ...' if len(known) > 8 else ''})")
            out[lab] = count(v, f"[{lab!r}]")
        return out
    return count(value, "")
