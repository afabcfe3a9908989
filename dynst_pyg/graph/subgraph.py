r"""Node-subset operators on tensors and graphs.

* :func:`induced_subgraph`: the subgraph on the kept nodes, relabelled to
  ``0..K-1``, optionally *reconnecting* kept nodes that were linked only through
  pruned nodes (``reconnect="none" | "khop" | "kron"``).
* :func:`kron_reduction`: the Kron reduction (Schur complement of the Laplacian).
* :func:`khop_reconnect`: the k-hop bridging edges alone.
* :func:`select` / :func:`lift`: take the kept nodes out of a batched tensor and
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

import functools
import inspect
import warnings
from typing import Any, Callable, Literal, Optional, Tuple, Union, overload

import numpy as np
import torch
from torch import Tensor

from ..selection.mask import SensorMask, _check_num_nodes, _to_index_tensor

__all__ = ["induced_subgraph", "kron_reduction", "khop_reconnect", "select", "lift", "RECONNECT_MODES"]

#: Valid values of the ``reconnect`` argument.
RECONNECT_MODES = ("none", "khop", "kron")

KeepLike = Union[SensorMask, Tensor]

# components of the pruned subgraph up to this size are inverted in batched dense
# form; larger ones go through a sparse LU factorisation (scipy.sparse.linalg.splu)
_DENSE_BLOCK_MAX = 48
# dense triangular solves on the sparse LU factors up to this component size
_DENSE_TRSM_MAX = 6000
# the reduced adjacency is accumulated as a dense [K, K] array up to this K
_DENSE_OUT_MAX = 3000
# refuse Kron blocks whose dense work arrays would exceed this many float64 entries (~1.6 GB)
_MAX_DENSE_ENTRIES = 200_000_000


# ----------------------------------------------------------------------------------------
# argument checking
# ----------------------------------------------------------------------------------------
def _resolve_keep(keep: Any, num_nodes: Optional[int], name: str = "subset",
                  check_unique: bool = True) -> Tuple[Tensor, int]:
    """Returns (index LongTensor on CPU, num_nodes) after validation (no copy of caller data is modified)."""
    if isinstance(keep, SensorMask):
        if num_nodes is not None and int(num_nodes) != keep.num_nodes:
            raise ValueError(f"'{name}' is a SensorMask over {keep.num_nodes} nodes but num_nodes={num_nodes}")
        return keep.keep, keep.num_nodes
    if isinstance(keep, Tensor) and keep.dtype == torch.bool:
        if keep.dim() != 1:
            raise ValueError(f"'{name}' as a boolean mask must be 1-D, got shape {tuple(keep.shape)}")
        if num_nodes is not None and keep.numel() != int(num_nodes):
            raise ValueError(f"'{name}' as a boolean mask must have length num_nodes={num_nodes}, "
                             f"got {keep.numel()}")
        idx = keep.detach().cpu().nonzero().view(-1)
        n = keep.numel()
    else:
        idx = _to_index_tensor(keep, name)
        if num_nodes is None:
            raise ValueError(f"'num_nodes' is required when '{name}' is an index tensor")
        n = int(num_nodes)
    n = _check_num_nodes(n)
    if idx.numel() == 0:
        raise ValueError(f"'{name}' is an empty selection: at least one node must be kept")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n:
        raise ValueError(f"'{name}' holds index {lo if lo < 0 else hi}, outside [0, {n - 1}] "
                         f"for num_nodes={n}")
    if check_unique and idx.numel() > 1:
        s = torch.sort(idx).values
        if bool((s[1:] == s[:-1]).any()):
            raise ValueError(f"'{name}' holds duplicate indices: kept nodes must be unique")
    return idx, n


def _check_graph(edge_index: Any, edge_weight: Any, num_nodes: int) -> None:
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"'edge_index' must be a LongTensor [2, E], got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'edge_index' must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"'edge_index' must hold integer indices, got dtype {edge_index.dtype}")
    if edge_index.numel():
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= num_nodes:
            raise ValueError(f"'edge_index' refers to node {lo if lo < 0 else hi}, outside [0, {num_nodes - 1}] "
                             f"for num_nodes={num_nodes}")
    if edge_weight is not None:
        if not isinstance(edge_weight, Tensor):
            raise TypeError(f"'edge_weight' must be a 1-D tensor [E] or None, got {type(edge_weight).__name__}")
        if edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1):
            raise ValueError(f"'edge_weight' must have shape [E]=[{edge_index.size(1)}], "
                             f"got {tuple(edge_weight.shape)}")


def _check_nonneg_weights(edge_weight: Optional[Tensor], mode: str) -> None:
    if edge_weight is None or edge_weight.numel() == 0:
        return
    w = edge_weight.detach()
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"'edge_weight' must be finite for reconnect={mode!r}")
    if bool((w < 0).any()):
        raise ValueError(f"'edge_weight' must be non-negative for reconnect={mode!r} "
                         f"(found {int((w < 0).sum())} negative weight(s))")


def _deprecated_keep_keyword(fn: Callable) -> Callable:
    """Accepts the former keyword ``keep=`` for ``subset=`` with a :class:`DeprecationWarning`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "keep" in kwargs:
            if "subset" in kwargs:
                raise TypeError(f"{fn.__name__}(): pass 'subset' only ('keep' is its deprecated name)")
            warnings.warn(f"{fn.__name__}(keep=...) is deprecated; use subset=...", DeprecationWarning, stacklevel=2)
            kwargs["subset"] = kwargs.pop("keep")
        return fn(*args, **kwargs)

    return wrapper


