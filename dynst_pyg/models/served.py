"""The pruned forecaster as deployed: input gate, backbone on the kept sensors, optional lift head."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

__all__ = ["ServedModel"]


class ServedModel(nn.Module):
    """Gate + backbone on a sensor subset (+ lift head): the pruned forecaster as deployed.

    ``forward(x [B, T_in, K, F])`` returns normalised forecasts ``[B, T_out, K, F_out]``
    (no lift head, ``target="kept"``) or ``[B, T_out, N, F_out]`` (with one, ``target="all"``).
    With ``keep=None`` it is the full-network model that the warm-up and the search train.

    Args:
        gate (nn.Module): The per-sensor input gate of the full network, called as
            ``gate(x, node_index=keep, support=support)`` (a
            :class:`~dynst_pyg.scoring.SensorGate`).
        backbone (nn.Module): A backbone following the model interface.
        keep (LongTensor, optional): Original ids of the sensors present (default: all).
        edge_index (LongTensor): Graph of the sensors present.
        edge_weight (Tensor): Its weights.
        lift (nn.Module, optional): Lift head to all ``N`` sensors (default: none).
    """

    def __init__(self, gate: nn.Module, backbone: nn.Module, keep: Optional[Tensor], edge_index: Tensor,
                 edge_weight: Tensor, lift: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.gate = gate
        self.backbone = backbone
        self.lift = lift
        self.register_buffer("keep", None if keep is None else keep.clone())
        self.register_buffer("edge_index", edge_index.clone())
        self.register_buffer("edge_weight", edge_weight.clone())

    @property
    def target(self) -> str:
        """``"kept"`` without a lift head, ``"all"`` with one."""
        return "kept" if self.lift is None else "all"

    def forward(self, x: Tensor, support: Optional[Tensor] = None) -> Tensor:
        """``support`` (bool ``[N]``) replaces the gate's active set for this call (paired dropout)."""
        h = self.gate(x, node_index=self.keep, support=support)
        out = self.backbone(h, self.edge_index, self.edge_weight, node_index=self.keep)
        if self.lift is not None:
            out = self.lift(out, self.keep)
        return out
