"""An immutable record of which sensors of a network are kept.

A :class:`SensorMask` is what every sensor selector in :mod:`dynst_pyg` produces
(the DynST trainer, the placement baselines) and what
:class:`~dynst_pyg.transforms.DynSTMask` consumes. It stores the kept node indices
(sorted and unique) over ``num_nodes`` sensors, optionally one importance score per
sensor and the sensors' ids, the name of the method that produced it and a dict of
JSON-able extras. It can be saved to and loaded from a human-readable JSON file.
"""
from __future__ import annotations

import copy
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .._checks import check_index_tensor, check_positive_int
from .constraints import SelectionConstraints
from .mask_fields import (MASK_FORMAT_VERSION, check_constraints_meta, check_mask_dict, check_mask_dict_matches,
                          check_meta, check_scores_field, check_sensor_ids, validate_keep)
from .rules import num_to_keep

__all__ = ["SensorMask", "MASK_FORMAT_VERSION"]

IndexLike = Union[Tensor, np.ndarray, Sequence[int]]
PathLike = Union[str, "os.PathLike[str]"]


# ----------------------------------------------------------------------------------------
class SensorMask:
    r"""An immutable selection of kept sensors out of :obj:`num_nodes`.

    Example:
        >>> m = SensorMask.from_scores(torch.tensor([.1, .9, .5, .7]), sparsity=0.5)
        >>> m.keep, m.num_kept, m.sparsity
        (tensor([1, 3]), 2, 0.5)

    Tensors are stored privately and every accessor returns a copy, so a mask can
    never be changed after construction; derive new masks with the constructors,
    :meth:`compose`, ``&`` and ``|``.

    Args:
        keep (LongTensor or sequence of int): Indices of the kept sensors. They must be
            unique and in ``[0, num_nodes)``; they are stored sorted.
        num_nodes (int): Number of sensors ``N`` in the full network.
        scores (Tensor, optional): One importance score per sensor, shape ``[N]``,
            finite (stored as ``float32``). (default: :obj:`None`)
        sensor_ids (list of str, optional): The ``N`` sensors' ids, unique.
            (default: :obj:`None`)
        method (str, optional): Name of the method that produced the selection.
            (default: :obj:`"manual"`)
        meta (dict, optional): JSON-serialisable extras (hyper-parameters, seed, ...).
            The key ``"constraints"`` is reserved for
            :meth:`SelectionConstraints.to_dict() <dynst_pyg.selection.SelectionConstraints.to_dict>`
            of the rules the selection was made under; it is validated and the kept sensors
            must satisfy it. (default: :obj:`None`)

    Raises:
        TypeError, ValueError: on any invalid argument; the message names it.
    """

    __slots__ = ("_keep", "_num_nodes", "_scores", "_sensor_ids", "_method", "_meta")

    def __init__(
        self,
        keep: IndexLike,
        num_nodes: int,
        scores: Optional[Union[Tensor, Sequence[float]]] = None,
        sensor_ids: Optional[Sequence[str]] = None,
        method: str = "manual",
        meta: Optional[Dict[str, Any]] = None,
    ) -> None:
        n = check_positive_int(num_nodes, "num_nodes")
        k = validate_keep(check_index_tensor(keep, "keep"), n, "keep")
        s = None if scores is None else check_scores_field(scores, n, "scores")
        ids = None if sensor_ids is None else check_sensor_ids(sensor_ids, n, "sensor_ids")
        if not isinstance(method, str) or not method:
            raise TypeError(f"'method' must be a non-empty str, got {method!r}")
        m = check_meta(meta)
        if "constraints" in m:
            check_constraints_meta(m["constraints"], k, n)
        object.__setattr__(self, "_keep", k)
        object.__setattr__(self, "_num_nodes", n)
        object.__setattr__(self, "_scores", s)
        object.__setattr__(self, "_sensor_ids", ids)
        object.__setattr__(self, "_method", method)
        object.__setattr__(self, "_meta", m)

    # immutability ---------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SensorMask is immutable: cannot set '{name}'")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"SensorMask is immutable: cannot delete '{name}'")

    def __copy__(self) -> "SensorMask":
        return self

    def __deepcopy__(self, memo: Dict[int, Any]) -> "SensorMask":
        return self

    def __reduce__(self):  # pickling (DataLoader workers)
        return (_rebuild, (self._keep, self._num_nodes, self._scores, self._sensor_ids,
                           self._method, self._meta))

    # constructors ---------------------------------------------------------------------
    @classmethod
    def from_indices(
        cls,
        keep: IndexLike,
        num_nodes: int,
        scores: Optional[Union[Tensor, Sequence[float]]] = None,
        sensor_ids: Optional[Sequence[str]] = None,
        method: str = "manual",
        meta: Optional[Dict[str, Any]] = None,
    ) -> "SensorMask":
        r"""Builds a mask from kept indices (same arguments as the constructor)."""
        return cls(keep, num_nodes, scores=scores, sensor_ids=sensor_ids, method=method, meta=meta)

    @classmethod
    def from_bool(
        cls,
        mask: Union[Tensor, np.ndarray, Sequence[bool]],
        scores: Optional[Union[Tensor, Sequence[float]]] = None,
        sensor_ids: Optional[Sequence[str]] = None,
        method: str = "manual",
        meta: Optional[Dict[str, Any]] = None,
    ) -> "SensorMask":
        r"""Builds a mask from a boolean vector of length ``N`` (:obj:`True` = kept).

        Args:
            mask (BoolTensor): Shape ``[N]``.
            scores, sensor_ids, method, meta: As in :class:`SensorMask`.
        """
        if isinstance(mask, Tensor):
            t = mask.detach()
        elif isinstance(mask, (np.ndarray, list, tuple)):
            t = torch.as_tensor(np.asarray(mask))
        else:
            raise TypeError(f"'mask' must be a 1-D boolean tensor, got {type(mask).__name__}")
        if t.dtype != torch.bool:
            raise TypeError(f"'mask' must have dtype torch.bool, got {t.dtype}")
        if t.dim() != 1:
            raise ValueError(f"'mask' must be 1-D, got shape {tuple(t.shape)}")
        if t.numel() == 0:
            raise ValueError("'mask' is empty: it needs one entry per sensor")
        if not bool(t.any()):
            raise ValueError("'mask' is an empty selection: at least one sensor must be kept")
        keep = t.cpu().nonzero().view(-1)
        return cls(keep, t.numel(), scores=scores, sensor_ids=sensor_ids, method=method, meta=meta)

    @classmethod
    def from_scores(
        cls,
        scores: Union[Tensor, Sequence[float]],
        sparsity: Optional[float] = None,
        budget: Optional[int] = None,
        protected: Optional[IndexLike] = None,
        sensor_ids: Optional[Sequence[str]] = None,
        method: str = "scores",
        meta: Optional[Dict[str, Any]] = None,
    ) -> "SensorMask":
        r"""Keeps the sensors with the highest scores.

        Exactly one of :obj:`sparsity` and :obj:`budget` must be given. With a
        sparsity ``s`` the number of kept sensors is ``N - floor(s * N)`` (so the
        achieved sparsity never exceeds ``s``). Ties are broken deterministically in
        favour of the lower index. Protected sensors are always kept and count
        towards the budget; the remaining places go to the best other sensors.

        Args:
            scores (Tensor): Importance per sensor, shape ``[N]``, finite.
            sparsity (float, optional): Fraction of sensors to prune, in ``[0, 1)``.
                (default: :obj:`None`)
            budget (int, optional): Number of sensors to keep, in ``[1, N]``.
                (default: :obj:`None`)
            protected (LongTensor or sequence of int, optional): Sensors that are always
                kept. (default: :obj:`None`)
            sensor_ids, meta: As in :class:`SensorMask`.
            method (str, optional): (default: :obj:`"scores"`)
        """
        s = check_scores_field(scores, None, "scores")
        n = s.numel()
        if n == 0:
            raise ValueError("'scores' is empty: it needs one score per sensor")
        if (sparsity is None) == (budget is None):
            raise ValueError("give exactly one of 'sparsity' (fraction pruned) and 'budget' (number kept)")
        if sparsity is not None:
            if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.floating, np.integer)):
                raise TypeError(f"'sparsity' must be a float in [0, 1), got {type(sparsity).__name__}")
            sp = float(sparsity)
            if not (0.0 <= sp < 1.0) or math.isnan(sp):
                raise ValueError(f"'sparsity' must be in [0, 1), got {sparsity}")
            num_keep = num_to_keep(n, sparsity=sp)  # the schedules' rule, one definition
        else:
            if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
                raise TypeError(f"'budget' must be an int in [1, {n}], got {type(budget).__name__}")
            num_keep = int(budget)
            if not 1 <= num_keep <= n:
                raise ValueError(f"'budget' must be in [1, {n}] (number of sensors kept), got {budget}")
        num_keep = max(num_keep, 1)

        order_scores = s.clone()
        if protected is not None:
            prot = check_index_tensor(protected, "protected")
            if prot.numel():
                prot = validate_keep(prot, n, "protected")
                if prot.numel() > num_keep:
                    raise ValueError(f"'protected' lists {prot.numel()} sensors but only {num_keep} can be "
                                     f"kept with the requested sparsity/budget")
                order_scores[prot] = float("inf")
        # stable descending sort: equal scores keep index order -> lower index wins
        order = torch.sort(order_scores, descending=True, stable=True).indices
        keep = order[:num_keep]
        return cls(keep, n, scores=s, sensor_ids=sensor_ids, method=method, meta=meta)

    @classmethod
    def from_sensor_ids(
        cls,
        ids: Sequence[str],
        reference: Any,
        scores: Optional[Union[Tensor, Sequence[float]]] = None,
        method: str = "manual",
        meta: Optional[Dict[str, Any]] = None,
    ) -> "SensorMask":
        r"""Builds a mask from the ids of the kept sensors.

        Args:
            ids (sequence of str): Ids of the kept sensors (unique).
            reference (sequence of str or object with ``sensor_id``): All ``N`` sensor
                ids in node order, or a dataset / ``Data`` that has a ``sensor_id``
                attribute.
            scores, method, meta: As in :class:`SensorMask`.
        """
        all_ids = getattr(reference, "sensor_id", reference)
        if all_ids is None:
            raise ValueError("'reference' has no sensor ids (its 'sensor_id' is None)")
        all_ids = check_sensor_ids(all_ids, None, "reference")
        if isinstance(ids, (str, bytes)):
            raise TypeError("'ids' must be a sequence of sensor ids, got a single str")
        want = check_sensor_ids(ids, None, "ids")
        if not want:
            raise ValueError("'ids' is an empty selection: at least one sensor must be kept")
        lookup = {sid: i for i, sid in enumerate(all_ids)}
        unknown = [sid for sid in want if sid not in lookup]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise ValueError(f"'ids' holds {len(unknown)} unknown sensor id(s): {shown}")
        keep = [lookup[sid] for sid in want]
        return cls(keep, len(all_ids), scores=scores, sensor_ids=all_ids, method=method, meta=meta)

    # fields ---------------------------------------------------------------------------
    @property
    def keep(self) -> Tensor:
        """Sorted unique kept indices, LongTensor ``[K]`` (a copy)."""
        return self._keep.clone()

    @property
    def num_nodes(self) -> int:
        """Number of sensors ``N`` of the full network."""
        return self._num_nodes

    @property
    def scores(self) -> Optional[Tensor]:
        """Importance scores ``[N]`` (a copy) or :obj:`None`."""
        return None if self._scores is None else self._scores.clone()

    @property
    def sensor_ids(self) -> Optional[List[str]]:
        """All ``N`` sensor ids (a copy) or :obj:`None`."""
        return None if self._sensor_ids is None else list(self._sensor_ids)

    @property
    def method(self) -> str:
        """Name of the method that produced the mask."""
        return self._method

    @property
    def meta(self) -> Dict[str, Any]:
        """JSON-able extras (a deep copy)."""
        return copy.deepcopy(self._meta)

    @property
    def constraints(self) -> Optional[SelectionConstraints]:
        """The constraints the selection was made under (``meta["constraints"]``), or :obj:`None`."""
        c = self._meta.get("constraints")
        return None if c is None else SelectionConstraints.from_dict(c)

    @property
    def kept_cost(self) -> Optional[float]:
        """Total cost of the kept sensors when the constraints give costs, else :obj:`None`."""
        c = self.constraints
        return None if c is None else c.kept_cost(self.bool_mask)

    # derived --------------------------------------------------------------------------
    @property
    def num_kept(self) -> int:
        """Number of kept sensors ``K``."""
        return int(self._keep.numel())

    @property
    def num_pruned(self) -> int:
        """Number of pruned sensors ``N - K``."""
        return self._num_nodes - self.num_kept

    @property
    def sparsity(self) -> float:
        """Fraction of sensors pruned, ``(N - K) / N``."""
        return self.num_pruned / self._num_nodes

    @property
    def bool_mask(self) -> Tensor:
        """BoolTensor ``[N]``, :obj:`True` for kept sensors."""
        out = torch.zeros(self._num_nodes, dtype=torch.bool)
        out[self._keep] = True
        return out

    @property
    def pruned(self) -> Tensor:
        """Sorted indices of the pruned sensors, LongTensor ``[N - K]``."""
        return (~self.bool_mask).nonzero().view(-1)

    @property
    def kept_sensor_ids(self) -> Optional[List[str]]:
        """Ids of the kept sensors in kept order, or :obj:`None` without ids."""
        if self._sensor_ids is None:
            return None
        return [self._sensor_ids[i] for i in self._keep.tolist()]

    def __len__(self) -> int:
        return self.num_kept

    def __repr__(self) -> str:
        return (f"SensorMask(kept={self.num_kept}/{self._num_nodes}, sparsity={self.sparsity:.3f}, "
                f"method={self._method!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SensorMask):
            return NotImplemented
        if self._num_nodes != other._num_nodes or not torch.equal(self._keep, other._keep):
            return False
        if (self._scores is None) != (other._scores is None):
            return False
        if self._scores is not None and not torch.equal(self._scores, other._scores):
            return False
        return (self._sensor_ids == other._sensor_ids and self._method == other._method
                and self._meta == other._meta)

    def __hash__(self) -> int:
        return hash((self._num_nodes, tuple(self._keep.tolist()), self._method))

    # set operations -------------------------------------------------------------------
    def _check_compatible(self, other: Any, op: str) -> "SensorMask":
        if not isinstance(other, SensorMask):
            raise TypeError(f"'other' of {op} must be a SensorMask, got {type(other).__name__}")
        if other._num_nodes != self._num_nodes:
            raise ValueError(f"'other' of {op} has num_nodes={other._num_nodes}, "
                             f"expected {self._num_nodes}")
        if self._sensor_ids is not None and other._sensor_ids is not None \
                and self._sensor_ids != other._sensor_ids:
            raise ValueError(f"'other' of {op} was built for different sensor ids")
        return other

    def _combined(self, other: "SensorMask", keep: Tensor, method: str) -> "SensorMask":
        scores = None
        if self._scores is not None and other._scores is not None and torch.equal(self._scores, other._scores):
            scores = self._scores
        ids = self._sensor_ids if self._sensor_ids is not None else other._sensor_ids
        return SensorMask(keep, self._num_nodes, scores=scores, sensor_ids=ids, method=method,
                          meta={"operands": [self._method, other._method]})

    def intersection(self, other: "SensorMask") -> "SensorMask":
        """Sensors kept by both masks (``self & other``); raises if none remain."""
        other = self._check_compatible(other, "intersection")
        both = self.bool_mask & other.bool_mask
        if not bool(both.any()):
            raise ValueError("the intersection of the two masks is an empty selection")
        return self._combined(other, both.nonzero().view(-1), "intersection")

    def union(self, other: "SensorMask") -> "SensorMask":
        """Sensors kept by either mask (``self | other``)."""
        other = self._check_compatible(other, "union")
        either = self.bool_mask | other.bool_mask
        return self._combined(other, either.nonzero().view(-1), "union")

    def __and__(self, other: "SensorMask") -> "SensorMask":
        return self.intersection(other)

    def __or__(self, other: "SensorMask") -> "SensorMask":
        return self.union(other)

    def jaccard(self, other: "SensorMask") -> float:
        """Jaccard overlap ``|A ∩ B| / |A ∪ B|`` of the kept sets, in ``[0, 1]``."""
        other = self._check_compatible(other, "jaccard")
        a, b = self.bool_mask, other.bool_mask
        return int((a & b).sum()) / int((a | b).sum())

    def compose(self, inner: "SensorMask") -> "SensorMask":
        r"""Applies :obj:`inner`, a mask over this mask's ``K`` kept sensors, afterwards.

        The result is a mask over the original ``N`` sensors that keeps
        ``self.keep[inner.keep]``; masking data with ``self`` and then with ``inner``
        equals masking it once with the composition.
        """
        if not isinstance(inner, SensorMask):
            raise TypeError(f"'inner' must be a SensorMask, got {type(inner).__name__}")
        if inner._num_nodes != self.num_kept:
            raise ValueError(f"'inner' must be defined over this mask's {self.num_kept} kept sensors, "
                             f"got num_nodes={inner._num_nodes}")
        keep = self._keep[inner._keep]
        return SensorMask(keep, self._num_nodes, scores=None, sensor_ids=self._sensor_ids,
                          method=f"{self._method}+{inner._method}",
                          meta={"operands": [self._method, inner._method]})

    # I/O ------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict (the content of :meth:`save`)."""
        out: Dict[str, Any] = {
            "format_version": MASK_FORMAT_VERSION,
            "method": self._method,
            "num_nodes": self._num_nodes,
            "num_kept": self.num_kept,
            "sparsity": self.sparsity,
            "keep": self._keep.tolist(),
            "kept_sensor_ids": self.kept_sensor_ids,
            "sensor_ids": self.sensor_ids,
            "scores": None if self._scores is None else [float(v) for v in self._scores.tolist()],
            "meta": copy.deepcopy(self._meta),
        }
        cost = self.kept_cost
        if cost is not None:
            out["kept_cost"] = cost
        return out

    @classmethod
    def from_dict(cls, obj: Any, source: str = "mask dict") -> "SensorMask":
        """Inverse of :meth:`to_dict`; validates every field."""
        check_mask_dict(obj, source)
        try:
            keep = obj["keep"]
            if not isinstance(keep, list):
                raise TypeError(f"'keep' must be a list of int, got {type(keep).__name__}")
            mask = cls(keep, obj["num_nodes"], scores=obj.get("scores"), sensor_ids=obj.get("sensor_ids"),
                       method=obj["method"], meta=obj.get("meta"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: invalid content: {exc}") from None
        check_mask_dict_matches(obj, mask, source)
        return mask

    def save(self, path: PathLike) -> None:
        """Writes the mask as human-readable JSON (kept sensor ids listed)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        with open(os.fspath(path), "w", encoding="utf-8") as fh:
            fh.write(text + "\n")

    @classmethod
    def load(cls, path: PathLike) -> "SensorMask":
        """Reads a mask written by :meth:`save`, validating every field.

        Raises:
            FileNotFoundError: if :obj:`path` does not exist.
            ValueError: if the file is not valid JSON, has another format version or
                inconsistent content; the message names the file and the field.
        """
        p = os.fspath(path)
        if not os.path.isfile(p):
            raise FileNotFoundError(f"mask file not found: {p!r}")
        try:
            with open(p, "r", encoding="utf-8") as fh:
                obj = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"mask file {p!r} is corrupt (not valid JSON): {exc}") from None
        return cls.from_dict(obj, source=f"mask file {p!r}")


def _rebuild(keep, num_nodes, scores, sensor_ids, method, meta) -> SensorMask:
    return SensorMask(keep, num_nodes, scores=scores, sensor_ids=sensor_ids, method=method, meta=meta)
