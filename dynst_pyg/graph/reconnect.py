r"""Reconnecting kept nodes that were linked only through pruned ones: k-hop bridging edges and the Kron reduction.

Both follow :func:`torch_geometric.utils.subgraph`'s argument order: the kept set
``subset`` (a :class:`~dynst_pyg.selection.SensorMask`, a LongTensor of indices or a
BoolTensor of length ``N``), then ``edge_index`` and the edge weights, the rest
keyword-only. With ``relabel_nodes=True`` (the default) the kept nodes are numbered
``0..K-1`` in ascending order of their original ids; with :obj:`False` the original ids
are kept.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .._checks import check_graph, check_positive_int
from ._subset import KeepLike, _check_nonneg_weights, _resolve_keep

__all__ = ["khop_reconnect", "kron_reduction"]

# components of the pruned subgraph up to this size are inverted in batched dense
# form; larger ones go through a sparse LU factorisation (scipy.sparse.linalg.splu)
_DENSE_BLOCK_MAX = 48
# dense triangular solves on the sparse LU factors up to this component size
_DENSE_TRSM_MAX = 6000
# the reduced adjacency is accumulated as a dense [K, K] array up to this K
_DENSE_OUT_MAX = 3000
# refuse Kron blocks whose dense work arrays would exceed this many float64 entries (~1.6 GB)
_MAX_DENSE_ENTRIES = 200_000_000


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
        edge_weight (Tensor, optional): ``[E]`` finite, non-negative floats; ones if
            :obj:`None`.
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
    check_graph(edge_index, edge_weight, n)
    k = check_positive_int(k, "k")
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
    out_dtype = edge_weight.dtype if edge_weight is not None else torch.get_default_dtype()
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
        edge_weight (Tensor, optional): ``[E]`` finite, non-negative floats; ones if
            :obj:`None`.
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
    check_graph(edge_index, edge_weight, n)
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol < 0 or tol != tol:
        raise ValueError(f"'tol' must be a non-negative float, got {tol!r}")
    _check_nonneg_weights(edge_weight, "kron")
    device = edge_index.device
    out_dtype = edge_weight.dtype if edge_weight is not None else torch.get_default_dtype()

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

