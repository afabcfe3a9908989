r"""PyG windows in, dense windows out: the one conversion every backbone uses.

A window as a PyG :class:`~torch_geometric.data.Data` is *node-first*: ``x [K, T, F]``,
``y [K, T', F']``, the graph ``edge_index``/``edge_weight`` on its ``K`` nodes and
``n_id [K]``, the original index of every node (written by
:class:`~dynst_pyg.transforms.DynSTMask`). PyG's
:class:`~torch_geometric.loader.DataLoader` stacks ``B`` such windows into a
:class:`~torch_geometric.data.Batch` with ``x [B*K, T, F]``, edges offset per window,
``n_id [B*K]`` and ``batch [B*K]``.

The backbones compute on dense windows ``x [B, T, K, F]`` with *one* graph shared by
every window, so :func:`dense_from_batch` checks that all windows of the batch hold the
same nodes (``n_id``) and the same graph, and returns ``x [B, T, K, F]``, the graph of
one window and ``node_index = n_id`` of one window. :func:`accepts_batch` puts this
conversion in front of a model's ``forward`` and turns the dense forecast
``[B, T', K, F']`` back into the node-first layout of ``batch.y``, ``[B*K, T', F']``:

.. code-block:: python

    loader = DataLoader([DynSTMask(mask)(w) for w in windows], batch_size=64)
    for batch in loader:
        # x is normalised, y holds raw readings (NaN where missing): compare on the raw scale
        pred = scaler.inverse_transform(model(batch))
        loss = masked_mae(pred, batch.y)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, TypeVar

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

__all__ = ["DenseBatch", "dense_from_batch", "window_layout", "to_dense_windows", "to_node_first",
           "accepts_batch"]

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


class DenseBatch(NamedTuple):
    """Dense form of a batch of windows (see :func:`dense_from_batch`)."""

    #: ``[B, T, K, F]`` inputs.
    x: Tensor
    #: ``[2, E]`` graph of one window, node ids ``0..K-1``.
    edge_index: Tensor
    #: ``[E]`` edge weights of one window, or :obj:`None`.
    edge_weight: Optional[Tensor]
    #: ``[K]`` original node ids (``n_id`` of one window), or :obj:`None` without ``n_id``.
    node_index: Optional[Tensor]


def window_layout(batch: Data) -> Tuple[int, int, Optional[Tensor]]:
    """Number of windows ``B``, nodes per window ``K`` and their shared ``n_id``.

    Args:
        batch (Data or Batch): one window, or windows batched by PyG's ``DataLoader``.

    Returns:
        (int, int, Tensor or None): ``B``, ``K`` and ``n_id`` of one window (``[K]``;
        :obj:`None` when the windows carry no ``n_id``).

    Raises:
        ValueError: if the windows hold different numbers of nodes or different ``n_id``.
    """
    if not isinstance(batch, Data):
        raise TypeError(f"expected a torch_geometric Data or Batch of windows, got {type(batch).__name__}")
    n = batch.num_nodes
    if n is None or n < 1:
        raise ValueError("the batch has no nodes: set x (node-first [K, T, F]) or num_nodes")
    if isinstance(batch, Batch):
        b = int(batch.num_graphs)
        sizes = (batch.ptr[1:] - batch.ptr[:-1]).tolist()
        if len(set(sizes)) != 1:
            raise ValueError(f"the windows of the batch hold different numbers of nodes {sorted(set(sizes))}; "
                             "every window must keep the same sensors (apply one DynSTMask to all of them)")
        k = int(sizes[0])
    else:
        b, k = 1, int(n)
    n_id = batch.get("n_id")
    if n_id is None:
        return b, k, None
    if not isinstance(n_id, Tensor) or n_id.dim() != 1 or n_id.numel() != b * k:
        got = tuple(n_id.shape) if isinstance(n_id, Tensor) else type(n_id).__name__
        raise ValueError(f"batch.n_id must be a LongTensor [B*K] = [{b * k}], got {got}")
    rows = n_id.view(b, k)
    if b > 1 and not bool((rows == rows[:1]).all()):
        bad = int((rows != rows[:1]).any(1).nonzero()[0])
        raise ValueError(f"window {bad} of the batch keeps other sensors (n_id) than window 0; "
                         "every window must keep the same sensors (apply one DynSTMask to all of them)")
    return b, k, rows[0]


def to_dense_windows(value: Tensor, num_windows: int) -> Tensor:
    """Node-first ``[B*K, T, F]`` to dense ``[B, T, K, F]`` (a contiguous copy).

    Args:
        value (Tensor): ``[B*K, T, F]``, windows stacked on dim 0 (``[K, T, F]`` for ``B = 1``).
        num_windows (int): ``B``.
    """
    if not isinstance(value, Tensor) or value.dim() != 3:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"expected a node-first [B*K, T, F] tensor, got {got}")
    if num_windows < 1 or value.size(0) % num_windows:
        raise ValueError(f"a node-first tensor with {value.size(0)} rows cannot hold {num_windows} windows "
                         "of equal size")
    k = value.size(0) // num_windows
    return value.view(num_windows, k, value.size(1), value.size(2)).transpose(1, 2).contiguous()


def to_node_first(value: Tensor) -> Tensor:
    """Dense ``[B, T, K, F]`` to node-first ``[B*K, T, F]`` (the inverse of :func:`to_dense_windows`)."""
    if not isinstance(value, Tensor) or value.dim() != 4:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"expected a dense [B, T, K, F] tensor, got {got}")
    b, t, k, f = value.shape
    return value.transpose(1, 2).reshape(b * k, t, f)


def _edge_weight_of(batch: Data) -> Optional[Tensor]:
    if batch.get("edge_weight") is not None:
        return batch.edge_weight
    attr = batch.get("edge_attr")
    if isinstance(attr, Tensor) and attr.dim() == 1:  # PyG-Temporal snapshots keep weights here
        return attr
    return None


def dense_from_batch(batch: Data) -> DenseBatch:
    r"""Turns a PyG window (or a batch of windows) into the dense form the backbones take.

    Args:
        batch (Data or Batch): node-first windows: ``x [B*K, T, F]``, ``edge_index``,
            optional ``edge_weight`` (or a 1-D ``edge_attr``) and ``n_id``. A single
            :class:`~torch_geometric.data.Data` is one window (``B = 1``).

    Returns:
        DenseBatch: ``(x [B, T, K, F], edge_index [2, E], edge_weight [E] or None,
        node_index [K] or None)``, the graph and ``node_index`` being those of one window.

    Raises:
        ValueError: naming what differs when the windows do not share their nodes
            (``n_id``) or their graph, or when ``x`` is not node-first ``[B*K, T, F]``.
    """
    b, k, node_index = window_layout(batch)
    x = batch.get("x")
    if not isinstance(x, Tensor) or x.dim() != 3 or x.size(0) != b * k:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"batch.x must be node-first [B*K, T, F] with B*K = {b * k}, got {got}")
    edge_index = batch.get("edge_index")
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"batch.edge_index must be a LongTensor [2, E], got {got}")
    edge_weight = _edge_weight_of(batch)
    if edge_weight is not None and (edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1)):
        raise ValueError(f"batch.edge_weight must have shape [E] = [{edge_index.size(1)}], "
                         f"got {tuple(edge_weight.shape)}")
    if b > 1:
        edge_index, edge_weight = _shared_graph(edge_index, edge_weight, b, k)
    return DenseBatch(to_dense_windows(x, b), edge_index, edge_weight, node_index)


def _shared_graph(edge_index: Tensor, edge_weight: Optional[Tensor], b: int,
                  k: int) -> Tuple[Tensor, Optional[Tensor]]:
    """The graph of window 0 after checking that every window of the batch has the same one."""
    e = edge_index.size(1)
    msg = "every window must have the same graph (apply one DynSTMask to windows of one dataset)"
    if e % b:
        raise ValueError(f"the batch has {e} edges, which {b} windows cannot share equally; {msg}")
    e0 = e // b
    owner = torch.div(edge_index[0], k, rounding_mode="floor")
    expected = torch.arange(b, device=edge_index.device).repeat_interleave(e0)
    if not torch.equal(owner, expected):
        raise ValueError(f"the windows of the batch have different numbers of edges; {msg}")
    local = edge_index.view(2, b, e0) - (torch.arange(b, device=edge_index.device) * k).view(1, b, 1)
    if not bool((local == local[:, :1]).all()):
        bad = int((local != local[:, :1]).any(0).any(1).nonzero()[0])
        raise ValueError(f"window {bad} of the batch has other edges than window 0; {msg}")
    if edge_weight is None:
        return local[:, 0].contiguous(), None
    w = edge_weight.view(b, e0)
    if not bool((w == w[:1]).all()):
        bad = int((w != w[:1]).any(1).nonzero()[0])
        raise ValueError(f"window {bad} of the batch has other edge weights than window 0; {msg}")
    return local[:, 0].contiguous(), w[0]


def accepts_batch(node_first: Sequence[str] = ()) -> Callable[[_Fn], _Fn]:
    r"""Lets ``forward(x, edge_index, edge_weight=None, node_index=None, ...)`` take PyG windows.

    The decorated ``forward`` accepts, in place of the dense arguments, a single
    :class:`~torch_geometric.data.Data` or :class:`~torch_geometric.data.Batch` of
    node-first windows (see :func:`dense_from_batch`) and then returns its forecast
    node-first, ``[B*K, T_out, F_out]``, aligned with ``batch.y``. Dense calls are passed
    through unchanged.

    Args:
        node_first (sequence of str, optional): keyword arguments of ``forward`` that
            hold node-first ``[B*K, T, F]`` tensors when a batch is given (e.g. DCRNN's
            ``targets``); they are converted to ``[B, T, K, F]`` too (default: none).
    """
    names = tuple(node_first)

    def decorate(forward: _Fn) -> _Fn:
        @functools.wraps(forward)
        def wrapper(self: Any, x: Any, edge_index: Optional[Tensor] = None, edge_weight: Optional[Tensor] = None,
                    node_index: Optional[Tensor] = None, **kwargs: Any) -> Tensor:
            if not isinstance(x, Data):
                if edge_index is None:
                    raise TypeError(f"{type(self).__name__}: edge_index is required with a dense x "
                                    "(or pass a PyG Data/Batch of windows as the only argument)")
                return forward(self, x, edge_index, edge_weight, node_index, **kwargs)
            if edge_index is not None or edge_weight is not None or node_index is not None:
                raise TypeError(f"{type(self).__name__}: got a PyG {type(x).__name__} and edge_index/"
                                "edge_weight/node_index; the batch carries its graph and n_id, pass it alone")
            dense = dense_from_batch(x)
            b = dense.x.size(0)
            for name in names:
                if kwargs.get(name) is not None:
                    kwargs[name] = to_dense_windows(kwargs[name], b)
            out = forward(self, dense.x, dense.edge_index, dense.edge_weight, dense.node_index, **kwargs)
            return to_node_first(out)

        return wrapper  # type: ignore[return-value]

    return decorate