def _legacy_order(old_signature: Callable, convert: Callable) -> Callable[[Callable], Callable]:
    """Keeps calls in the former ``(edge_index, edge_weight, keep, ...)`` order working.

    A call is in the former order when its first argument is a 2-D tensor (an
    ``edge_index``; a kept set is never 2-D) or when it names ``keep``/``edge_weight``
    the former way. It is bound to ``old_signature``, a :class:`DeprecationWarning` is
    issued and ``convert(new_function, bound_arguments)`` answers it.
    """
    sig = inspect.signature(old_signature)

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            first = args[0] if args else kwargs.get("edge_index") if "subset" not in kwargs else None
            legacy = (isinstance(first, Tensor) and first.dim() == 2 and "subset" not in kwargs) or "keep" in kwargs
            if not legacy:
                return fn(*args, **kwargs)
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{fn.__name__}(): {exc}; call it as {fn.__name__}{inspect.signature(fn)}") from None
            bound.apply_defaults()
            warnings.warn(f"{fn.__name__}(edge_index, edge_weight, keep, ...) is deprecated; call "
                          f"{fn.__name__}(subset, edge_index, ...) as torch_geometric.utils.subgraph does "
                          "(further arguments are keyword-only)", DeprecationWarning, stacklevel=2)
            return convert(fn, bound.arguments)

        return wrapper

    return decorate


# ----------------------------------------------------------------------------------------
# tensor operators
# ----------------------------------------------------------------------------------------
@_deprecated_keep_keyword
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


