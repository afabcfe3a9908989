"""Graph supports (transition matrices) for diffusion-style graph convolutions.

Conventions (shared by :class:`~dynst_pyg.models.GraphWaveNet` and
:class:`~dynst_pyg.models.DCRNN`):

* ``edge_index[0]`` is the source and ``edge_index[1]`` the target of an edge, and
  ``edge_weight`` (ones if ``None``) its weight. Duplicate edges are summed.
* The dense weighted adjacency is ``A[src, dst] = w``.
* The *forward* random walk is ``P_f = D_out^{-1} A`` and the *backward* random walk is
  ``P_b = D_in^{-1} A^T`` (the walk on the reversed graph).
* A *support* is the matrix ``S`` such that one diffusion step is ``x' = S @ x`` along
  the node axis. The forward support is ``S_f = P_f^T`` (node ``j`` receives
  ``sum_i P_f[i, j] x_i`` from its in-neighbours ``i``, which is what DCRNN's and Graph
  WaveNet's reference code compute) and the backward support is ``S_b = P_b^T``.
* Isolated nodes (zero degree) get an all-zero row in ``P`` (the reciprocal of a zero
  degree is taken to be 0), never ``inf`` or ``NaN``.
"""

from __future__ import annotations

import warnings
from typing import List, Optional

import torch
from torch import Tensor

from .._checks import check_graph, values_checkable

__all__ = [
    "EdgeListSupport",
    "support_density",
    "dense_adjacency",
    "random_walk_matrix",
    "transition_supports",
    "check_forward_inputs",
    "to_support_format",
    "diffuse",
    "SupportCache",
]


def dense_adjacency(
    edge_index: Tensor,
    edge_weight: Optional[Tensor],
    num_nodes: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None,
) -> Tensor:
    """Dense weighted adjacency ``A[src, dst] = w`` (duplicate edges summed).

    Args:
        edge_index (Tensor): ``[2, E]`` source/target indices.
        edge_weight (Tensor, optional): ``[E]`` weights; ones if ``None`` (default: ``None``).
        num_nodes (int): number of nodes ``N``.
        dtype (torch.dtype, optional): output dtype (default: ``torch.float32``).
        device (torch.device, optional): output device (default: ``edge_index.device``).

    Returns:
        Tensor: ``[N, N]`` adjacency (a new tensor; the inputs are not modified).
    """
    check_graph(edge_index, edge_weight, num_nodes)
    device = edge_index.device if device is None else device
    adj = torch.zeros(num_nodes, num_nodes, dtype=dtype, device=device)
    if edge_index.numel() == 0:
        return adj
    ei = edge_index.to(device=device, dtype=torch.long)
    if edge_weight is None:
        w = torch.ones(ei.size(1), dtype=dtype, device=device)
    else:
        w = edge_weight.to(device=device, dtype=dtype)
    adj.index_put_((ei[0], ei[1]), w, accumulate=True)
    return adj


def random_walk_matrix(adj: Tensor) -> Tensor:
    """Row-normalised transition matrix ``D^{-1} A`` with ``D = diag(A.sum(1))``.

    Rows of isolated nodes (zero out-degree) are all zero, never ``NaN``.

    Args:
        adj (Tensor): ``[N, N]`` non-negative adjacency.

    Returns:
        Tensor: ``[N, N]`` transition matrix.
    """
    if adj.dim() != 2 or adj.size(0) != adj.size(1):
        raise ValueError(f"adj must be a square [N, N] matrix, got {tuple(adj.shape)}")
    deg = adj.sum(dim=1)
    inv = torch.where(deg != 0, 1.0 / torch.where(deg != 0, deg, torch.ones_like(deg)), torch.zeros_like(deg))
    return inv.unsqueeze(1) * adj


