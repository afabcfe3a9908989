r"""Node-subset operators on tensors and graphs: the induced subgraph, and taking kept nodes out and back.

* :func:`induced_subgraph`: the subgraph on the kept nodes, relabelled to
  ``0..K-1``, optionally *reconnecting* kept nodes that were linked only through
  pruned nodes (``reconnect="none" | "khop" | "kron"``, see
  :mod:`~dynst_pyg.graph.reconnect`).
* :func:`select` / :func:`scatter_kept`: take the kept nodes out of a batched tensor and
  write results on the kept nodes back into a tensor over all ``N`` nodes.

The graph functions follow :func:`torch_geometric.utils.subgraph`: the kept set
``subset`` comes first, then ``edge_index`` and the edge weights or features, and the
rest are keyword-only. ``subset`` may be given everywhere as a
:class:`~dynst_pyg.selection.SensorMask`, a LongTensor of indices or a BoolTensor of length
``N``. With ``relabel_nodes=True`` (the default here) node ``subset[i]`` of the original
graph becomes node ``i`` of the result; a :class:`SensorMask` and a boolean mask are
sorted, an index tensor is used in the order given by ``"none"`` and must be sorted for
reconnection. With ``relabel_nodes=False`` every function returns original node ids.
"""
from __future__ import annotations

from typing import Literal, Optional, Tuple, Union, overload

import torch
from torch import Tensor

from .._checks import check_choice, check_graph, check_positive_int
from ..selection.mask import SensorMask
from ._subset import KeepLike, _check_nonneg_weights, _resolve_keep
from .reconnect import khop_reconnect, kron_reduction

__all__ = ["induced_subgraph", "select", "scatter_kept", "RECONNECT_MODES"]

#: Valid values of the ``reconnect`` argument.
RECONNECT_MODES = ("none", "khop", "kron")


