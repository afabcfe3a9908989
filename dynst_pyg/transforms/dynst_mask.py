r"""The :class:`DynSTMask` transform: pruned sensors leave the graph.

.. code-block:: python

    import torch_geometric.transforms as T
    from dynst_pyg import DynSTMask, SensorMask

    mask = SensorMask.load("mask.json")
    transform = T.Compose([DynSTMask(mask, reconnect="kron")])
    small = transform(data)          # Data with K nodes, small.n_id = original ids
"""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._checks import check_choice, check_index_tensor, check_positive_int
from ..selection.mask import SensorMask
from ..graph.subgraph import RECONNECT_MODES, induced_subgraph

__all__ = ["DynSTMask"]

MaskLike = Union[SensorMask, Tensor, np.ndarray, Sequence[int], str, "os.PathLike[str]"]

#: Attributes of a window that must be node-first (``[N, ...]``).
NODE_FIRST_KEYS = ("x", "y", "pos")


class _EdgeCache(NamedTuple):
    """The last edge computation, keyed by the input tensors themselves (no copies)."""

    mask: SensorMask
    relabel_nodes: bool
    with_mask: bool
    edge_index: Tensor
    edge_weight: Optional[Tensor]
    versions: Tuple[int, ...]
    result: Tuple[Tensor, Optional[Tensor], Optional[Tensor]]


def _version(t: Optional[Tensor]) -> int:
    return -1 if t is None else int(t._version)


def _same_values(held: Optional[Tensor], given: Optional[Tensor]) -> bool:
    if held is None or given is None:
        return held is None and given is None
    return held is given or (held.shape == given.shape and held.dtype == given.dtype
                             and held.device == given.device and torch.equal(held, given))