def transition_supports(
    edge_index: Tensor,
    edge_weight: Optional[Tensor],
    num_nodes: int,
    *,
    kind: str = "dual",
    dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None,
) -> List[Tensor]:
    """Diffusion supports ``S`` (one step is ``x' = S @ x``) built from a graph.

    Args:
        edge_index (Tensor): ``[2, E]`` source/target indices.
        edge_weight (Tensor, optional): ``[E]`` weights; ones if ``None`` (default: ``None``).
        num_nodes (int): number of nodes ``N``.
        kind (str, optional): ``"dual"`` for the forward and backward random walk
            ``[P_f^T, P_b^T]`` (DCRNN's dual random walk, Graph WaveNet's
            "doubletransition"), ``"forward"`` for ``[P_f^T]`` only (default: ``"dual"``).
        dtype (torch.dtype, optional): output dtype (default: ``torch.float32``).
        device (torch.device, optional): output device (default: ``edge_index.device``).

    Returns:
        list[Tensor]: dense ``[N, N]`` supports.
    """
    if kind not in ("dual", "forward"):
        raise ValueError(f"kind must be 'dual' or 'forward', got {kind!r}")
    adj = dense_adjacency(edge_index, edge_weight, num_nodes, dtype=dtype, device=device)
    if values_checkable() and bool((adj < 0).any()):
        raise ValueError("edge_weight must be non-negative to build random-walk transition matrices")
    fwd = random_walk_matrix(adj).t().contiguous()
    if kind == "forward":
        return [fwd]
    bwd = random_walk_matrix(adj.t()).t().contiguous()
    return [fwd, bwd]


class SupportCache:
    """Small identity-keyed cache of graph supports.

    A forward pass with the *same* ``edge_index`` (and ``edge_weight``) tensor objects,
    the same number of nodes, device and dtype reuses the supports built the first time.
    The cache keeps references to the key tensors (so their ids cannot be recycled) and
    records their in-place version counters, so an in-place edit of ``edge_index`` or
    ``edge_weight`` invalidates the entry.

    Args:
        maxsize (int, optional): number of graphs remembered (default: ``4``).
    """

    def __init__(self, maxsize: int = 4) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._entries: list = []
        self.builds = 0  # number of times supports were (re)built; handy for tests

    @staticmethod
    def _version(t: Optional[Tensor]) -> int:
        return -1 if t is None else int(t._version)

    def get(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int,
            device: torch.device, dtype: torch.dtype, build) -> List[Tensor]:
        """Return cached supports or ``build()`` them and remember the result."""
        for i, e in enumerate(self._entries):
            (ei, eiv, ew, ewv, n, dev, dt, sup) = e
            if (ei is edge_index and ew is edge_weight and eiv == self._version(edge_index)
                    and ewv == self._version(edge_weight) and n == num_nodes and dev == device
                    and dt == dtype):
                if i:
                    self._entries.insert(0, self._entries.pop(i))
                return sup
        sup = build()
        self.builds += 1
        self._entries.insert(0, (edge_index, self._version(edge_index), edge_weight,
                                 self._version(edge_weight), num_nodes, device, dtype, sup))
        del self._entries[self.maxsize:]
        return sup

    def clear(self) -> None:
        """Forget every cached graph."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self):  # do not pickle cached graphs with the model
        return {"maxsize": self.maxsize, "_entries": [], "builds": 0}


def check_forward_inputs(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Optional[Tensor],
    node_index: Optional[Tensor],
    *,
    num_nodes: int,
    in_features: int,
    t_in: Optional[int] = None,
    model: str = "model",
) -> int:
    """Validate the backbone forward arguments and return the number of present nodes K.

    Raises clear errors that name the argument and what was expected.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{model}: x must be a torch.Tensor [B, T_in, K, F], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{model}: x must have shape [B, T_in, K, F] (4 dims), got {tuple(x.shape)}")
    b, t, k, f = x.shape
    if f != in_features:
        raise ValueError(f"{model}: x has {f} features (last dim) but the model was built with "
                         f"in_features={in_features}")
    if t_in is not None and t != t_in:
        raise ValueError(f"{model}: x has {t} time steps (dim 1) but the model was built with t_in={t_in}")
    if b < 1 or k < 1:
        raise ValueError(f"{model}: x must have at least one sample and one node, got shape {tuple(x.shape)}")
    if node_index is None:
        if k != num_nodes:
            raise ValueError(
                f"{model}: x has {k} nodes (dim 2) but the model was built with num_nodes={num_nodes}; "
                f"pass node_index (LongTensor[{k}] of original node ids) to run on a sub-graph"
            )
    else:
        if not isinstance(node_index, Tensor) or node_index.dim() != 1:
            got = tuple(node_index.shape) if isinstance(node_index, Tensor) else type(node_index).__name__
            raise ValueError(f"{model}: node_index must be a 1-D LongTensor [K], got {got}")
        if node_index.dtype not in (torch.long, torch.int, torch.int32, torch.int64):
            raise TypeError(f"{model}: node_index must be an integer (long) tensor, got dtype {node_index.dtype}")
        if node_index.numel() != k:
            raise ValueError(f"{model}: node_index has {node_index.numel()} entries but x has K={k} nodes (dim 2)")
        if values_checkable():  # traced: node_index is a constant, checked in eager calls
            lo, hi = int(node_index.min()), int(node_index.max())
            if lo < 0 or hi >= num_nodes:
                raise ValueError(f"{model}: node_index values must lie in [0, {num_nodes - 1}] "
                                 f"(num_nodes={num_nodes}), got values in [{lo}, {hi}]")
            if torch.unique(node_index).numel() != k:
                raise ValueError(f"{model}: node_index must not contain duplicate node ids")
    check_graph(edge_index, edge_weight, k)
    return k