@_deprecated_keep_keyword
def lift(y_kept: Tensor, subset: KeepLike, num_nodes: Optional[int] = None, dim: int = -2,
         fill: float = 0.0) -> Tensor:
    r"""Writes values on the kept nodes back into a tensor over all ``N`` nodes.

    Entry ``i`` of :obj:`y_kept` along :obj:`dim` goes to node ``subset[i]``; all other
    nodes hold :obj:`fill`. ``lift(select(x, subset), subset, N)`` equals :obj:`x` on kept
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


# ----------------------------------------------------------------------------------------
# k-hop bridging
# ----------------------------------------------------------------------------------------
def _khop_old(edge_index, edge_weight, keep, num_nodes=None, k=2):  # former signature
    pass


def _khop_from_old(fn: Callable, a: dict) -> Tuple[Tensor, Tensor]:
    return fn(a["keep"], a["edge_index"], a["edge_weight"], num_nodes=a["num_nodes"], k=a["k"], relabel_nodes=False)


@_legacy_order(_khop_old, _khop_from_old)
def khop_reconnect(subset: KeepLike, edge_index: Tensor, edge_weight: Optional[Tensor] = None, *,
                   num_nodes: Optional[int] = None, k: int = 2, relabel_nodes: bool = True) -> Tuple[Tensor, Tensor]:
    r"""Edges between kept nodes that are linked only through pruned nodes.

    An edge ``u -> w`` (``u != w``, both kept) is returned when a directed walk
    ``u -> p_1 -> ... -> p_m -> w`` with ``1 <= m`` and ``m + 1 <= k`` hops exists
    whose inner nodes ``p_i`` are all pruned. Its weight is the **largest product of
    the edge weights along such a walk** (the "strongest path"; for weights in
    ``[0, 1]``, e.g. Gaussian-kernel road graphs, the maximum is attained on a simple
    path). Pairs already joined by a direct kept-kept edge are not returned.

    Args:
        subset (SensorMask, LongTensor or BoolTensor): The kept nodes.
        edge_index (LongTensor): ``[2, E]`` in the original numbering.
        edge_weight (Tensor, optional): ``[E]`` non-negative; ones if :obj:`None`.
            (default: :obj:`None`)
        num_nodes (int, optional): ``N``; required when :obj:`subset` is an index
            tensor. (default: :obj:`None`)
        k (int, optional): Largest number of hops of a bridging walk. (default: :obj:`2`)
        relabel_nodes (bool, optional): Number the kept nodes ``0..K-1`` in ascending
            order of their original ids; :obj:`False` keeps the original ids.
            (default: :obj:`True`)

    Returns:
        (LongTensor, Tensor): the new edges ``[2, E_new]``, sorted by (source, target),
        and their weights ``[E_new]``.
    """
    idx, n = _resolve_keep(subset, num_nodes)
    _check_graph(edge_index, edge_weight, n)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"'k' must be an int >= 1 (number of hops), got {k!r}")
    _check_nonneg_weights(edge_weight, "khop")
    device = edge_index.device
    ei = edge_index.detach().cpu().long()
    w = (torch.ones(ei.size(1), dtype=torch.float64) if edge_weight is None
         else edge_weight.detach().cpu().to(torch.float64))
    kept = torch.zeros(n, dtype=torch.bool)
    kept[idx] = True
    src, dst = ei[0], ei[1]

    # outgoing edges of pruned nodes in CSR form
    from_pruned = ~kept[src]
    ps, pd, pw = src[from_pruned], dst[from_pruned], w[from_pruned]
    order = torch.argsort(ps, stable=True)
    ps, pd, pw = ps[order], pd[order], pw[order]
    ptr = torch.zeros(n + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.bincount(ps, minlength=n), 0)

    # frontier: best weight of walks u (kept) -> p (pruned) of exactly h hops
    start = kept[src] & ~kept[dst]
    f_u, f_p, f_w = src[start], dst[start], w[start]
    f_u, f_p, f_w = _max_reduce(f_u, f_p, f_w, n)
    res_u, res_w_, res_val = [], [], []
    for hop in range(2, k + 1):
        if f_u.numel() == 0:
            break
        deg = ptr[f_p + 1] - ptr[f_p]
        total = int(deg.sum())
        if total == 0:
            break
        rep = torch.repeat_interleave(torch.arange(f_u.numel()), deg)
        offs = torch.arange(total) - torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
        eidx = ptr[f_p][rep] + offs
        nu, nq, nw = f_u[rep], pd[eidx], f_w[rep] * pw[eidx]
        to_kept = kept[nq] & (nq != nu)
        res_u.append(nu[to_kept])
        res_w_.append(nq[to_kept])
        res_val.append(nw[to_kept])
        if hop < k:  # walks that continue through another pruned node
            nxt = ~kept[nq]
            f_u, f_p, f_w = _max_reduce(nu[nxt], nq[nxt], nw[nxt], n)

    if res_u:
        if len(res_u) == 1:
            ru, rw, rv = res_u[0], res_w_[0], res_val[0]
        else:
            ru, rw, rv = torch.cat(res_u), torch.cat(res_w_), torch.cat(res_val)
        ru, rw, rv = _max_reduce(ru, rw, rv, n)
    else:
        ru = rw = torch.empty(0, dtype=torch.long)
        rv = torch.empty(0, dtype=torch.float64)
    # drop pairs that already have a direct kept-kept edge
    direct = kept[src] & kept[dst]
    if ru.numel() and bool(direct.any()):
        existing = torch.unique(src[direct] * n + dst[direct])  # sorted
        new_keys = ru * n + rw
        pos = torch.searchsorted(existing, new_keys).clamp_max(existing.numel() - 1)
        fresh = existing[pos] != new_keys
        ru, rw, rv = ru[fresh], rw[fresh], rv[fresh]
    out_dtype = edge_weight.dtype if edge_weight is not None and edge_weight.is_floating_point() \
        else torch.get_default_dtype()
    if relabel_nodes:  # ascending kept ids -> 0..K-1 (a monotone map keeps the sort order)
        new_id = torch.full((n,), -1, dtype=torch.long)
        new_id[torch.sort(idx).values] = torch.arange(idx.numel())
        ru, rw = new_id[ru], new_id[rw]
    return (torch.stack([ru, rw]).to(device),
            rv.to(dtype=out_dtype, device=device))


def _max_reduce(a: Tensor, b: Tensor, v: Tensor, n: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Unique (a, b) pairs sorted by (a, b) with the max of v per pair."""
    if a.numel() == 0:
        return a, b, v
    key = a * n + b
    uniq, inv = torch.unique(key, return_inverse=True)
    best = torch.full((uniq.numel(),), -float("inf"), dtype=v.dtype)
    best = best.scatter_reduce(0, inv, v, reduce="amax", include_self=True)
    return uniq // n, uniq % n, best


