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
* **marginal value** (optional, when the search uses *paired sensor dropout*, see
  :class:`~dynst_pyg.scoring.PairedDropoutScorer`): every step the same batch runs under
  two supports that differ only on a random independent *probe set* of active sensors
  (on in one pass, off in the other); for each probed sensor the loss attributed to it
  with the sensor off minus the loss with it on is a paired (same windows), zeroth-order
  sample of what removing it costs *after the model has learnt to do without it*.

Saliency and gate magnitude measure how much the model currently *relies* on a sensor;
a sensor that duplicates its neighbours is relied on as much as any other, so they cannot
tell "redundant" from "needed". The marginal value can, because the model is trained under
random sensor dropout and learns to reconstruct a missing sensor from the rest.

* **reconstruction value** (``target="all"``, set by the trainer for the current active
  set with :class:`~dynst_pyg.scoring.ReconstructionValue`): how late a sensor leaves a
  backward elimination that repeatedly drops the active sensor whose removal least increases
  the ridge error of predicting *all* sensors' (centred training) readings at the steps
  ahead of ``DynSTConfig.recon_horizons`` (default 1, 3, 6, 12) from the active ones' current
  readings. It depends on the training series only, not on the model. It is not the
  regression of the served model's lift head
  (:meth:`~dynst_pyg.models.LiftHead.fit_ridge` fits each pruned sensor on the kept ones at
  the same step), so it ranks sensors by a proxy of what the served model loses; the
  elimination (not one-shot values) keeps one of two near-duplicates.

:meth:`SensorGate.importance` combines the normalised saliency, gate magnitude and (when
recorded) marginal value and reconstruction value with configurable weights.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .._checks import check_positive_int

__all__ = ["SensorGate"]


