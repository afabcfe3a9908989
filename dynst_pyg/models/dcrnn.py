"""DCRNN (Li et al., ICLR 2018): a sequence-to-sequence model of diffusion-convolutional GRUs.

Maths (paper): the diffusion convolution of a signal ``X`` on a directed graph is the
K-step dual random walk

    ``sum_{k=0..K} ( P_f^k X W_{k,f} + P_b^k X W_{k,b} )``

with ``P_f = D_out^{-1} A`` and ``P_b = D_in^{-1} A^T`` (here in the support convention
of :mod:`dynst_pyg.models.supports`, one step being ``x' = S @ x``; the ``k = 0`` terms
share one weight). Powers are used as in the paper (the reference TensorFlow/PyTorch
code uses the Chebyshev-like recursion ``2 S x_{k-1} - x_{k-2}`` instead). A GRU whose
matrix products are replaced by this convolution is the DCGRU cell; an encoder of
``num_layers`` stacked cells reads the history, a decoder of the same shape starts
from a zero "GO" frame and feeds back its own prediction (or, with scheduled sampling,
the ground truth with probability ``teacher_forcing_ratio``), and a linear projection
maps the top hidden state to ``F_out`` features per node and step.

Batched, node-first: hidden states are ``[K, B, H]`` so one diffusion step for the
whole batch is one product ``S @ h.view(K, B * H)`` with ``S`` dense or sparse CSR.
Supports are rebuilt from the (sub-)graph given to ``forward``, cached by tensor
identity, and safe for isolated nodes (zero rows). DCRNN has no node-specific
parameters, so ``node_index`` is validated but otherwise not needed.

Why an own cell and not PyG-Temporal's ``DCRNN``/``BatchedDCRNN``: on a weighted
directed graph their ``DConv`` disagrees with the dense dual random walk (the edge weight
enters the degree but not the message, the reverse walk drops the reverse edges'
weights, steps ``k >= 2`` use ``2 S x_{k-1} - x_0`` instead of a power of ``S``, and an
isolated node gives non-finite output).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from .batching import accepts_batch
from .diffusion import DiffusionConv, TransitionSupports
from .._checks import check_graph, check_positive_ints
from .supports import check_forward_inputs

__all__ = ["DCRNN", "DCGRUCell", "DiffusionConv", "DCRNN_PROFILES", "scheduled_sampling_ratio"]

#: Named hyperparameter sets. ``reference`` is the paper's METR-LA configuration.
DCRNN_PROFILES: Dict[str, Dict[str, int]] = {
    "reference": dict(hidden=64, num_layers=2, diffusion_steps=2),
    "small": dict(hidden=32, num_layers=2, diffusion_steps=2),
}

def scheduled_sampling_ratio(step: int, decay: float = 2000.0) -> float:
    """Inverse-sigmoid teacher-forcing probability ``decay / (decay + exp(step / decay))``.

    Args:
        step (int): number of optimiser steps taken so far.
        decay (float, optional): decay constant (default: ``2000.0``).

    Returns:
        float: probability of feeding the ground truth to the decoder.
    """
    if decay <= 0:
        raise ValueError(f"decay must be > 0, got {decay}")
    return decay / (decay + math.exp(min(step / decay, 700.0)))


class DCGRUCell(nn.Module):
    """GRU cell whose matrix products are diffusion convolutions.

    Args:
        in_channels (int): input channels per node.
        hidden (int): hidden channels per node.
        num_supports (int): number of supports.
        diffusion_steps (int, optional): ``K`` (default: ``2``).
    """

    def __init__(self, in_channels: int, hidden: int, num_supports: int, diffusion_steps: int = 2) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = DiffusionConv(in_channels + hidden, 2 * hidden, num_supports, diffusion_steps, bias_init=1.0)
        self.candidate = DiffusionConv(in_channels + hidden, hidden, num_supports, diffusion_steps)

    def forward(self, x: Tensor, h: Tensor, supports: List[Tensor]) -> Tensor:
        """Args: ``x`` ``[K, B, C_in]``, ``h`` ``[K, B, H]``. Returns the new ``h``."""
        ru = torch.sigmoid(self.gates(torch.cat([x, h], dim=-1), supports))
        r, u = ru.split(self.hidden, dim=-1)
        c = torch.tanh(self.candidate(torch.cat([x, r * h], dim=-1), supports))
        return u * h + (1.0 - u) * c


class DCRNN(nn.Module):
    r"""DCRNN forecaster following the ``[B, T_in, K, F] -> [B, T_out, K, F_out]`` interface.

    Args:
        num_nodes (int): size ``N`` of the full network (validates ``node_index``).
        in_features (int, optional): input features ``F`` (default: ``1``).
        out_features (int, optional): output features ``F_out`` (default: ``1``).
        t_in (int, optional): input window length (default: ``12``).
        t_out (int, optional): forecast horizon (default: ``12``).
        profile (str, optional): ``"small"`` or ``"reference"`` (default: ``"small"``).
        hidden (int, optional): hidden units per node (default: from profile).
        num_layers (int, optional): stacked DCGRU layers in encoder and decoder (default: from profile).
        diffusion_steps (int, optional): ``K`` of the diffusion convolution (default: from profile).
        support_kind (str, optional): ``"dual"`` or ``"forward"`` random walk (default: ``"dual"``).
        sparse_supports (bool or str, optional): ``True``/``False``/``"auto"`` CSR storage of
            supports, see :func:`~dynst_pyg.models.supports.to_support_format` (default: ``"auto"``).
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
        hidden: Optional[int] = None,
        num_layers: Optional[int] = None,
        diffusion_steps: Optional[int] = None,
        support_kind: str = "dual",
        sparse_supports: "bool | str" = "auto",
    ) -> None:
        super().__init__()
        if profile not in DCRNN_PROFILES:
            raise ValueError(f"profile must be one of {sorted(DCRNN_PROFILES)}, got {profile!r}")
        check_positive_ints(num_nodes=num_nodes, in_features=in_features, out_features=out_features,
                            t_in=t_in, t_out=t_out)
        if support_kind not in ("dual", "forward"):
            raise ValueError(f"support_kind must be 'dual' or 'forward', got {support_kind!r}")
        if sparse_supports not in (True, False, "auto"):
            raise ValueError(f"sparse_supports must be True, False or 'auto', got {sparse_supports!r}")
        hp = dict(DCRNN_PROFILES[profile])
        for k, v in (("hidden", hidden), ("num_layers", num_layers), ("diffusion_steps", diffusion_steps)):
            if v is not None:
                hp[k] = v
        if hp["hidden"] < 1 or hp["num_layers"] < 1 or hp["diffusion_steps"] < 0:
            raise ValueError(f"need hidden >= 1, num_layers >= 1, diffusion_steps >= 0, got {hp}")
        self.hparams = hp
        self.profile = profile
        self.num_nodes = num_nodes
        self.in_features = in_features
        self.out_features = out_features
        self.t_in = t_in
        self.t_out = t_out
        self.support_kind = support_kind
        self.sparse_supports = sparse_supports
        self.hidden = hp["hidden"]
        self.num_layers = hp["num_layers"]
        self.num_supports = 2 if support_kind == "dual" else 1
        h, m, k = self.hidden, self.num_supports, hp["diffusion_steps"]
        self.encoder = nn.ModuleList(
            [DCGRUCell(in_features if i == 0 else h, h, m, k) for i in range(self.num_layers)])
        self.decoder = nn.ModuleList(
            [DCGRUCell(out_features if i == 0 else h, h, m, k) for i in range(self.num_layers)])
        self.projection = nn.Linear(h, out_features)
        self.support_cache = TransitionSupports(support_kind, sparse_supports)

    # ------------------------------------------------------------------ graph side
    def prepare_graph(self, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                      node_index: Optional[Tensor] = None, *, num_nodes: Optional[int] = None,
                      device: Optional[torch.device] = None,
                      dtype: torch.dtype = torch.float32) -> List[Tensor]:
        """Build (and cache) the supports of a graph ahead of the first forward.

        Args:
            edge_index (Tensor): ``[2, E]`` graph (ids ``0..K-1``).
            edge_weight (Tensor, optional): ``[E]`` weights (default: ``None``).
            node_index (Tensor, optional): ``[K]`` original ids; fixes ``K`` (default: ``None``).
            num_nodes (int, optional): ``K`` when ``node_index`` is ``None`` (default: ``num_nodes``).
            device (torch.device, optional): (default: ``edge_index.device``).
            dtype (torch.dtype, optional): (default: ``torch.float32``).

        Returns:
            list[Tensor]: the supports, dense or CSR.
        """
        k = node_index.numel() if node_index is not None else (num_nodes or self.num_nodes)
        check_graph(edge_index, edge_weight, k)
        return self.support_cache(edge_index, edge_weight, k, device=device, dtype=dtype)

    def clear_graph_cache(self) -> None:
        """Drop every cached support."""
        self.support_cache.clear()

    # ------------------------------------------------------------------ network
    def forward_with_supports(self, x: Tensor, supports: List[Tensor], *, targets: Optional[Tensor] = None,
                              teacher_forcing_ratio: float = 0.0) -> Tensor:
        """Run encoder and decoder with explicit supports (``[K, K]`` each). See :meth:`forward`."""
        b, t, k, _ = x.shape
        if len(supports) != self.num_supports:
            raise ValueError(f"supports must hold {self.num_supports} matrices, got {len(supports)}")
        xs = x.permute(1, 2, 0, 3)  # [T, K, B, F]
        hs = [x.new_zeros(k, b, self.hidden) for _ in range(self.num_layers)]
        for step in range(t):
            inp = xs[step]
            for layer, cell in enumerate(self.encoder):
                hs[layer] = cell(inp, hs[layer], supports)
                inp = hs[layer]
        use_teacher = targets is not None and self.training and teacher_forcing_ratio > 0
        if use_teacher:
            assert targets is not None
            if tuple(targets.shape) != (b, self.t_out, k, self.out_features):
                raise ValueError(f"targets must have shape [B, T_out, K, F_out] = "
                                 f"{[b, self.t_out, k, self.out_features]}, got {list(targets.shape)}")
            tgt = targets.permute(1, 2, 0, 3)
        go = x.new_zeros(k, b, self.out_features)
        outs = []
        for step in range(self.t_out):
            inp = go
            for layer, cell in enumerate(self.decoder):
                hs[layer] = cell(inp, hs[layer], supports)
                inp = hs[layer]
            out = self.projection(inp)
            outs.append(out)
            if use_teacher and float(torch.rand(())) < teacher_forcing_ratio:
                go = tgt[step]
            else:
                go = out
        return torch.stack(outs, dim=0).permute(2, 0, 1, 3).contiguous()  # [B, T_out, K, F_out]

    @accepts_batch(node_first=("targets",))
    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                node_index: Optional[Tensor] = None, *, targets: Optional[Tensor] = None,
                teacher_forcing_ratio: float = 0.0) -> Tensor:
        """Forecast.

        Args:
            x (Tensor): ``[B, T_in, K, F]`` normalised history, or a PyG ``Data``/``Batch`` of
                node-first windows passed alone (then the graph, ``node_index = n_id`` and, if
                given, ``targets`` come node-first like ``batch.y``, and so does the forecast,
                ``[B*K, T_out, F_out]``; see :mod:`dynst_pyg.models.batching`).
            edge_index (Tensor): ``[2, E]`` graph on the present nodes (ids ``0..K-1``).
            edge_weight (Tensor, optional): ``[E]`` non-negative weights (default: ``None``).
            node_index (Tensor, optional): ``[K]`` original ids, required when
                ``K != num_nodes`` (default: ``None``).
            targets (Tensor, optional): ``[B, T_out, K, F_out]`` *normalised* targets for
                scheduled sampling; used only in training mode (default: ``None``).
            teacher_forcing_ratio (float, optional): probability of feeding the true
                previous frame to the decoder at each step, see
                :func:`scheduled_sampling_ratio` (default: ``0.0``).

        Returns:
            Tensor: ``[B, T_out, K, F_out]`` normalised forecast.
        """
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
        k = check_forward_inputs(x, edge_index, edge_weight, node_index, num_nodes=self.num_nodes,
                                 in_features=self.in_features, model="DCRNN")
        supports = self.prepare_graph(edge_index, edge_weight, node_index, num_nodes=k, device=x.device,
                                      dtype=x.dtype)
        return self.forward_with_supports(x, supports, targets=targets, teacher_forcing_ratio=teacher_forcing_ratio)

    def extra_repr(self) -> str:
        return (f"num_nodes={self.num_nodes}, in_features={self.in_features}, out_features={self.out_features}, "
                f"t_in={self.t_in}, t_out={self.t_out}, profile={self.profile!r}, hidden={self.hidden}, "
                f"num_layers={self.num_layers}, diffusion_steps={self.hparams['diffusion_steps']}")