def select(x: Tensor, subset: KeepLike, dim: int = -2) -> Tensor:
    r"""Takes the kept nodes out of :obj:`x` along :obj:`dim`.

    Args:
        x (Tensor): Any tensor with the node axis at :obj:`dim`, e.g. ``[B, T, N, F]``.
        subset (SensorMask, LongTensor or BoolTensor): The kept nodes.
        dim (int, optional): The node axis. (default: :obj:`-2`)

    Returns:
        Tensor: a new tensor with ``K`` entries along :obj:`dim`.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"'x' must be a tensor, got {type(x).__name__}")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"'dim'={dim} is out of range for 'x' with {x.dim()} dimension(s)")
    n = x.size(dim)
    idx, _ = _resolve_keep(subset, n if not isinstance(subset, SensorMask) else None, "subset", check_unique=False)
    if isinstance(subset, SensorMask) and subset.num_nodes != n:
        raise ValueError(f"'subset' is a SensorMask over {subset.num_nodes} nodes but 'x' has {n} entries "
                         f"along dim={dim}")
    return x.index_select(dim, idx.to(x.device))


def scatter_kept(y_kept: Tensor, subset: KeepLike, num_nodes: Optional[int] = None, dim: int = -2,
         fill: float = 0.0) -> Tensor:
    r"""Writes values on the kept nodes back into a tensor over all ``N`` nodes.

    Entry ``i`` of :obj:`y_kept` along :obj:`dim` goes to node ``subset[i]``; all other
    nodes hold :obj:`fill`. ``scatter_kept(select(x, subset), subset, N)`` equals :obj:`x` on kept
    nodes and :obj:`fill` elsewhere.

    Args:
        y_kept (Tensor): Values with ``K`` entries along :obj:`dim`.
        subset (SensorMask, LongTensor or BoolTensor): The kept nodes (unique).
        num_nodes (int, optional): ``N``; taken from :obj:`subset` when it is a
            :class:`SensorMask` or a boolean mask. (default: :obj:`None`)
        dim (int, optional): The node axis. (default: :obj:`-2`)
        fill (float, optional): Value of the nodes that are not kept. (default: :obj:`0.0`)
    """
    if not isinstance(y_kept, Tensor):
        raise TypeError(f"'y_kept' must be a tensor, got {type(y_kept).__name__}")
    if not -y_kept.dim() <= dim < y_kept.dim():
        raise ValueError(f"'dim'={dim} is out of range for 'y_kept' with {y_kept.dim()} dimension(s)")
    idx, n = _resolve_keep(subset, num_nodes, "subset")
    if y_kept.size(dim) != idx.numel():
        raise ValueError(f"'y_kept' has {y_kept.size(dim)} entries along dim={dim} but 'subset' selects "
                         f"{idx.numel()} nodes")
    shape = list(y_kept.shape)
    shape[dim] = n
    out = torch.full(shape, fill, dtype=y_kept.dtype, device=y_kept.device)
    return out.index_copy(dim, idx.to(y_kept.device), y_kept)



@overload
def induced_subgraph(subset: KeepLike, edge_index: Tensor, edge_attr: Optional[Tensor] = ..., *,
                     num_nodes: Optional[int] = ..., reconnect: str = ..., k: int = ..., tol: float = ...,
                     relabel_nodes: bool = ..., return_edge_mask: Literal[False] = ...
                     ) -> Tuple[Tensor, Optional[Tensor]]: ...


@overload
def induced_subgraph(subset: KeepLike, edge_index: Tensor, edge_attr: Optional[Tensor] = ..., *,
                     num_nodes: Optional[int] = ..., reconnect: str = ..., k: int = ..., tol: float = ...,
                     relabel_nodes: bool = ..., return_edge_mask: Literal[True]
                     ) -> Tuple[Tensor, Optional[Tensor], Tensor]: ...


def induced_subgraph(
    subset: KeepLike,
    edge_index: Tensor,
    edge_attr: Optional[Tensor] = None,
    *,
    num_nodes: Optional[int] = None,
    reconnect: str = "none",
    k: int = 2,
    tol: float = 1e-8,
    relabel_nodes: bool = True,
    return_edge_mask: bool = False,
) -> Union[Tuple[Tensor, Optional[Tensor]], Tuple[Tensor, Optional[Tensor], Tensor]]:
    r"""The subgraph on the kept nodes, like :func:`torch_geometric.utils.subgraph`, with reconnection.

    * ``reconnect="none"``: the plain induced subgraph (computed by
      :func:`torch_geometric.utils.subgraph`); edges keep their input order and
      :obj:`edge_attr` (weights ``[E]`` or features ``[E, *]``) stays aligned.
    * ``reconnect="khop"``: the induced subgraph plus, appended after it, an edge
      ``u -> w`` for every pair of kept nodes joined by a directed walk of at most
      :obj:`k` hops whose inner nodes are all pruned, weighted by the largest product
      of edge weights along such a walk (see :func:`khop_reconnect`).
    * ``reconnect="kron"``: the Kron reduction of the symmetrised graph
      (see :func:`kron_reduction`); the result is symmetric.

    With reconnection, :obj:`edge_attr` must be non-negative edge weights ``[E]``
    (ones if :obj:`None`): new edges have a weight but no other features.

    Args:
        subset (SensorMask, LongTensor or BoolTensor): The kept nodes.
        edge_index (LongTensor): ``[2, E]``.
        edge_attr (Tensor, optional): Edge weights ``[E]`` or, with
            ``reconnect="none"``, any edge features ``[E, *]``. (default: :obj:`None`)
        num_nodes (int, optional): ``N``; required when :obj:`subset` is an index
            tensor. (default: :obj:`None`)
        reconnect (str, optional): ``"none"``, ``"khop"`` or ``"kron"``.
            (default: :obj:`"none"`)
        k (int, optional): Largest hop count for ``"khop"``. (default: :obj:`2`)
        tol (float, optional): Sparsification threshold for ``"kron"``.
            (default: :obj:`1e-8`)
        relabel_nodes (bool, optional): Number node ``subset[i]`` as ``i``;
            :obj:`False` keeps the original ids. Unlike PyG's default, :obj:`True`,
            because the result is meant to be the graph of the ``K`` kept nodes.
            (default: :obj:`True`)
        return_edge_mask (bool, optional): Also return the ``[E]`` boolean mask of the
            input edges that were kept; only with ``reconnect="none"``.
            (default: :obj:`False`)

    Returns:
        ``(edge_index, edge_attr)``, or ``(edge_index, edge_attr, edge_mask)`` with
        :obj:`return_edge_mask`. The returned :obj:`edge_attr` is :obj:`None` only for
        ``reconnect="none"`` with :obj:`edge_attr=None`.
    """
    from torch_geometric.utils import subgraph as pyg_subgraph

    check_choice(reconnect, "reconnect", RECONNECT_MODES)
    idx, n = _resolve_keep(subset, num_nodes)
    check_graph(edge_index, None, n)
    if edge_attr is not None:
        if not isinstance(edge_attr, Tensor) or edge_attr.dim() == 0 or edge_attr.size(0) != edge_index.size(1):
            got = tuple(edge_attr.shape) if isinstance(edge_attr, Tensor) else type(edge_attr).__name__
            raise ValueError(f"'edge_attr' must be a tensor with E={edge_index.size(1)} rows, got {got}")
        if reconnect != "none" and edge_attr.dim() != 1:
            raise ValueError(f"'edge_attr' must be 1-D edge weights [E] for reconnect={reconnect!r}, got shape "
                             f"{tuple(edge_attr.shape)} (new edges have a weight but no other features)")
    k = check_positive_int(k, "k")
    if reconnect != "none":
        if return_edge_mask:
            raise ValueError(f"'return_edge_mask' needs reconnect='none' (reconnect={reconnect!r} creates edges "
                             f"that are not in the input)")
        if isinstance(subset, Tensor) and subset.dtype != torch.bool and idx.numel() > 1 \
                and not bool((idx[1:] > idx[:-1]).all()):
            raise ValueError("'subset' must be sorted for reconnect='khop'/'kron' "
                             "(pass a SensorMask or a boolean mask)")

    device = edge_index.device
    if reconnect == "kron":
        return kron_reduction(idx, edge_index, edge_attr, num_nodes=n, tol=tol, relabel_nodes=relabel_nodes)

    sub_idx = idx.to(device)
    if reconnect == "none":
        ei, ea, emask = pyg_subgraph(sub_idx, edge_index, edge_attr=edge_attr, relabel_nodes=relabel_nodes,
                                     num_nodes=n, return_edge_mask=True)
        return (ei, ea, emask) if return_edge_mask else (ei, ea)

    # khop: the induced subgraph, then the bridging edges
    _check_nonneg_weights(edge_attr, "khop")
    w_full = edge_attr if edge_attr is not None else torch.ones(edge_index.size(1), device=device)
    ei, ew = pyg_subgraph(sub_idx, edge_index, edge_attr=w_full, relabel_nodes=relabel_nodes, num_nodes=n)
    add_ei, add_w = khop_reconnect(idx, edge_index, w_full, num_nodes=n, k=k, relabel_nodes=relabel_nodes)
    return torch.cat([ei, add_ei], dim=1), torch.cat([ew, add_w.to(ew.dtype)])