@functional_transform("dynst_mask")
class DynSTMask(BaseTransform):
    r"""Removes pruned sensors from a graph (functional name: :obj:`dynst_mask`).

    Keeps the sensors selected by a :class:`~dynst_pyg.selection.SensorMask` and builds the
    induced subgraph on them, optionally reconnecting kept sensors that were linked
    only through pruned ones (see :func:`~dynst_pyg.graph.induced_subgraph`).

    Applies to

    * a node-first :class:`~torch_geometric.data.Data` (``x [N, T, F]``,
      ``y [N, T', F']``, ``pos [N, 2]``): after the optional reconnection, PyG's
      :meth:`~torch_geometric.data.Data.subgraph` keeps the kept nodes, so every
      attribute PyG sees as node-level (first axis of length ``N``: ``x``, ``y``,
      ``pos``, a ``sensor_id`` list, per-node statistics, ...) is sliced on that axis
      and every edge-level one follows the kept edges; store a graph-level vector that
      happens to have ``N`` entries as ``[1, N]``, as PyG expects. ``n_id`` (LongTensor
      ``[K]``) records the original index of every kept node; an existing ``n_id`` is
      sliced too, so ``n_id`` always refers to the nodes before the first mask. With
      ``reconnect="khop"``/``"kron"`` the weight is written to ``edge_weight`` (or to a
      1-D ``edge_attr`` when the data has no ``edge_weight``); other edge features
      cannot be defined for new edges and raise.
    * a PyTorch Geometric Temporal ``StaticGraphTemporalSignal``: returns a new
      signal over the kept sensors (every snapshot also carries ``n_id``).
    * a :class:`~dynst_pyg.data.SpatioTemporalDataset`: returns a new dataset
      whose ``series`` is ``series[:, keep]`` and ``meta["n_id"]`` the kept indices.

    The input is never modified.

    Args:
        mask (SensorMask, LongTensor, BoolTensor or str): The kept sensors, as a mask,
            kept indices, a boolean vector of length ``N``, or the path of a mask file
            written by :meth:`SensorMask.save`.
        reconnect (str, optional): ``"none"``, ``"khop"`` or ``"kron"``.
            (default: :obj:`"none"`)
        k (int, optional): Largest hop count for ``reconnect="khop"``. (default: :obj:`2`)
        tol (float, optional): Sparsification threshold for ``reconnect="kron"``.
            (default: :obj:`1e-8`)
        num_nodes (int, optional): ``N`` when :obj:`mask` is an index tensor; without it
            the node count of each input is used. (default: :obj:`None`)
    """

    def __init__(
        self,
        mask: MaskLike,
        reconnect: str = "none",
        k: int = 2,
        tol: float = 1e-8,
        num_nodes: Optional[int] = None,
    ) -> None:
        check_choice(reconnect, "reconnect", RECONNECT_MODES)
        check_positive_int(k, "k")
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            raise ValueError(f"'tol' must be a non-negative float, got {tol!r}")
        self.reconnect = reconnect
        self.k = int(k)
        self.tol = float(tol)
        self._mask: Optional[SensorMask] = None
        self._index: Optional[Tensor] = None
        if isinstance(mask, SensorMask):
            if num_nodes is not None and num_nodes != mask.num_nodes:
                raise ValueError(f"'num_nodes'={num_nodes} disagrees with the mask's num_nodes={mask.num_nodes}")
            self._mask = mask
        elif isinstance(mask, (str, os.PathLike)):
            self._mask = SensorMask.load(mask)
        elif isinstance(mask, Tensor) and mask.dtype == torch.bool:
            self._mask = SensorMask.from_bool(mask)
        elif isinstance(mask, np.ndarray) and mask.dtype == np.bool_:
            self._mask = SensorMask.from_bool(torch.from_numpy(mask.copy()))
        else:
            index = check_index_tensor(mask, "mask")
            if num_nodes is not None:
                self._mask = SensorMask.from_indices(index, num_nodes)
            else:
                if index.numel() == 0:
                    raise ValueError("'mask' is an empty selection: at least one sensor must be kept")
                if int(index.min()) < 0:
                    raise ValueError(f"'mask' holds negative index {int(index.min())}")
                s = torch.sort(index).values
                if s.numel() > 1 and bool((s[1:] == s[:-1]).any()):
                    raise ValueError("'mask' holds duplicate indices: kept indices must be unique")
                self._index = s
        self._cache: Optional[_EdgeCache] = None

    # ------------------------------------------------------------------------------
    @property
    def mask(self) -> Optional[SensorMask]:
        """The :class:`SensorMask`, or :obj:`None` for bare indices without ``num_nodes``."""
        return self._mask

    def _mask_for(self, num_nodes: int, what: str) -> SensorMask:
        if self._mask is not None:
            if self._mask.num_nodes != num_nodes:
                raise ValueError(f"DynSTMask: the mask covers {self._mask.num_nodes} sensors but the {what} has "
                                 f"{num_nodes} nodes")
            return self._mask
        assert self._index is not None
        if int(self._index.max()) >= num_nodes:
            raise ValueError(f"DynSTMask: the mask keeps index {int(self._index.max())} but the {what} has only "
                             f"{num_nodes} nodes")
        return SensorMask.from_indices(self._index, num_nodes)

    @staticmethod
    def _check_ids(mask: SensorMask, ids: Any, what: str) -> None:
        mids = mask.sensor_ids
        if mids is None or not isinstance(ids, (list, tuple)) or len(ids) != len(mids):
            return
        if [str(v) for v in ids] != mids:
            raise ValueError(f"DynSTMask: the mask was built for other sensor ids than the {what}'s "
                             f"'sensor_id' (first mask ids {mids[:3]}, data ids {list(ids[:3])})")

    def _edges(self, edge_index: Tensor, edge_weight: Optional[Tensor], mask: SensorMask, with_mask: bool,
               relabel_nodes: bool = True) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """Subgraph edges, weights and, for 'none' with ``with_mask``, the edge mask.

        The last result is reused while the same (or equal, unmodified) edge tensors
        come in with the same mask; the cache holds the tensors it was given, no copies,
        and is dropped when either the inputs or the results were modified in place.
        """
        c = self._cache
        if c is not None and c.mask == mask and c.relabel_nodes == relabel_nodes and c.with_mask == with_mask \
                and c.versions == tuple(_version(t) for t in (c.edge_index, c.edge_weight) + c.result) \
                and _same_values(c.edge_index, edge_index) and _same_values(c.edge_weight, edge_weight):
            return c.result
        if self.reconnect == "none":
            ei, ew, em = induced_subgraph(mask, edge_index, edge_weight, num_nodes=mask.num_nodes,
                                          relabel_nodes=relabel_nodes, return_edge_mask=True)
            result = (ei, ew, em if with_mask else None)
        else:
            ei, ew = induced_subgraph(mask, edge_index, edge_weight, num_nodes=mask.num_nodes,
                                      reconnect=self.reconnect, k=self.k, tol=self.tol, relabel_nodes=relabel_nodes)
            result = (ei, ew, None)
        self._cache = _EdgeCache(mask, relabel_nodes, with_mask, edge_index, edge_weight,
                                 tuple(_version(t) for t in (edge_index, edge_weight) + result), result)
        return result

    # ------------------------------------------------------------------------------
    def forward(self, data: Any) -> Any:
        if isinstance(data, HeteroData):
            raise TypeError("DynSTMask applies to homogeneous Data, not HeteroData")
        if isinstance(data, Data):
            return self._forward_data(data)
        from ..data import SpatioTemporalDataset

        if isinstance(data, SpatioTemporalDataset):
            return self._forward_dataset(data)
        if type(data).__name__ == "StaticGraphTemporalSignal":
            return self._forward_signal(data)
        raise TypeError("DynSTMask expects a torch_geometric Data, a SpatioTemporalDataset or a "
                        f"StaticGraphTemporalSignal, got {type(data).__name__}")

    def _forward_data(self, data: Data) -> Data:
        n = data.num_nodes
        if n is None:
            raise ValueError("DynSTMask: cannot determine the number of nodes of 'data' (set data.num_nodes)")
        mask = self._mask_for(int(n), "data")
        if "sensor_id" in data:
            self._check_ids(mask, data.sensor_id, "data")
        for key in NODE_FIRST_KEYS:
            value = data.get(key)
            if isinstance(value, (Tensor, np.ndarray)) and (value.ndim == 0 or value.shape[0] != n):
                raise ValueError(f"DynSTMask: data.{key} must be node-first with {n} entries on dim 0, "
                                 f"got shape {tuple(value.shape)}")
        edge_index = data.get("edge_index")
        if self.reconnect != "none" and isinstance(edge_index, Tensor):
            data = self._reconnected(data, edge_index, mask)
        ref = edge_index if isinstance(edge_index, Tensor) else data.get("x")
        keep = mask.keep.to(ref.device) if isinstance(ref, Tensor) else mask.keep
        out = data.subgraph(keep)
        if "n_id" not in data:
            out.n_id = keep
        out.num_nodes = mask.num_kept
        return out

    def _reconnected(self, data: Data, edge_index: Tensor, mask: SensorMask) -> Data:
        """A shallow copy of ``data`` whose edges are the reconnected kept-kept edges (original ids)."""
        weight_key: Optional[str] = None
        if "edge_weight" in data:
            weight_key = "edge_weight"
        elif isinstance(data.get("edge_attr"), Tensor) and data.edge_attr.dim() == 1:
            weight_key = "edge_attr"
        extra = [key for key in data.edge_attrs() if key not in ("edge_index", weight_key)]
        if extra:
            raise ValueError(f"DynSTMask: reconnect={self.reconnect!r} creates new edges, which have no value "
                             f"for the edge attribute(s) {extra}; use reconnect='none' or remove them")
        weight = data[weight_key] if weight_key is not None else None
        ei, ew, _ = self._edges(edge_index, weight, mask, with_mask=False, relabel_nodes=False)
        out = copy.copy(data)
        out.edge_index = ei
        out[weight_key or "edge_weight"] = ew
        return out

    def _forward_dataset(self, ds: Any) -> Any:
        mask = self._mask_for(ds.num_nodes, "dataset")
        self._check_ids(mask, ds.sensor_id, "dataset")
        ei, ew, _ = self._edges(ds.edge_index, ds.edge_weight, mask, with_mask=False)
        # series, observation mask, pos, sensor_id and meta["n_id"] are sliced alike by the dataset
        return ds.select_nodes(mask.keep, edge_index=ei, edge_weight=ew)

    def _forward_signal(self, signal: Any) -> Any:
        from torch_geometric_temporal.signal import StaticGraphTemporalSignal

        feats = list(signal.features)
        first = next((f for f in feats if f is not None), None)
        if first is not None:
            n = int(np.shape(first)[0])
        elif self._mask is not None:
            n = self._mask.num_nodes
        else:
            raise ValueError("DynSTMask: the signal has no features to infer the number of nodes from")
        mask = self._mask_for(n, "signal")
        keep = mask.keep
        keep_np = keep.numpy()

        def take(a: Any, name: str) -> Any:
            if a is None:
                return None
            arr = np.asarray(a)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"DynSTMask: every entry of signal.{name} must be node-first with {n} rows, "
                                 f"got shape {arr.shape}")
            return arr[keep_np]

        features = [take(f, "features") for f in feats]
        targets = [take(t, "targets") for t in signal.targets]
        extra: Dict[str, List[Any]] = {}
        keys = list(getattr(signal, "additional_feature_keys", []))
        for key in keys:
            extra[key] = [take(a, key) for a in getattr(signal, key)]
        if "n_id" not in extra:
            extra["n_id"] = [keep_np.copy() for _ in range(len(features))]

        if signal.edge_index is None:
            ei_np, ew_np = None, None
        else:
            ei_t = torch.as_tensor(np.asarray(signal.edge_index)).long()
            ew_t = None if signal.edge_weight is None else torch.as_tensor(np.asarray(signal.edge_weight))
            ei, ew, _ = self._edges(ei_t, ew_t, mask, with_mask=False)
            ei_np = ei.numpy().astype(np.int64)
            ew_np = None if ew is None else ew.numpy().astype(np.asarray(signal.edge_weight).dtype
                                                             if signal.edge_weight is not None else np.float32)
        return StaticGraphTemporalSignal(ei_np, ew_np, features, targets, **extra)

    def __repr__(self) -> str:
        if self._mask is not None:
            kept = f"{self._mask.num_kept}/{self._mask.num_nodes}"
        else:
            kept = f"{self._index.numel()}/?"
        extra = f", k={self.k}" if self.reconnect == "khop" else ""
        return f"{self.__class__.__name__}(kept={kept}, reconnect={self.reconnect!r}{extra})"
