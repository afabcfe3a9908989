"""Network-wide head for ``target="all"``: lift forecasts on K kept nodes to all N nodes.

The backbone runs on the K kept sensors only. :class:`LiftHead` then produces a value
for every one of the N sensors of the full network:

* **kept nodes** pass their own prediction through (plus an optional learned per-node
  bias, ``residual=True``);
* **pruned nodes** receive a *propagation* from the kept nodes through the full graph:
  with ``W = D^{-1} A_s`` the random walk on the symmetrised full graph
  (``A_s = A + A^T``), the weights of pruned node ``u`` on kept nodes are the damped
  harmonic extension (absorbing random walk, the Kron-reduction interpolant)

      ``P = (I - g W_UU)^{-1} g W_UK``,   each row then divided by its sum,

  i.e. the probability that a walk from ``u`` that continues with probability ``g``
  (``damping``) at each step first hits each kept node. ``P`` is computed once per kept
  set (cached) with one ``U x U`` solve; applying it costs ``B * T_out * U * K * F``
  multiply-adds, a small fraction of any backbone;
* a **learned correction**: a per-node affine map of the propagated value (initialised
  to the identity) and, with ``hidden > 0``, a tiny MLP over ``[propagated value, node
  embedding]`` added to it;
* pruned nodes with **no path** to any kept node get the mean of the kept predictions
  (per sample, step and feature) before the correction.

**Bound, learned propagation** (``node_index=...``): a head built for one kept set holds
its ``U x K`` propagation matrix as a trainable parameter (initialised to the harmonic
weights above). :meth:`LiftHead.fit_ridge` then sets it, with the pruned nodes' biases,
to the ridge regression of each pruned sensor's training series on the kept sensors'
series at the same step. The graph says little about which neighbour a sensor resembles
and the training series says a lot, so on real road networks the regression
reconstructs pruned sensors far better than the harmonic weights; it is what the DynST
trainer uses for ``target="all"``. It is a same-step regression: it is not the regression the
mask search ranks sensors with (the reconstruction value predicts every sensor 1 to 12 steps
ahead, see :class:`~dynst_pyg.scoring.ReconstructionValue`), so a sensor that the search keeps is
not necessarily the one this fit would have picked.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..linalg import ridge_solve
from .batching import to_dense_windows, to_node_first, window_layout
from .._checks import check_graph, check_positive_ints, values_checkable
from .supports import dense_adjacency

__all__ = ["LiftHead", "Propagation"]


class Propagation(NamedTuple):
    """Propagation weights of one kept set (see :meth:`LiftHead.propagation`)."""

    #: ``[U]`` pruned node ids, ascending.
    pruned_index: Tensor
    #: ``[U, K]`` weights, rows summing to 1 (0 for fallback rows).
    weights: Tensor
    #: ``[U]`` bool, pruned nodes with no path to a kept node.
    fallback: Tensor
    #: ``[K]`` kept node ids on the head's device.
    node_index: Tensor


class LiftHead(nn.Module):
    r"""Map ``[B, T_out, K, F]`` forecasts on kept nodes to ``[B, T_out, N, F]`` on the full network.

    Args:
        num_nodes (int): ``N``, nodes of the full network.
        edge_index (Tensor): ``[2, E]`` full graph (copied into a buffer).
        edge_weight (Tensor, optional): ``[E]`` non-negative weights; ones if ``None``
            (default: ``None``).
        features (int, optional): ``F``, features per node of the forecasts (default: ``1``).
        damping (float, optional): continuation probability ``g`` in ``(0, 1]`` of the
            absorbing walk; 1 gives the pure harmonic extension (default: ``0.9``).
        residual (bool, optional): learn a per-node bias added to the kept nodes' own
            predictions (default: ``True``).
        hidden (int, optional): width of the optional correction MLP over
            ``[propagated value, node embedding]``; ``0`` disables it (default: ``0``).
        embedding_dim (int, optional): node-embedding size of that MLP (default: ``8``).
        cache_size (int, optional): number of kept sets whose weights are cached (default: ``8``).
        node_index (Tensor, optional): ``[K]`` kept node ids to *bind* the head to: the
            propagation matrix becomes a trainable ``[U, K]`` parameter ``prop_weight``
            (initialised to the harmonic weights; see :meth:`fit_ridge`) and only this kept
            set is accepted by :meth:`forward` (default: :obj:`None`, any kept set, fixed
            harmonic weights).
    """

    def __init__(
        self,
        num_nodes: int,
        edge_index: Tensor,
        edge_weight: Optional[Tensor] = None,
        features: int = 1,
        *,
        damping: float = 0.9,
        residual: bool = True,
        hidden: int = 0,
        embedding_dim: int = 8,
        cache_size: int = 8,
        node_index: Optional[Tensor] = None,
    ) -> None:
        super().__init__()
        check_positive_ints(num_nodes=num_nodes, features=features)
        if not 0.0 < damping <= 1.0:
            raise ValueError(f"damping must be in (0, 1], got {damping}")
        if hidden < 0 or embedding_dim < 1:
            raise ValueError(f"hidden must be >= 0 and embedding_dim >= 1, got hidden={hidden}, "
                             f"embedding_dim={embedding_dim}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        check_graph(edge_index, edge_weight, num_nodes)
        if edge_weight is not None and bool((edge_weight < 0).any()):
            raise ValueError("edge_weight must be non-negative")
        self.num_nodes = num_nodes
        self.features = features
        self.damping = float(damping)
        self.residual = residual
        self.hidden = hidden
        self.cache_size = cache_size
        self.register_buffer("edge_index", edge_index.detach().clone().long())
        self.register_buffer("edge_weight", None if edge_weight is None else edge_weight.detach().clone().float())
        self.scale = nn.Parameter(torch.ones(num_nodes, features))
        self.bias = nn.Parameter(torch.zeros(num_nodes, features))
        if residual:
            self.kept_bias = nn.Parameter(torch.zeros(num_nodes, features))
        else:
            self.register_parameter("kept_bias", None)
        if hidden > 0:
            self.node_emb = nn.Parameter(0.1 * torch.randn(num_nodes, embedding_dim))
            self.mlp = nn.Sequential(nn.Linear(features + embedding_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, features))
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)
        else:
            self.register_parameter("node_emb", None)
            self.mlp = None
        self._cache: "OrderedDict[Tuple, Propagation]" = OrderedDict()
        if node_index is not None:
            self._check_node_index(node_index)
            prop = self.propagation(node_index)
            # rows with no path to a kept node start as the mean of the kept predictions
            k = prop.node_index.numel()
            init = torch.where(prop.fallback.unsqueeze(1), torch.full_like(prop.weights, 1.0 / k), prop.weights)
            self.register_buffer("bound_node_index", prop.node_index.clone())
            self.register_buffer("bound_pruned_index", prop.pruned_index.clone())
            self.prop_weight = nn.Parameter(init.clone())
        else:
            self.register_buffer("bound_node_index", None)
            self.register_buffer("bound_pruned_index", None)
            self.register_parameter("prop_weight", None)
        self.register_load_state_dict_pre_hook(_rename_bound_buffers)

    # ------------------------------------------------------------------ weights
    def _check_node_index(self, node_index: Tensor, k: Optional[int] = None) -> None:
        if not isinstance(node_index, Tensor) or node_index.dim() != 1:
            raise ValueError("node_index must be a 1-D LongTensor [K] of kept node ids")
        if node_index.dtype not in (torch.long, torch.int, torch.int32, torch.int64):
            raise TypeError(f"node_index must be an integer tensor, got dtype {node_index.dtype}")
        if node_index.numel() == 0:
            raise ValueError("node_index must name at least one kept node (got an empty tensor)")
        if k is not None and node_index.numel() != k:
            raise ValueError(f"node_index has {node_index.numel()} entries but the predictions have "
                             f"K={k} nodes (dim -2)")
        lo, hi = int(node_index.min()), int(node_index.max())
        if lo < 0 or hi >= self.num_nodes:
            raise ValueError(f"node_index values must lie in [0, {self.num_nodes - 1}], got [{lo}, {hi}]")
        if torch.unique(node_index).numel() != node_index.numel():
            raise ValueError("node_index must not contain duplicate node ids")

    @torch.no_grad()
    def propagation(self, node_index: Tensor) -> Propagation:
        """Propagation weights for a kept set (cached per kept set).

        Args:
            node_index (Tensor): ``[K]`` kept node ids.

        Returns:
            Propagation: ``(pruned_index [U], weights [U, K], fallback [U], node_index [K])``:
            the pruned ids (ascending), weights whose rows sum to 1 (0 for fallback rows),
            which pruned nodes have no path to a kept node, and ``node_index`` on this
            module's device.
        """
        self._check_node_index(node_index)
        key = (tuple(node_index.tolist()), self.edge_index.device)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        n = self.num_nodes
        dev = self.edge_index.device
        kept = node_index.to(dev).long()
        is_kept = torch.zeros(n, dtype=torch.bool, device=dev)
        is_kept[kept] = True
        pruned = torch.nonzero(~is_kept).flatten()
        u = pruned.numel()
        if u == 0:
            weights = torch.zeros(0, kept.numel(), device=dev)
            fallback = torch.zeros(0, dtype=torch.bool, device=dev)
        else:
            a = dense_adjacency(self.edge_index, self.edge_weight, n, dtype=torch.float64, device=dev)
            a = a + a.t()
            a.fill_diagonal_(0.0)
            deg = a.sum(1)
            w = a / torch.where(deg > 0, deg, torch.ones_like(deg)).unsqueeze(1)
            g = self.damping
            w_uu = w[pruned][:, pruned]
            w_uk = w[pruned][:, kept]
            system = torch.eye(u, dtype=torch.float64, device=dev) - g * w_uu
            p = torch.linalg.solve(system, g * w_uk)
            p = p.clamp_min(0.0)
            rows = p.sum(1, keepdim=True)
            fallback = rows.squeeze(1) <= 1e-12
            weights = torch.where(fallback.unsqueeze(1), torch.zeros_like(p),
                                  p / torch.where(rows > 1e-12, rows, torch.ones_like(rows)))
            weights = weights.float()
        out = Propagation(pruned, weights, fallback, kept)
        self._cache[key] = out
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def prepare(self, node_index: Tensor) -> None:
        """Compute and cache the propagation weights of a kept set ahead of time."""
        self.propagation(node_index)

    def clear_cache(self) -> None:
        """Forget the cached propagation weights."""
        self._cache.clear()

    @torch.no_grad()
    def fit_ridge(self, series: Tensor, ridge: float = 1e-3, valid: Optional[Tensor] = None) -> "LiftHead":
        """Set the bound propagation to the ridge regression of pruned on kept sensors.

        For every pruned node ``u`` and feature ``f`` it solves
        ``min_w,b  sum_t (s[t, u, f] - w . s[t, kept, f] - b_f)^2 + lam |w|^2`` with one ``w`` per
        node shared by the features (features are centred separately and stacked), where
        ``lam = ridge * mean(diag(X^T X))`` so that ``ridge`` does not depend on the scale
        of the data. ``prop_weight`` gets ``w``, ``bias`` the intercepts and ``scale`` is
        reset to 1 for the pruned nodes. The result is a starting point; the parameters
        stay trainable.

        Args:
            series (Tensor): ``[T, N, F]`` (or ``[T, N]``) series on the scale of the forecasts
                (the normalised training series). Pass *training* steps only.
            ridge (float, optional): Relative ridge strength, ``>= 0`` (default: ``1e-3``).
            valid (Tensor, optional): Bool mask like ``series``. Steps with an invalid reading
                are left out when at least half of the steps (and ``2 K``) are complete;
                otherwise invalid readings are replaced by their node's mean (default: all valid).

        Returns:
            LiftHead: ``self``.
        """
        if self.prop_weight is None:
            raise RuntimeError("fit_ridge needs a bound head: build LiftHead(..., node_index=kept_ids)")
        if not isinstance(series, Tensor):
            raise TypeError(f"series must be a Tensor [T, N, F], got {type(series).__name__}")
        x = series.unsqueeze(-1) if series.dim() == 2 else series
        if x.dim() != 3 or x.size(1) != self.num_nodes or x.size(2) != self.features:
            raise ValueError(f"series must have shape [T, {self.num_nodes}, {self.features}], "
                             f"got {tuple(series.shape)}")
        if x.size(0) < 2:
            raise ValueError(f"series needs at least 2 time steps, got {x.size(0)}")
        if not float(ridge) >= 0.0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        x = x.detach().to(torch.float64).cpu()
        if valid is not None:
            v = (valid.unsqueeze(-1) if valid.dim() == 2 else valid).cpu()
            if v.shape != x.shape:
                raise ValueError(f"valid must have the shape of series {tuple(x.shape)}, got {tuple(valid.shape)}")
        else:
            v = torch.ones_like(x, dtype=torch.bool)
        v = v & torch.isfinite(x)
        kept, pruned = self.bound_node_index.cpu(), self.bound_pruned_index.cpu()
        full_rows = v.flatten(1).all(1)
        if int(full_rows.sum()) >= max(2 * kept.numel(), x.size(0) // 2):
            x, v = x[full_rows], v[full_rows]  # enough complete steps: fit on those only
        cnt = v.sum(0)
        mean = torch.where(v, x, torch.zeros_like(x)).sum(0) / cnt.clamp_min(1)
        x = torch.where(v, x, mean.expand_as(x))
        if pruned.numel() == 0:
            return self
        xc = (x - mean)  # [T, N, F], centred per node and feature
        a = xc[:, kept].permute(2, 0, 1).reshape(-1, kept.numel())      # [F*T, K]
        b = xc[:, pruned].permute(2, 0, 1).reshape(-1, pruned.numel())  # [F*T, U]
        w = ridge_solve(a.t() @ a, a.t() @ b, ridge).t()  # [U, K]
        bias = mean[pruned] - torch.einsum("uk,kf->uf", w, mean[kept])  # [U, F]
        dev = self.prop_weight.device
        self.prop_weight.copy_(w.to(device=dev, dtype=self.prop_weight.dtype))
        self.bias[pruned.to(dev)] = bias.to(device=dev, dtype=self.bias.dtype)
        self.scale[pruned.to(dev)] = 1.0
        return self

    def _apply(self, fn, *args, **kwargs):  # moving the module invalidates cached weights
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    # ------------------------------------------------------------------ forward
    def forward(self, y_kept: Tensor, node_index: Union[Tensor, Data, None] = None) -> Tensor:
        """Lift predictions to the full network.

        Args:
            y_kept (Tensor): ``[B, T, K, F]`` predictions on the kept nodes, in the order
                of ``node_index``; or node-first ``[B*K, T, F]`` when ``node_index`` is a
                PyG batch.
            node_index (Tensor or Data, optional): ``[K]`` kept node ids; ``None`` means all
                ``N`` nodes in order, or the bound kept set. A PyG ``Data``/``Batch`` of
                windows gives them as its ``n_id`` (see :mod:`dynst_pyg.models.batching`);
                the result is then node-first too, ``[B*N, T, F]`` (default: ``None``).

        Returns:
            Tensor: ``[B, T, N, F]``, or ``[B*N, T, F]`` for a PyG batch.
        """
        if isinstance(node_index, Data):
            b, _, ids = window_layout(node_index)
            if ids is None:
                raise ValueError("LiftHead: the batch has no n_id (the kept node ids); apply DynSTMask to the "
                                 "windows or pass node_index as a tensor")
            return to_node_first(self.forward(to_dense_windows(y_kept, b), ids))
        if not isinstance(y_kept, Tensor) or y_kept.dim() != 4:
            raise ValueError(f"y_kept must be a [B, T, K, F] tensor, got "
                             f"{tuple(y_kept.shape) if isinstance(y_kept, Tensor) else type(y_kept).__name__}")
        b, t, k, f = y_kept.shape
        if f != self.features:
            raise ValueError(f"y_kept has {f} features (last dim) but LiftHead was built with features={self.features}")
        if self.prop_weight is not None:
            kept = self.bound_node_index
            if (node_index is not None and values_checkable()
                    and not torch.equal(node_index.to(kept.device).long(), kept)):
                raise ValueError("this LiftHead is bound to one kept set (built with node_index=...) and "
                                 "node_index differs from it; build a head for the new kept set")
            if k != kept.numel():
                raise ValueError(f"y_kept has K={k} nodes but the head is bound to {kept.numel()} kept nodes")
            pruned, weights = self.bound_pruned_index, self.prop_weight
            fallback = None  # a bound head has no pruned sensor without a kept neighbour
        else:
            if node_index is None:
                if k != self.num_nodes:
                    raise ValueError(f"y_kept has K={k} nodes but num_nodes={self.num_nodes}; pass node_index")
                node_index = torch.arange(k, device=y_kept.device)
            self._check_node_index(node_index, k)
            pruned, weights, fallback, kept = self.propagation(node_index)
        kept = kept.to(y_kept.device)
        out_kept = y_kept
        if self.kept_bias is not None:
            out_kept = out_kept + self.kept_bias[kept]
        if pruned.numel() == 0:
            return out_kept.index_select(2, torch.argsort(kept))
        pruned = pruned.to(y_kept.device)
        weights = weights.to(device=y_kept.device, dtype=y_kept.dtype)
        prop = torch.matmul(weights, y_kept)  # [B, T, U, F]
        if fallback is not None and (not values_checkable() or bool(fallback.any())):  # traced: always
            fb = fallback.to(y_kept.device).view(1, 1, -1, 1)
            prop = torch.where(fb, y_kept.mean(dim=2, keepdim=True), prop)
        out_pruned = prop * self.scale[pruned] + self.bias[pruned]
        if self.mlp is not None:
            emb = self.node_emb[pruned].expand(b, t, -1, -1)
            out_pruned = out_pruned + self.mlp(torch.cat([prop, emb], dim=-1))
        out = y_kept.new_zeros(b, t, self.num_nodes, f)
        out = out.index_copy(2, kept, out_kept)
        return out.index_copy(2, pruned, out_pruned)

    def extra_repr(self) -> str:
        bound = "" if self.bound_node_index is None else f", kept={self.bound_node_index.numel()} (bound)"
        return (f"num_nodes={self.num_nodes}, features={self.features}, damping={self.damping}, "
                f"residual={self.residual}, hidden={self.hidden}{bound}")


def _rename_bound_buffers(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                          error_msgs) -> None:
    """Loads state dicts written when the bound kept set was stored as ``bound_kept``/``bound_pruned``."""
    for old, new in (("bound_kept", "bound_node_index"), ("bound_pruned", "bound_pruned_index")):
        if prefix + old in state_dict and prefix + new not in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)