class SensorGate(nn.Module):
    """Learnable per-sensor gate with a binary support and importance statistics.

    Args:
        num_nodes (int): Sensors ``N`` of the full network.
        init (float, optional): Initial gate value (default: ``1.0``).
        ema (float, optional): Decay of the saliency / regrow moving averages in ``[0, 1)``
            (default: ``0.9``).
        gate_weight (float, optional): Weight of the gate magnitude in :meth:`importance`;
            (default: ``0.1``).
        indicator (bool, optional): Append a channel that is ``1`` for active and ``0``
            for pruned sensors, so the model can tell "pruned" from "reading 0"
            (default: :obj:`False`; the backbone then needs ``F + 1`` input features).
    """

    def __init__(self, num_nodes: int, init: float = 1.0, ema: float = 0.9, gate_weight: float = 0.1,
                 indicator: bool = False, marginal_weight: float = 0.8, recon_weight: float = 0.0) -> None:
        super().__init__()
        check_positive_int(num_nodes, "num_nodes")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"`ema` must lie in [0, 1), got {ema!r}")
        if not 0.0 <= gate_weight <= 1.0:
            raise ValueError(f"`gate_weight` must lie in [0, 1], got {gate_weight!r}")
        if not 0.0 <= marginal_weight <= 1.0 or gate_weight + marginal_weight > 1.0 + 1e-9:
            raise ValueError(f"`marginal_weight` must lie in [0, 1 - gate_weight], got {marginal_weight!r}")
        if not 0.0 <= recon_weight <= 1.0:
            raise ValueError(f"`recon_weight` must lie in [0, 1], got {recon_weight!r}")
        self.marginal_weight = float(marginal_weight)
        self.recon_weight = float(recon_weight)
        #: reconstruction value of the active sensors (see :func:`~dynst_pyg.placement.elimination_order`); set by the
        #: trainer for the current active set, ``None`` until then (not saved: it is recomputed)
        self.recon: Optional[Tensor] = None
        self.marginal_ema = 0.99
        self.num_nodes = num_nodes
        self.ema = float(ema)
        self.gate_weight = float(gate_weight)
        self.indicator = bool(indicator)
        self.gate = nn.Parameter(torch.full((num_nodes,), float(init)))
        self.register_buffer("active", torch.ones(num_nodes, dtype=torch.bool))
        self.register_buffer("saliency", torch.zeros(num_nodes))
        self.register_buffer("regrow_score", torch.zeros(num_nodes))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("marginal", torch.zeros(num_nodes))
        self.register_buffer("marginal_count", torch.zeros(num_nodes))
        self.track: bool = True
        #: factor by which the loss was scaled before the backward pass (float16 mixed precision);
        #: gradients seen by the saliency hook are divided by it
        self.loss_scale: float = 1.0

    # ------------------------------------------------------------------ settings the trainer passes in
    def set_loss_scale(self, scale: float) -> None:
        """The factor the loss is scaled by before the backward pass (float16 mixed precision);
        the saliency hook divides the gradients it sees by it."""
        self.loss_scale = float(scale)

    def set_reconstruction(self, value: Optional[Tensor]) -> None:
        """The reconstruction value ``[N]`` of the current active set (:obj:`None` drops the term)."""
        if value is not None and tuple(value.shape) != (self.num_nodes,):
            raise ValueError(f"`value` must have shape [{self.num_nodes}], got {tuple(value.shape)}")
        self.recon = None if value is None else value.detach()

    def track_statistics(self, enabled: bool) -> None:
        """Whether training forward passes record saliency and regrow scores (default: on)."""
        self.track = bool(enabled)

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
        if not torch.equal(a.to(self.active.device), self.active):
            # marginal values were measured with the old active set; after a change (neighbours
            # pruned or regrown) they are stale, so the running mean starts again
            self.marginal_count.zero_()
        self.active.copy_(a)

    # ------------------------------------------------------------------ forward
    def effective(self, node_index: Optional[Tensor] = None) -> Tensor:
        """``g * a`` for the sensors in ``node_index`` (all sensors if :obj:`None`)."""
        g = self.gate * self.active.to(self.gate.dtype)
        return g if node_index is None else g[node_index]

    def forward(self, x: Tensor, node_index: Optional[Tensor] = None, support: Optional[Tensor] = None) -> Tensor:
        """Gates ``x [B, T, K, F]``; ``node_index [K]`` names the sensors present (default: all ``N``).

        ``support`` (bool ``[N]``, optional) temporarily replaces the active set, e.g. for the
        paired sensor dropout of the mask search; saliency is then not recorded.
        """
        if x.dim() != 4:
            raise ValueError(f"`x` must have shape [B, T, K, F], got {tuple(x.shape)}")
        K = self.num_nodes if node_index is None else node_index.numel()
        if x.size(2) != K:
            raise ValueError(f"`x` has {x.size(2)} sensors on dim 2 but the gate expects {K}")
        on = self.active if support is None else support.to(self.active.device)
        if support is not None:
            g = self.gate * on.to(self.gate.dtype)
            g = (g if node_index is None else g[node_index]).to(x.dtype)
            out = x * g.view(1, 1, -1, 1)
        else:
            g = self.effective(node_index).to(x.dtype)
            out = x * g.view(1, 1, -1, 1)
            if self.training and self.track and torch.is_grad_enabled() and out.requires_grad:
                dense = x.detach()
                gated = out.detach()
                idx = None if node_index is None else node_index.detach()
                out.register_hook(lambda grad: self._record(dense, gated, grad, idx))
        if self.indicator:
            a = on if node_index is None else on[node_index]
            ind = a.to(x.dtype).view(1, 1, -1, 1).expand(x.size(0), x.size(1), -1, 1)
            out = torch.cat([out, ind], dim=-1)
        return out

    @torch.no_grad()
    def _record(self, dense: Tensor, gated: Tensor, grad: Tensor, node_index: Optional[Tensor]) -> None:
        B = max(1, dense.size(0))
        grad = grad.float() / self.loss_scale if self.loss_scale != 1.0 else grad
        sal = (gated * grad).abs().sum(dim=(0, 1, 3)) / B
        reg = (dense * grad).sum(dim=(0, 1, 3)).abs() / B
        if not (bool(torch.isfinite(sal).all()) and bool(torch.isfinite(reg).all())):
            return  # an overflowed mixed-precision step (skipped by the optimiser too)
        idx = torch.arange(self.num_nodes, device=sal.device) if node_index is None else node_index
        beta = self.ema if int(self.num_updates) > 0 else 0.0
        act = self.active[idx]
        # pruned sensors have zero gated input: keep their last saliency instead of decaying it to 0
        new_sal = beta * self.saliency[idx] + (1 - beta) * sal
        self.saliency[idx] = torch.where(act, new_sal, self.saliency[idx])
        self.regrow_score[idx] = beta * self.regrow_score[idx] + (1 - beta) * reg
        self.num_updates += 1

    @torch.no_grad()
    def record_marginal(self, loss_off: Tensor, loss_on: Tensor, sensors: Tensor) -> None:
        """Merges paired samples ``loss_off - loss_on`` (``[S]``) of the sensors ``sensors [S]`` (EMA)."""
        if loss_off.shape != loss_on.shape or loss_off.shape != sensors.shape:
            raise ValueError("`loss_off`, `loss_on` and `sensors` must have the same shape")
        d = (loss_off - loss_on).to(self.marginal.dtype)
        self.marginal_count[sensors] += 1
        # running mean for the first 1 / (1 - ema_marginal) samples, then an EMA: single paired
        # samples are noisy, so this average is much longer than the saliency's
        rate = torch.clamp(1.0 / self.marginal_count[sensors], min=1.0 - self.marginal_ema)
        self.marginal[sensors] = self.marginal[sensors] + rate * (d - self.marginal[sensors])

    def statistics(self) -> list[Tensor]:
        """The running statistics that the importance reads (saliency, regrow score, marginal value).

        They are linear in the per-step measurements, so their mean over the ranks of a data
        parallel run equals the statistics of the ranks' pooled measurements (the trainer
        all-reduces them after every step)."""
        return [self.saliency, self.regrow_score, self.marginal]

    # ------------------------------------------------------------------ scores
    @torch.no_grad()
    def importance(self) -> Tensor:
        """Per-sensor importance in ``[0, 1]``.

        ``(1 - w_r) * (w_s * s / max(s) + w_g * |g| / max|g| + w_m * rank(m)) + w_r * r`` with
        ``w_g = gate_weight``, ``w_m = marginal_weight`` (only once marginal values were recorded,
        else ``0``), ``w_s = 1 - w_g - w_m`` and ``w_r = recon_weight`` (only once :attr:`recon`
        was set, else ``0``); ``rank(m)`` is the marginal value rank-normalised to ``[0, 1]``
        (robust to its scale and sign) and ``r`` the reconstruction value (elimination position).
        """
        s = self.saliency.clone()
        g = self.gate.detach().abs()
        s = s / s.max().clamp_min(1e-12)
        g = g / g.max().clamp_min(1e-12)
        w_m = self.marginal_weight if bool((self.marginal_count > 0).any()) else 0.0
        w_r = self.recon_weight if self.recon is not None else 0.0
        w_s = 1.0 - self.gate_weight - w_m
        out = w_s * s + self.gate_weight * g
        if w_m > 0:
            m = torch.where(self.marginal_count > 0, self.marginal, torch.full_like(self.marginal, float("inf")))
            rank = torch.empty_like(m)
            rank[torch.argsort(m, stable=True)] = torch.arange(m.numel(), dtype=m.dtype)
            out = out + w_m * rank / max(1, m.numel() - 1)
        if w_r > 0:
            out = (1.0 - w_r) * out + w_r * self.recon.to(out.device, out.dtype)
        return out

    def l1_penalty(self) -> Tensor:
        """Mean absolute gate of the active sensors (a sparsity-encouraging regulariser)."""
        return (self.gate.abs() * self.active.to(self.gate.dtype)).sum() / max(1, self.num_active)

    def extra_repr(self) -> str:
        return f"num_nodes={self.num_nodes}, active={self.num_active}, ema={self.ema}, gate_weight={self.gate_weight}"
