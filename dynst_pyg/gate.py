"""``SensorGate``: one learnable gate per sensor on the model's input history.

The gate multiplies the normalised input ``x [B, T_in, N, F]`` by ``g_i * a_i`` for
sensor ``i``, where ``g`` is a learnable real gate and ``a`` a binary *support* (the
active set) decided by a schedule. One gate is shared by every time step and feature
of a sensor ("stream morph"), so the mask can never disagree between time steps, and a
pruned sensor's input is exactly ``0``.

While the model trains, the gate keeps two running statistics per sensor, both
exponential moving averages over steps ("dynamic merge"):

* **saliency** ``s_i = sum_{b,t,f} |x~ * dL/dx~|`` of the gated input ``x~`` (a
  first-order estimate of the loss change if the sensor's stream were zeroed), divided
  by the batch size;
* **regrow score** ``r_i = |sum_{b,t,f} x * dL/dx~|`` with the *dense* (un-gated) input
  ``x``: this is ``|dL/d(g_i a_i)|``, the gradient of the loss with respect to the
  sensor's effective gate, which for an inactive sensor is evaluated at gate ``0``
  (RigL-style regrowth: the sensor whose re-activation would reduce the loss fastest).

:meth:`SensorGate.importance` combines normalised saliency with the gate magnitude.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


class SensorGate(nn.Module):
    """Learnable per-sensor gate with a binary support and importance statistics.

    Args:
        num_nodes (int): Sensors ``N`` of the full network.
        init (float, optional): Initial gate value (default: ``1.0``).
        ema (float, optional): Decay of the saliency / regrow moving averages in ``[0, 1)``
            (default: ``0.9``).
        gate_weight (float, optional): Weight of the gate magnitude in :meth:`importance`;
            ``0`` uses saliency only, ``1`` magnitude only (default: ``0.3``).
        indicator (bool, optional): Append a channel that is ``1`` for active and ``0``
            for pruned sensors, so the model can tell "pruned" from "reading 0"
            (default: :obj:`False`; the backbone then needs ``F + 1`` input features).
    """

    def __init__(self, num_nodes: int, init: float = 1.0, ema: float = 0.9, gate_weight: float = 0.3,
                 indicator: bool = False) -> None:
        super().__init__()
        if not isinstance(num_nodes, int) or num_nodes < 1:
            raise ValueError(f"`num_nodes` must be a positive integer, got {num_nodes!r}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"`ema` must lie in [0, 1), got {ema!r}")
        if not 0.0 <= gate_weight <= 1.0:
            raise ValueError(f"`gate_weight` must lie in [0, 1], got {gate_weight!r}")
        self.num_nodes = num_nodes
        self.ema = float(ema)
        self.gate_weight = float(gate_weight)
        self.indicator = bool(indicator)
        self.gate = nn.Parameter(torch.full((num_nodes,), float(init)))
        self.register_buffer("active", torch.ones(num_nodes, dtype=torch.bool))
        self.register_buffer("saliency", torch.zeros(num_nodes))
        self.register_buffer("regrow_score", torch.zeros(num_nodes))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.track: bool = True

    # ------------------------------------------------------------------ support
    @property
    def num_active(self) -> int:
        return int(self.active.sum())

    @property
    def sparsity(self) -> float:
        return 1.0 - self.num_active / self.num_nodes

    def set_active(self, active: Tensor) -> None:
        """Replaces the binary support (a bool tensor ``[N]`` with at least one :obj:`True`)."""
        a = torch.as_tensor(active)
        if a.dtype != torch.bool or a.shape != (self.num_nodes,):
            raise ValueError(f"`active` must be a bool tensor of shape [{self.num_nodes}], got {a.dtype} {tuple(a.shape)}")
        if not bool(a.any()):
            raise ValueError("`active` must keep at least one sensor")
        newly = a.to(self.active.device) & ~self.active
        with torch.no_grad():
            # regrown sensors restart from the mean active gate (their gate had no gradient while off)
            if bool(newly.any()):
                self.gate[newly] = self.gate[self.active].abs().mean().clamp_min(1e-3)
                self.saliency[newly] = self.saliency[self.active].median()
        self.active.copy_(a)

    # ------------------------------------------------------------------ forward
    def effective(self, node_index: Optional[Tensor] = None) -> Tensor:
        """``g * a`` for the sensors in ``node_index`` (all sensors if :obj:`None`)."""
        g = self.gate * self.active.to(self.gate.dtype)
        return g if node_index is None else g[node_index]

    def forward(self, x: Tensor, node_index: Optional[Tensor] = None) -> Tensor:
        """Gates ``x [B, T, K, F]``; ``node_index [K]`` names the sensors present (default: all ``N``)."""
        if x.dim() != 4:
            raise ValueError(f"`x` must have shape [B, T, K, F], got {tuple(x.shape)}")
        K = self.num_nodes if node_index is None else node_index.numel()
        if x.size(2) != K:
            raise ValueError(f"`x` has {x.size(2)} sensors on dim 2 but the gate expects {K}")
        g = self.effective(node_index).to(x.dtype)
        out = x * g.view(1, 1, -1, 1)
        if self.training and self.track and torch.is_grad_enabled() and out.requires_grad:
            dense = x.detach()
            gated = out.detach()
            idx = None if node_index is None else node_index.detach()
            out.register_hook(lambda grad: self._record(dense, gated, grad, idx))
        if self.indicator:
            a = self.active if node_index is None else self.active[node_index]
            ind = a.to(x.dtype).view(1, 1, -1, 1).expand(x.size(0), x.size(1), -1, 1)
            out = torch.cat([out, ind], dim=-1)
        return out

    @torch.no_grad()
    def _record(self, dense: Tensor, gated: Tensor, grad: Tensor, node_index: Optional[Tensor]) -> None:
        B = max(1, dense.size(0))
        sal = (gated * grad).abs().sum(dim=(0, 1, 3)) / B
        reg = (dense * grad).sum(dim=(0, 1, 3)).abs() / B
        idx = torch.arange(self.num_nodes, device=sal.device) if node_index is None else node_index
        beta = self.ema if int(self.num_updates) > 0 else 0.0
        act = self.active[idx]
        # pruned sensors have zero gated input: keep their last saliency instead of decaying it to 0
        new_sal = beta * self.saliency[idx] + (1 - beta) * sal
        self.saliency[idx] = torch.where(act, new_sal, self.saliency[idx])
        self.regrow_score[idx] = beta * self.regrow_score[idx] + (1 - beta) * reg
        self.num_updates += 1

    # ------------------------------------------------------------------ scores
    @torch.no_grad()
    def importance(self) -> Tensor:
        """Per-sensor importance ``(1 - w) * s / max(s) + w * |g| / max|g|`` (``w = gate_weight``)."""
        s = self.saliency.clone()
        g = self.gate.detach().abs()
        s = s / s.max().clamp_min(1e-12)
        g = g / g.max().clamp_min(1e-12)
        return (1 - self.gate_weight) * s + self.gate_weight * g

    def l1_penalty(self) -> Tensor:
        """Mean absolute gate of the active sensors (a sparsity-encouraging regulariser)."""
        return (self.gate.abs() * self.active.to(self.gate.dtype)).sum() / max(1, self.num_active)

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, active={self.num_active}, ema={self.ema}, gate_weight={self.gate_weight}"