# ----------------------------------------------------------------------------------------
# Kron reduction
# ----------------------------------------------------------------------------------------
def _kron_old(edge_index, edge_weight, keep, num_nodes=None, tol=1e-8):  # former signature
    pass


def _kron_from_old(fn: Callable, a: dict) -> Tuple[Tensor, Tensor]:
    return fn(a["keep"], a["edge_index"], a["edge_weight"], num_nodes=a["num_nodes"], tol=a["tol"])


@_legacy_order(_kron_old, _kron_from_old)
def kron_reduction(subset: KeepLike, edge_index: Tensor, edge_weight: Optional[Tensor] = None, *,
                   num_nodes: Optional[int] = None, tol: float = 1e-8,
                   relabel_nodes: bool = True) -> Tuple[Tensor, Tensor]:
    r"""Kron reduction of a weighted graph onto the kept nodes.

    With ``W`` the weighted adjacency (duplicate edges summed), the graph is first
    symmetrised, ``A = (W + W^T) / 2`` without self-loops, and ``L = D - A`` is its
    Laplacian. Splitting the nodes into kept ``k`` and pruned ``p``, the reduced
    Laplacian is the Schur complement

    .. math::
        L_{red} = L_{kk} - L_{kp} L_{pp}^{-1} L_{pk},

    which is again a Laplacian; its off-diagonal entries ``-L_red[i, j] > tol`` become
    the (symmetric) edges ``i <-> j`` of the reduced graph. Pruned components that
    touch no kept node do not contribute and are ignored. A kept node's self-loop in
    the input does not enter the Laplacian and is carried over unchanged (weights of
    duplicate self-loops summed). ``L_pp`` is factorised per connected component of the
    pruned subgraph: small components as batched dense inverses, larger ones with the
    sparse LU factorisation :func:`scipy.sparse.linalg.splu`.

    Args:
        subset (SensorMask, LongTensor or BoolTensor): The kept nodes.
        edge_index (LongTensor): ``[2, E]`` in the original numbering.
        edge_weight (Tensor, optional): ``[E]`` non-negative; ones if :obj:`None`.
            (default: :obj:`None`)
        num_nodes (int, optional): ``N``; required when :obj:`subset` is an index
            tensor. (default: :obj:`None`)
        tol (float, optional): Reduced edges with weight ``<= tol`` are dropped.
            (default: :obj:`1e-8`)
        relabel_nodes (bool, optional): Number the kept nodes ``0..K-1`` in ascending
            order of their original ids; :obj:`False` keeps the original ids.
            (default: :obj:`True`)

    Returns:
        (LongTensor, Tensor): edges ``[2, E_red]``, sorted by (source, target), and their
        weights ``[E_red]`` (dtype of :obj:`edge_weight`).

    Raises:
        ValueError: on invalid arguments, negative or non-finite weights, or when one
            connected group of pruned nodes borders so many kept nodes that the
            (necessarily dense) reduced block would not fit in memory.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import splu

    idx, n = _resolve_keep(subset, num_nodes)
    _check_graph(edge_index, edge_weight, n)
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol < 0 or tol != tol:
        raise ValueError(f"'tol' must be a non-negative float, got {tol!r}")
    _check_nonneg_weights(edge_weight, "kron")
    device = edge_index.device
    out_dtype = edge_weight.dtype if edge_weight is not None and edge_weight.is_floating_point() \
        else torch.get_default_dtype()

    idx = torch.sort(idx).values
    ei = edge_index.detach().cpu().long().numpy()
    w = (np.ones(ei.shape[1]) if edge_weight is None
         else edge_weight.detach().cpu().to(torch.float64).numpy())
    kept_np = np.zeros(n, dtype=bool)
    kept_np[idx.numpy()] = True
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[idx.numpy()] = np.arange(idx.numel())
    num_keep = idx.numel()

    loop = ei[0] == ei[1]
    # self-loops of kept nodes, carried over
    kl = loop & kept_np[ei[0]]
    loop_nodes = new_id[ei[0][kl]]
    loop_w = np.bincount(loop_nodes, weights=w[kl], minlength=num_keep)

    nl = ~loop
    W = sp.coo_matrix((w[nl], (ei[0][nl], ei[1][nl])), shape=(n, n)).tocsr()
    A = ((W + W.T) * 0.5).tocsr()
    A.eliminate_zeros()
    deg = np.asarray(A.sum(axis=1)).ravel()

    kept_idx = np.flatnonzero(kept_np)
    pr_idx = np.flatnonzero(~kept_np)
    A_kk = A[kept_idx][:, kept_idx].tocoo()
    # accumulate the reduced adjacency densely when K is moderate (fast, sorted output),
    # otherwise as COO triplets
    dense_out = num_keep <= _DENSE_OUT_MAX
    R_dense = np.zeros((num_keep, num_keep)) if dense_out else None
    rows: list = []
    cols: list = []
    vals: list = []

    def add_coo(r_: np.ndarray, c_: np.ndarray, v_: np.ndarray, unique: bool = False) -> None:
        if dense_out:
            if unique:  # no repeated (row, col) pairs: plain fancy-index accumulation is exact
                R_dense[r_, c_] += v_
            else:
                np.add.at(R_dense, (r_, c_), v_)
        else:
            rows.append(r_.astype(np.int64))
            cols.append(c_.astype(np.int64))
            vals.append(np.asarray(v_, dtype=np.float64))

    add_coo(A_kk.row, A_kk.col, A_kk.data, unique=True)  # canonical CSR -> unique pairs

    if pr_idx.size:
        A_pp = A[pr_idx][:, pr_idx].tocsr()
        A_pk = A[pr_idx][:, kept_idx].tocsr()
        ncomp, comp = connected_components(A_pp, directed=False)
        # components touching no kept node contribute nothing (and are singular)
        touches = np.zeros(ncomp, dtype=bool)
        has_k = np.diff(A_pk.indptr) > 0
        touches[comp[has_k]] = True
        sizes = np.bincount(comp, minlength=ncomp)
        order = np.argsort(comp, kind="stable")  # pruned positions grouped by component
        starts = np.concatenate([[0], np.cumsum(sizes)])
        pos_in_comp = np.empty(pr_idx.size, dtype=np.int64)
        pos_in_comp[order] = np.arange(pr_idx.size) - starts[comp[order]]
        deg_p = deg[pr_idx]

        # --- small components: batched dense inverses, grouped by size ----------------
        small = touches & (sizes <= _DENSE_BLOCK_MAX)
        A_pp_coo = A_pp.tocoo()
        for s in np.unique(sizes[small]):
            comps = np.flatnonzero(small & (sizes == s))
            slot = np.full(ncomp, -1, dtype=np.int64)
            slot[comps] = np.arange(comps.size)
            L = np.zeros((comps.size, s, s))
            ar = np.arange(s)
            members = order[(starts[comps][:, None] + ar[None, :]).ravel()].reshape(comps.size, s)
            L[:, ar, ar] = deg_p[members]
            e_sel = slot[comp[A_pp_coo.row]] >= 0
            er, ec, ev = A_pp_coo.row[e_sel], A_pp_coo.col[e_sel], A_pp_coo.data[e_sel]
            np.add.at(L, (slot[comp[er]], pos_in_comp[er], pos_in_comp[ec]), -ev)
            Linv = np.linalg.inv(L)  # [m, s, s]
            # block-diagonal L^{-1} of these components in local numbering: row a of
            # component j is local index j * s + a (= position in members.ravel())
            loc = np.arange(comps.size * s).reshape(comps.size, s)
            bi = np.repeat(loc, s, axis=1).ravel()
            bj = np.tile(loc, (1, s)).ravel()
            Minv = sp.csr_matrix((Linv.ravel(), (bi, bj)), shape=(loc.size, loc.size))
            B = A_pk[members.ravel()]  # [m * s, K] rows of these components
            C = (B.T @ Minv @ B).tocoo()
            add_coo(C.row, C.col, C.data, unique=True)

        # --- large components: sparse LU --------------------------------------------
        for c in np.flatnonzero(touches & (sizes > _DENSE_BLOCK_MAX)):
            members = order[starts[c]:starts[c + 1]]
            sub = A_pp[members][:, members]
            L_cc = (sp.diags(deg_p[members]) - sub).tocsc()
            B_c = A_pk[members]
            bnd = np.flatnonzero(np.diff(B_c.tocsc().indptr) > 0)
            if max(members.size, bnd.size) * bnd.size > _MAX_DENSE_ENTRIES:
                raise ValueError(
                    f"Kron reduction: a connected group of {members.size} pruned nodes borders {bnd.size} kept "
                    f"nodes, so the reduced graph would hold a dense block of {bnd.size}x{bnd.size} edges; "
                    f"prune fewer neighbouring sensors or use reconnect='khop'")
            B_cb = B_c[:, bnd].toarray()
            X = _lu_solve(splu(L_cc), B_cb)
            C = B_cb.T @ X  # [|bnd|, |bnd|] dense
            if dense_out:
                R_dense[np.ix_(bnd, bnd)] += C
            else:
                r, cc = np.nonzero(C)
                add_coo(bnd[r], bnd[cc], C[r, cc])

    lr = np.flatnonzero(np.bincount(loop_nodes, minlength=num_keep) > 0)
    if dense_out:
        sel = R_dense > tol
        np.fill_diagonal(sel, False)
        sel[lr, lr] = True
        R_dense[lr, lr] = loop_w[lr]
        r, c = np.nonzero(sel)  # row-major: sorted by (source, target)
        v = R_dense[r, c]
    else:
        R = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(num_keep, num_keep)).tocsr()
        R.sum_duplicates()
        R = R.tocoo()
        off = (R.row != R.col) & (R.data > tol)
        r, c, v = R.row[off], R.col[off], R.data[off]
        r = np.concatenate([r, lr])
        c = np.concatenate([c, lr])
        v = np.concatenate([v, loop_w[lr]])
        o = np.lexsort((c, r))
        r, c, v = r[o], c[o], v[o]
    if not relabel_nodes:  # back to original ids (a monotone map keeps the sort order)
        r, c = kept_idx[r], kept_idx[c]
    ei_out = torch.stack([torch.from_numpy(np.ascontiguousarray(r, dtype=np.int64)),
                          torch.from_numpy(np.ascontiguousarray(c, dtype=np.int64))]).to(device)
    w_out = torch.from_numpy(np.ascontiguousarray(v)).to(dtype=out_dtype, device=device)
    return ei_out, w_out


def _lu_solve(lu: Any, rhs: np.ndarray) -> np.ndarray:
    """Solves ``A X = rhs`` with the sparse LU factorisation ``lu`` of ``A``.

    When the factors have filled in (dense-ish, typical of random graphs) and are of
    moderate size, the triangular solves run as dense BLAS-3 ``trsm`` on the same
    factors, which is much faster than SuperLU's column-by-column solves for many
    right-hand sides.
    """
    import scipy.linalg as sla

    s = rhs.shape[0]
    fill = lu.L.nnz + lu.U.nnz
    # cost model: SuperLU ~ fill * nrhs sparse updates, dense trsm ~ s^2 * nrhs BLAS-3 flops
    # (about 20-40x cheaper per entry); go dense when the factors are not very sparse
    if rhs.shape[1] < 32 or s > _DENSE_TRSM_MAX or fill < 0.03 * s * s:
        return lu.solve(rhs)
    # SuperLU: Pr A Pc = L U  ->  A^{-1} b = Pc U^{-1} L^{-1} Pr b
    y = np.empty_like(rhs)
    y[lu.perm_r] = rhs
    y = sla.solve_triangular(lu.L.toarray(), y, lower=True, unit_diagonal=True, check_finite=False)
    y = sla.solve_triangular(lu.U.toarray(), y, lower=False, check_finite=False)
    return y[lu.perm_c]


# ----------------------------------------------------------------------------------------
def _induced_old(edge_index, edge_weight, keep, num_nodes=None, reconnect="none", k=2, tol=1e-8,
                 edge_attr=None):  # former signature
    pass


def _induced_from_old(fn: Callable, a: dict) -> Any:
    edge_attr = a["edge_attr"]
    if edge_attr is None:
        return fn(a["keep"], a["edge_index"], a["edge_weight"], num_nodes=a["num_nodes"], reconnect=a["reconnect"],
                  k=a["k"], tol=a["tol"])
    if a["reconnect"] != "none":
        raise ValueError(f"'edge_attr' is only supported with reconnect='none' (reconnect={a['reconnect']!r} "
                         f"creates edges that have no features)")
    ei = a["edge_index"]
    if not isinstance(edge_attr, Tensor) or edge_attr.dim() == 0 or edge_attr.size(0) != ei.size(1):
        raise ValueError(f"'edge_attr' must be a tensor with E={ei.size(1)} rows")
    out_ei, out_w, emask = fn(a["keep"], ei, a["edge_weight"], num_nodes=a["num_nodes"], k=a["k"],
                              return_edge_mask=True)
    return out_ei, out_w, edge_attr[emask]


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


@_legacy_order(_induced_old, _induced_from_old)
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

    if reconnect not in RECONNECT_MODES:
        raise ValueError(f"'reconnect' must be one of {RECONNECT_MODES}, got {reconnect!r}")
    idx, n = _resolve_keep(subset, num_nodes)
    _check_graph(edge_index, None, n)
    if edge_attr is not None:
        if not isinstance(edge_attr, Tensor) or edge_attr.dim() == 0 or edge_attr.size(0) != edge_index.size(1):
            got = tuple(edge_attr.shape) if isinstance(edge_attr, Tensor) else type(edge_attr).__name__
            raise ValueError(f"'edge_attr' must be a tensor with E={edge_index.size(1)} rows, got {got}")
        if reconnect != "none" and edge_attr.dim() != 1:
            raise ValueError(f"'edge_attr' must be 1-D edge weights [E] for reconnect={reconnect!r}, got shape "
                             f"{tuple(edge_attr.shape)} (new edges have a weight but no other features)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"'k' must be an int >= 1 (number of hops), got {k!r}")
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
