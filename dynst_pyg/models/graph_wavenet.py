"""Graph WaveNet (Wu et al., IJCAI 2019) on any sub-graph of a sensor network.

The maths follows the paper: a stack of gated, dilated temporal convolutions
(``tanh(filter) * sigmoid(gate)``), each followed by a diffusion graph convolution over
the forward/backward random-walk transition matrices of the graph and the *adaptive*
adjacency ``softmax(ReLU(E1 E2^T))``, residual and skip connections, and a two-layer
output MLP that emits all ``T_out * F_out`` values at once.

Sub-graph behaviour:

* transition matrices are rebuilt from the graph passed to ``forward`` (the sub-graph),
  never sliced from the full normalised ones; isolated nodes get zero rows;
* the node embeddings are sliced with ``node_index``: the adaptive adjacency on the kept
  set is ``softmax(ReLU(E1[idx] E2[idx]^T))``, which is exactly the row-renormalised
  restriction of the full adaptive adjacency;
* nothing else couples nodes, so a run on the sub-graph equals a run on the full graph
  whenever the pruned nodes are disconnected islands (tested).

Implementation notes (same maths as the paper, arranged for CPU speed):

* activations are node-first ``[K, B, T, C]``, so a graph diffusion step is a single
  matrix product ``S @ h.view(K, -1)`` (dense, or sparse CSR for the sparse road graphs);
* temporal convolutions with kernel ``(kernel_size, 1)`` are ``Linear`` layers over the
  dilated taps concatenated on the channel axis (filter and gate fused);
* the graph convolution ``W [h, S h, S^2 h, ...]`` is the shared
  :class:`~dynst_pyg.models.diffusion.DiffusionConv`, which applies the weight blocks first
  and diffuses by Horner's rule (channel and node mixing commute), avoiding the concatenation;
* only the positions that reach the output are computed on the skip path, and the last
  layer's graph convolution (whose output the original computes and discards) is skipped.

Receptive field: ``1 + blocks * (kernel_size - 1) * (2^layers - 1)``; 13 for the
reference profile (4 blocks x 2 layers, kernel 2) and 7 for the small profile
(2 blocks x 2 layers). An input shorter than the receptive field is zero-padded on the
left as in the original code. When the input is longer, the temporal stack leaves
``T_in - RF + 1`` positions and the last output convolution spans all of them (kernel
``(T_in - RF + 1, 1)``), which reduces to the original 1x1 convolution when
``T_in <= RF``.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .batching import accepts_batch
from .diffusion import DiffusionConv, TransitionSupports
from .._checks import check_graph, check_positive_int, check_positive_ints
from .supports import check_forward_inputs

__all__ = ["GraphWaveNet", "GWNET_PROFILES"]

#: Named hyperparameter sets. ``reference`` is the paper's METR-LA configuration.
GWNET_PROFILES: Dict[str, Dict[str, float]] = {
    "reference": dict(residual_channels=32, dilation_channels=32, skip_channels=256,
                      end_channels=512, blocks=4, layers=2, kernel_size=2, order=2,
                      dropout=0.3, embedding_dim=10),
    "small": dict(residual_channels=16, dilation_channels=16, skip_channels=64,
                  end_channels=128, blocks=2, layers=2, kernel_size=2, order=2,
                  dropout=0.3, embedding_dim=10),
}


class GraphWaveNet(nn.Module):
    r"""Graph WaveNet forecaster following the ``[B, T_in, K, F] -> [B, T_out, K, F_out]`` interface.

    Args:
        num_nodes (int): size ``N`` of the *full* network (rows of the node embeddings).
        in_features (int, optional): input features ``F`` per node and step (default: ``1``).
        out_features (int, optional): output features ``F_out`` (default: ``1``).
        t_in (int, optional): input window length (default: ``12``).
        t_out (int, optional): forecast horizon (default: ``12``).
        profile (str, optional): ``"small"`` or ``"reference"``; explicit keyword
            hyperparameters below override the profile (default: ``"small"``).
        residual_channels (int, optional): residual width (default: from profile).
        dilation_channels (int, optional): gated TCN width (default: from profile).
        skip_channels (int, optional): skip width (default: from profile).
        end_channels (int, optional): hidden width of the output MLP (default: from profile).
        blocks (int, optional): number of blocks (default: from profile).
        layers (int, optional): layers per block, dilation doubling 1, 2, 4, ... (default: from profile).
        kernel_size (int, optional): temporal kernel size (default: from profile).
        order (int, optional): diffusion steps per support (default: from profile).
        dropout (float, optional): dropout after each graph convolution (default: from profile).
        embedding_dim (int, optional): adaptive-adjacency embedding size (default: from profile).
        adaptive_adjacency (bool, optional): use ``softmax(ReLU(E1 E2^T))`` (default: ``True``).
        graph_supports (bool, optional): use the forward/backward transition matrices of
            the given graph (default: ``True``).
        support_kind (str, optional): ``"dual"`` (forward and backward walks) or
            ``"forward"`` (default: ``"dual"``).
        sparse_supports (bool or str, optional): store the graph supports as sparse CSR
            (``True``), dense (``False``) or decide by density, CSR below 20 % non-zeros
            (``"auto"``). Results are the same to float tolerance; CSR is faster on road
            graphs (default: ``"auto"``).

    Example:
        >>> model = GraphWaveNet(num_nodes=207, profile="small").eval()
        >>> y = model(x, edge_index, edge_weight)                      # full graph
        >>> y_small = model(x[:, :, keep], sub_ei, sub_ew, node_index=keep)  # sub-graph
    """

    def __init__(
        self,
        num_nodes: int,
        in_features: int = 1,
        out_features: int = 1,
        t_in: int = 12,
        t_out: int = 12,
        profile: str = "small",
        *,
        residual_channels: Optional[int] = None,
        dilation_channels: Optional[int] = None,
        skip_channels: Optional[int] = None,
        end_channels: Optional[int] = None,
        blocks: Optional[int] = None,
        layers: Optional[int] = None,
        kernel_size: Optional[int] = None,
        order: Optional[int] = None,
        dropout: Optional[float] = None,
        embedding_dim: Optional[int] = None,
        adaptive_adjacency: bool = True,
        graph_supports: bool = True,
        support_kind: str = "dual",
        sparse_supports: "bool | str" = "auto",
        adaptive_topk: Optional[int] = None,
    ) -> None:
        super().__init__()
        if profile not in GWNET_PROFILES:
            raise ValueError(f"profile must be one of {sorted(GWNET_PROFILES)}, got {profile!r}")
        check_positive_ints(num_nodes=num_nodes, in_features=in_features, out_features=out_features,
                            t_in=t_in, t_out=t_out)
        if not (adaptive_adjacency or graph_supports):
            raise ValueError("at least one of adaptive_adjacency and graph_supports must be True")
        if support_kind not in ("dual", "forward"):
            raise ValueError(f"support_kind must be 'dual' or 'forward', got {support_kind!r}")
        hp = dict(GWNET_PROFILES[profile])
        overrides = dict(residual_channels=residual_channels, dilation_channels=dilation_channels,
                         skip_channels=skip_channels, end_channels=end_channels, blocks=blocks,
                         layers=layers, kernel_size=kernel_size, order=order, dropout=dropout,
                         embedding_dim=embedding_dim)
        hp.update({k: v for k, v in overrides.items() if v is not None})
        for k in ("residual_channels", "dilation_channels", "skip_channels", "end_channels",
                  "blocks", "layers", "kernel_size", "order", "embedding_dim"):
            if int(hp[k]) < 1:
                raise ValueError(f"{k} must be >= 1, got {hp[k]!r}")
        if not 0.0 <= float(hp["dropout"]) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {hp['dropout']!r}")
        self.hparams = hp
        self.profile = profile
        self.num_nodes = num_nodes
        self.in_features = in_features
        self.out_features = out_features
        self.t_in = t_in
        self.t_out = t_out
        self.adaptive_adjacency = adaptive_adjacency
        self.graph_supports = graph_supports
        self.support_kind = support_kind
        self.order = int(hp["order"])
        self.dropout = float(hp["dropout"])

        rc, dc = int(hp["residual_channels"]), int(hp["dilation_channels"])
        sc, ec = int(hp["skip_channels"]), int(hp["end_channels"])
        ks = int(hp["kernel_size"])
        self.kernel_size = ks
        self.num_supports = (2 if support_kind == "dual" else 1) * int(graph_supports) + int(adaptive_adjacency)
        if sparse_supports not in (True, False, "auto"):
            raise ValueError(f"sparse_supports must be True, False or 'auto', got {sparse_supports!r}")
        self.sparse_supports = sparse_supports

        # Temporal convolutions with kernel (ks, 1) are written as Linear layers over the
        # ks dilated taps concatenated on the channel axis (filter and gate fused).
        self.start_conv = nn.Linear(in_features, rc)
        self.filter_gate = nn.ModuleList()
        self.skip_convs = nn.ModuleList()
        self.gconvs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self.dilations: List[int] = []
        rf = 1
        for _ in range(int(hp["blocks"])):
            d = 1
            for _ in range(int(hp["layers"])):
                self.dilations.append(d)
                self.filter_gate.append(nn.Linear(ks * rc, 2 * dc))
                self.skip_convs.append(nn.Linear(dc, sc))
                self.gconvs.append(DiffusionConv(dc, rc, self.num_supports, self.order, project_first=True,
                                                 init="linear"))
                self.bns.append(nn.BatchNorm1d(rc))
                rf += (ks - 1) * d
                d *= 2
        # The last layer's graph convolution / residual / batch norm never reach the
        # output (only its skip branch does), so they are not built.
        del self.gconvs[-1]
        del self.bns[-1]
        self.receptive_field = rf
        self.padded_length = max(t_in, rf)
        self.final_length = self.padded_length - rf + 1
        self.end_conv_1 = nn.Linear(sc, ec)
        self.end_conv_2 = nn.Linear(self.final_length * ec, t_out * out_features)
        if adaptive_adjacency:
            e = int(hp["embedding_dim"])
            self.node_emb_source = nn.Parameter(torch.randn(num_nodes, e))  # E1
            self.node_emb_target = nn.Parameter(torch.randn(num_nodes, e))  # E2
        else:
            self.register_parameter("node_emb_source", None)
            self.register_parameter("node_emb_target", None)
        self.adaptive_topk = check_positive_int(adaptive_topk, "adaptive_topk", allow_none=True)
        self.support_cache = TransitionSupports(support_kind, sparse_supports)
        self.register_load_state_dict_pre_hook(_rename_linear_gconvs)

    # ------------------------------------------------------------------ graph side
    #: elements of one block of logits rows (``rows * K``) in the top-k scan
    TOPK_BLOCK_ELEMENTS = 1 << 22

    def adaptive_support(self, node_index: Optional[Tensor] = None) -> Tensor:
        """Adaptive support ``S_adp = softmax(ReLU(E1 E2^T), dim=1)^T`` on the given nodes.

        With ``adaptive_topk = k`` each row of the softmax keeps only its ``k`` largest entries
        (renormalised) and the support is a sparse COO tensor with ``K min(k, K)`` entries.

        Args:
            node_index (Tensor, optional): ``[K]`` original ids of the present nodes;
                all ``N`` nodes if ``None`` (default: ``None``).

        Returns:
            Tensor: ``[K, K]`` support (one step is ``x' = S @ x``).
        """
        if not self.adaptive_adjacency:
            raise RuntimeError("this GraphWaveNet was built with adaptive_adjacency=False")
        e1, e2 = self.node_emb_source, self.node_emb_target
        if node_index is not None:
            idx = node_index.to(e1.device)
            e1, e2 = e1[idx], e2[idx]
        if self.adaptive_topk is None:
            return torch.softmax(F.relu(e1 @ e2.t()), dim=1).t()
        k_nodes = e1.size(0)
        k = min(self.adaptive_topk, k_nodes)
        rows = max(1, self.TOPK_BLOCK_ELEMENTS // k_nodes)
        with torch.no_grad():  # which columns each row keeps: one [rows, K] block of logits at a time
            cols = torch.cat([torch.topk(F.relu(e1[r:r + rows] @ e2.t()), k, dim=1).indices
                              for r in range(0, k_nodes, rows)])
        logits = F.relu((e1.unsqueeze(1) * e2[cols]).sum(-1))  # [K, k]: the kept logits, with gradients
        weights = torch.softmax(logits, dim=1)
        src = torch.arange(k_nodes, device=e1.device).repeat_interleave(k)
        # support = P^T: entry (target j, source i) holds P[i, j]
        return torch.sparse_coo_tensor(torch.stack([cols.reshape(-1), src]), weights.reshape(-1),
                                       (k_nodes, k_nodes), check_invariants=False).coalesce()

    def graph_supports_for(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int,
                           *, device: Optional[torch.device] = None,
                           dtype: torch.dtype = torch.float32) -> List[Tensor]:
        """Fixed (graph) supports of a ``num_nodes``-node graph, cached by tensor identity."""
        if not self.graph_supports:
            return []
        return self.support_cache(edge_index, edge_weight, num_nodes, device=device, dtype=dtype)

    def prepare_graph(self, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                      node_index: Optional[Tensor] = None, *, num_nodes: Optional[int] = None,
                      device: Optional[torch.device] = None,
                      dtype: torch.dtype = torch.float32) -> List[Tensor]:
        """Build (and cache) the fixed supports of a graph ahead of the first forward.

        Later forwards with the same ``edge_index``/``edge_weight`` objects reuse them.

        Args:
            edge_index (Tensor): ``[2, E]`` graph (sub-graph indices relabelled to ``0..K-1``).
            edge_weight (Tensor, optional): ``[E]`` weights (default: ``None``).
            node_index (Tensor, optional): ``[K]`` original ids; fixes ``K`` (default: ``None``).
            num_nodes (int, optional): ``K`` when ``node_index`` is ``None``
                (default: the full ``num_nodes``).
            device (torch.device, optional): where supports live (default: ``edge_index.device``).
            dtype (torch.dtype, optional): support dtype (default: ``torch.float32``).

        Returns:
            list[Tensor]: the fixed supports (empty if ``graph_supports=False``).
        """
        k = node_index.numel() if node_index is not None else (num_nodes or self.num_nodes)
        check_graph(edge_index, edge_weight, k)
        return self.graph_supports_for(edge_index, edge_weight, k, device=device, dtype=dtype)

    def clear_graph_cache(self) -> None:
        """Drop every cached support."""
        self.support_cache.clear()

    def supports(self, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                 node_index: Optional[Tensor] = None, *, num_nodes: Optional[int] = None,
                 device: Optional[torch.device] = None,
                 dtype: torch.dtype = torch.float32) -> List[Tensor]:
        """All supports used by ``forward``: fixed graph supports then the adaptive one."""
        k = node_index.numel() if node_index is not None else (num_nodes or self.num_nodes)
        sup = list(self.graph_supports_for(edge_index, edge_weight, k, device=device, dtype=dtype))
        if self.adaptive_adjacency:
            sup.append(self.adaptive_support(node_index).to(dtype))
        return sup

    # ------------------------------------------------------------------ network
    def forward_with_supports(self, x: Tensor, supports: List[Tensor]) -> Tensor:
        """Run the network with explicit supports (``[K, K]`` each, ``x' = S @ x``).

        ``forward`` builds the supports and calls this; it is public so that callers
        (and tests) can substitute supports.

        Args:
            x (Tensor): ``[B, T_in, K, F]`` input.
            supports (list[Tensor]): ``num_supports`` dense or sparse-CSR matrices of
                shape ``[K, K]`` (graph supports first, adaptive last).

        Returns:
            Tensor: ``[B, T_out, K, F_out]``.
        """
        if len(supports) != self.num_supports:
            raise ValueError(f"supports must hold {self.num_supports} matrices, got {len(supports)}")
        b, t, k, _ = x.shape
        for s in supports:
            if tuple(s.shape) != (k, k):
                raise ValueError(f"each support must have shape [K, K] = [{k}, {k}], got {tuple(s.shape)}")
        h = x.permute(2, 0, 1, 3)  # node-first [K, B, T, F]
        if t < self.receptive_field:
            h = F.pad(h, (0, 0, self.receptive_field - t, 0))
        h = self.start_conv(h)
        fl = self.final_length
        ks = self.kernel_size
        skip: Optional[Tensor] = None
        n_layers = len(self.filter_gate)
        for i, d in enumerate(self.dilations):
            residual = h
            length = h.size(2) - (ks - 1) * d
            taps = torch.cat([h[:, :, j * d: j * d + length] for j in range(ks)], dim=-1) if ks > 1 else h
            fg = self.filter_gate[i](taps)
            filt, gate = fg.chunk(2, dim=-1)
            h = torch.tanh(filt) * torch.sigmoid(gate)
            # only the last `final_length` positions of the skip path reach the output
            s = self.skip_convs[i](h[:, :, -fl:])
            skip = s if skip is None else s + skip
            if i == n_layers - 1:
                break
            h = F.dropout(self.gconvs[i](h.contiguous(), supports), self.dropout, training=self.training)
            h = h + residual[:, :, -length:]
            c = h.size(-1)
            h = self.bns[i](h.reshape(-1, c)).view(h.shape)
        assert skip is not None
        h = F.relu(self.end_conv_1(F.relu(skip)))  # [K, B, fl, ec]
        h = self.end_conv_2(h.reshape(k, b, -1))  # [K, B, T_out * F_out]
        return h.view(k, b, self.t_out, self.out_features).permute(1, 2, 0, 3).contiguous()

    @accepts_batch()
    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                node_index: Optional[Tensor] = None) -> Tensor:
        """Forecast.

        Args:
            x (Tensor): ``[B, T_in, K, F]`` normalised history of the present nodes, or a PyG
                ``Data``/``Batch`` of node-first windows passed alone (the graph and
                ``node_index = n_id`` then come from the batch, and the forecast is returned
                node-first, ``[B*K, T_out, F_out]``; see :mod:`dynst_pyg.models.batching`).
            edge_index (Tensor): ``[2, E]`` graph on the present nodes (ids ``0..K-1``).
            edge_weight (Tensor, optional): ``[E]`` non-negative weights (default: ``None``).
            node_index (Tensor, optional): ``[K]`` original ids of the present nodes;
                required when ``K != num_nodes`` (default: ``None``).

        Returns:
            Tensor: ``[B, T_out, K, F_out]`` normalised forecast.
        """
        k = check_forward_inputs(x, edge_index, edge_weight, node_index, num_nodes=self.num_nodes,
                                 in_features=self.in_features, t_in=self.t_in, model="GraphWaveNet")
        sup = self.supports(edge_index, edge_weight, node_index, num_nodes=k, device=x.device, dtype=x.dtype)
        return self.forward_with_supports(x, sup)

    def extra_repr(self) -> str:
        return (f"num_nodes={self.num_nodes}, in_features={self.in_features}, out_features={self.out_features}, "
                f"t_in={self.t_in}, t_out={self.t_out}, profile={self.profile!r}, "
                f"receptive_field={self.receptive_field}, supports={self.num_supports}")


def _rename_linear_gconvs(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                          error_msgs) -> None:
    """Loads state dicts written when the graph convolutions were ``Linear`` layers (``gconv_mlps``).

    ``gconv_mlps.{i}.weight`` (``[C_out, (1 + M K) C_in]``) becomes ``gconvs.{i}.weight``
    transposed; the bias is unchanged.
    """
    old = prefix + "gconv_mlps."
    for key in [k for k in state_dict if k.startswith(old)]:
        value = state_dict.pop(key)
        new = prefix + "gconvs." + key[len(old):]
        state_dict[new] = value.t() if new.endswith(".weight") else value
