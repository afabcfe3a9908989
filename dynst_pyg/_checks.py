"""The one set of argument checks shared by every subpackage.

Each check raises an :class:`ArgumentTypeError` (wrong kind of value; both a
:class:`TypeError` and a :class:`ValueError`, so callers that catch either see it) or a
:class:`ValueError` (right kind, wrong value) whose message names the argument and says what
was expected, and returns the value in its canonical form. Nothing here modifies its input.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ArgumentTypeError",
    "check_positive_int",
    "check_positive_ints",
    "check_nonnegative_int",
    "check_fraction",
    "check_choice",
    "check_graph",
    "check_scores",
    "check_index_tensor",
]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (e.g. a float where a count is expected)."""


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> Optional[int]:
    """``value`` as an ``int >= 1`` (or :obj:`None` when ``allow_none``).

    A one-element integer tensor counts as an int. Raises naming ``name``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        value = int(value.item())
    expected = "a positive int or None" if allow_none else "a positive int"
    if not _is_int(value):
        raise ArgumentTypeError(f"`{name}` must be {expected}, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"`{name}` must be {expected}, got {value!r}")
    return int(value)


def check_positive_ints(**values: Any) -> None:
    """:func:`check_positive_int` for each keyword argument, named by its keyword."""
    for name, value in values.items():
        check_positive_int(value, name)


def check_nonnegative_int(value: Any, name: str) -> int:
    """``value`` as an ``int >= 0``. Raises naming ``name``."""
    if not _is_int(value):
        raise ArgumentTypeError(f"`{name}` must be a non-negative int, got {value!r}")
    if int(value) < 0:
        raise ValueError(f"`{name}` must be a non-negative int, got {value!r}")
    return int(value)


def check_fraction(value: Any, name: str, *, low_open: bool = False, high_open: bool = True,
                   allow_none: bool = False) -> Optional[float]:
    """``value`` as a float in ``[0, 1)`` (the bounds' openness is settable).

    Args:
        value: The value to check.
        name (str): Argument name used in the message.
        low_open (bool, optional): Exclude 0 (default: :obj:`False`).
        high_open (bool, optional): Exclude 1 (default: :obj:`True`).
        allow_none (bool, optional): Accept :obj:`None` (default: :obj:`False`).
    """
    if value is None and allow_none:
        return None
    interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"`{name}` must be a number in {interval}, got {value!r}")
    v = float(value)
    if math.isnan(v) or v < 0 or v > 1 or (low_open and v == 0) or (high_open and v == 1):
        raise ValueError(f"`{name}` must lie in {interval}, got {value!r}")
    return v


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; the message lists them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def values_checkable() -> bool:
    """:obj:`False` while :func:`torch.export.export`, :func:`torch.compile` or :func:`torch.jit.trace`
    traces the caller: checks that read tensor *values* are skipped then (the traced program's graph
    tensors are constants that were checked when the model was built and called eagerly)."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)()
    return not (exporting or torch.compiler.is_compiling() or torch.jit.is_tracing())


def check_graph(edge_index: Any, edge_weight: Any, num_nodes: int, *, name: str = "edge_index") -> None:
    """Checks an ``edge_index`` ``[2, E]`` / ``edge_weight`` ``[E]`` pair of a graph with ``num_nodes`` nodes.

    Indices must be integers in ``[0, num_nodes)``; weights (when given) a float tensor of
    one finite value per edge.

    Args:
        edge_index (Tensor): ``[2, E]`` integer tensor.
        edge_weight (Tensor, optional): ``[E]`` tensor or :obj:`None`.
        num_nodes (int): Number of nodes the indices must be smaller than.
        name (str, optional): Argument name used in messages (default: ``"edge_index"``).
    """
    if not isinstance(edge_index, Tensor):
        raise ArgumentTypeError(f"`{name}` must be a torch.Tensor of shape [2, E], got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`{name}` must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.dtype not in (torch.long, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ArgumentTypeError(f"`{name}` must be an integer (long) tensor, got dtype {edge_index.dtype}")
    if edge_index.numel() > 0 and values_checkable():
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= num_nodes:
            raise ValueError(f"`{name}` has node indices in [{lo}, {hi}] but the graph has {num_nodes} nodes "
                             f"(expected indices in [0, {num_nodes - 1}])")
    if edge_weight is None:
        return
    if not isinstance(edge_weight, Tensor):
        raise ArgumentTypeError(f"`edge_weight` must be a torch.Tensor of shape [E] or None, got {type(edge_weight).__name__}")
    if edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1):
        raise ValueError(f"`edge_weight` must have shape [E] = [{edge_index.size(1)}] to match `{name}`, "
                         f"got {tuple(edge_weight.shape)}")
    if not edge_weight.is_floating_point():
        raise ArgumentTypeError(f"`edge_weight` must be a float tensor, got dtype {edge_weight.dtype}")
    if edge_weight.numel() and values_checkable() and not bool(torch.isfinite(edge_weight).all()):
        raise ValueError("`edge_weight` must be finite, found NaN or inf")


def check_scores(scores: Any, name: str = "scores", num_nodes: Optional[int] = None) -> np.ndarray:
    """``scores`` as a new 1-D float64 array with one non-NaN value per sensor.

    Args:
        scores: A tensor, array or sequence of numbers.
        name (str, optional): Argument name used in messages (default: ``"scores"``).
        num_nodes (int, optional): Required length (default: :obj:`None`, any length).
    """
    if isinstance(scores, Tensor):
        arr = scores.detach().cpu().double().numpy().copy()
    else:
        try:
            arr = np.array(scores, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ArgumentTypeError(f"`{name}` must be a 1-D tensor of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D with one value per sensor, got shape {tuple(arr.shape)}")
    if num_nodes is not None and arr.shape[0] != num_nodes:
        raise ValueError(f"`{name}` has {arr.shape[0]} values, expected one per sensor ({num_nodes})")
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` contains NaN")
    return arr


def check_index_tensor(index: Any, name: str) -> Tensor:
    """An index-like object (tensor, array, sequence of ints) as a new 1-D int64 CPU tensor."""
    if isinstance(index, Tensor):
        t = index.detach()
    elif isinstance(index, np.ndarray):
        t = torch.from_numpy(np.array(index, copy=True))
    elif isinstance(index, (list, tuple, range)):
        bad = [v for v in index if not _is_int(v)]
        if bad:
            raise ArgumentTypeError(f"`{name}` must contain integer node indices, got {bad[0]!r}")
        t = torch.tensor([int(v) for v in index], dtype=torch.long)
    else:
        raise ArgumentTypeError(f"`{name}` must be a 1-D integer tensor, array or sequence of ints, got {type(index).__name__}")
    if t.dtype == torch.bool:
        raise ArgumentTypeError(f"`{name}` must hold integer indices, got a boolean tensor "
                        f"(use SensorMask.from_bool for boolean masks)")
    if t.is_floating_point() or t.is_complex():
        raise ArgumentTypeError(f"`{name}` must hold integer indices, got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(t.shape)}")
    return t.to(device="cpu", dtype=torch.long).clone()