def support_density(support: Tensor) -> float:
    """Share of non-zero entries of a dense or sparse ``[K, K]`` support."""
    k = support.size(0)
    nnz = support._nnz() if support.layout != torch.strided else int((support != 0).sum())
    return float(nnz) / max(k * k, 1)


def to_support_format(support: Tensor, sparse: "bool | str" = "auto", *, density_threshold: float = 0.2) -> Tensor:
    """Return ``support`` as a dense tensor or a sparse CSR tensor.

    Args:
        support (Tensor): dense ``[K, K]`` support.
        sparse (bool or str, optional): ``True`` for CSR, ``False`` for dense, ``"auto"``
            for CSR when the fraction of non-zeros is below ``density_threshold``; while
            traced (:func:`torch.export.export`) ``"auto"`` is dense (default: ``"auto"``).
        density_threshold (float, optional): density cut-off for ``"auto"`` (default: ``0.2``).

    Returns:
        Tensor: the support in the chosen layout (same values).
    """
    if sparse not in (True, False, "auto"):
        raise ValueError(f"sparse must be True, False or 'auto', got {sparse!r}")
    if sparse == "auto" and not values_checkable():
        sparse = False  # traced (torch.export): the layout may not depend on values; dense traces everywhere
    if sparse == "auto":
        sparse = support_density(support) < density_threshold
    if not sparse:
        return support
    with warnings.catch_warnings():  # "sparse CSR support is in beta" notice
        warnings.simplefilter("ignore", UserWarning)
        return support.to_sparse_csr()


class EdgeListSupport:
    """A ``[K, K]`` support held as its non-zeros, diffused with a gather and an ``index_add``.

    The form a traced program (:func:`torch.export.export`) can use for a sparse graph: sparse
    tensor layouts do not trace with a dynamic batch, and a dense ``[K, K]`` matrix costs ``K²``
    per step where this costs the number of non-zeros.

    Args:
        row (LongTensor): ``[nnz]`` row (target) index of each non-zero.
        col (LongTensor): ``[nnz]`` column (source) index of each non-zero.
        value (Tensor): ``[nnz]`` the non-zeros.
        num_nodes (int): ``K``.
    """

    layout = "edge_list"

    def __init__(self, row: Tensor, col: Tensor, value: Tensor, num_nodes: int) -> None:
        self.row, self.col, self.value, self.num_nodes = row, col, value, int(num_nodes)

    @classmethod
    def from_matrix(cls, support: Tensor) -> "EdgeListSupport":
        """The non-zeros of a dense or sparse ``[K, K]`` support."""
        coo = (support.to_dense() if support.layout != torch.strided else support).to_sparse_coo().coalesce()
        row, col = coo.indices()
        return cls(row.clone(), col.clone(), coo.values().clone(), support.size(0))

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.num_nodes, self.num_nodes))

    def diffuse(self, z2: Tensor) -> Tensor:
        """``S @ z2`` for a ``[K, M]`` tensor."""
        msg = z2.index_select(0, self.col) * self.value.to(z2.dtype).unsqueeze(1)
        return z2.new_zeros(z2.shape).index_add(0, self.row, msg)


def diffuse(support, z: Tensor) -> Tensor:
    """One diffusion step ``S @ z`` along the node axis of a node-first tensor.

    Args:
        support (Tensor or EdgeListSupport): ``[K, K]`` dense or sparse-CSR support, or its
            non-zeros (:class:`EdgeListSupport`).
        z (Tensor): ``[K, ...]`` node-first tensor.

    Returns:
        Tensor: ``[K, ...]`` with the same trailing shape as ``z``.
    """
    z2 = z.reshape(z.size(0), -1)
    if isinstance(support, EdgeListSupport):
        return support.diffuse(z2).view(z.shape)
    out = torch.sparse.mm(support, z2) if support.layout != torch.strided else support @ z2
    return out.view(z.shape)
