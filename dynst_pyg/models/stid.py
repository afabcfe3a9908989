r"""STID (Shao et al., CIKM 2022) on any subset of a sensor network.

"Spatial-Temporal Identity: A Simple yet Effective Baseline for Multivariate Time Series
Forecasting" (`arXiv:2208.05233 <https://arxiv.org/abs/2208.05233>`_). Each node's
forecast is an MLP of four concatenated vectors:

.. math::

    \mathbf{H}^0_i = \mathrm{FC}(\mathrm{vec}(\mathbf{X}_i^{t-T_{in}+1:t}))
        \,\Vert\, \mathbf{E}_i \,\Vert\, \mathbf{T}^{TiD}_{\tau(t)} \,\Vert\, \mathbf{T}^{DiW}_{d(t)},

    \mathbf{H}^{l+1}_i = \mathbf{H}^l_i + \mathrm{FC}_2(\mathrm{Dropout}(\mathrm{ReLU}(\mathrm{FC}_1(\mathbf{H}^l_i)))),

    \hat{\mathbf{Y}}_i = \mathrm{FC}_{out}(\mathbf{H}^L_i) \in \mathbb{R}^{T_{out} \times F_{out}},

where :math:`\mathbf{X}_i` is node :math:`i`'s ``T_in x F`` history flattened, :math:`\mathbf{E}`
the learnable *spatial identity* (one row per original node), and :math:`\mathbf{T}^{TiD}`,
:math:`\mathbf{T}^{DiW}` the *temporal identities* of the time of day and day of week of the
last input step. The paper writes the fully connected layers as 1x1 convolutions over the
node axis; here they are :class:`~torch.nn.Linear` layers applied to every node (the same maths).

Sub-graph behaviour: STID is **not** a graph network. ``edge_index``/``edge_weight`` are
accepted (and validated) so that it follows the backbone interface, but they are not used.
Nodes interact only through shared weights, so a forecast for a subset of the nodes
(``x[:, :, idx]`` with ``node_index=idx``, which slices ``E[idx]``) equals the full
forecast restricted to that subset (tested).

Time channels: :func:`~dynst_pyg.data.prepare` with ``time_features=True``
appends two channels to the input, time of day as a fraction of the day in ``[0, 1)`` and
day of week ``d / 7`` with ``d`` in ``0..6`` (Monday = 0). They are decoded into
embedding rows as ``round(v * steps_per_day)`` and ``round(v * 7)``, clamped to the
table, so float round-off never shifts a step into the previous slot. Build the model with
``time_of_day_channel=None, day_of_week_channel=None`` for windows without them.

Note that :class:`~dynst_pyg.gate.SensorGate` multiplies *every* input channel of a
sensor, the time channels included; a gated-off sensor (gate 0) therefore reads
"Monday, 00:00". Its history is zero in any case.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor, nn

from .batching import accepts_batch
from .._checks import check_positive_ints
from .supports import check_forward_inputs

__all__ = ["STID", "STID_PROFILES"]

#: Named hyperparameter sets. ``reference`` is the paper's / BasicTS's METR-LA configuration
#: (embedding sizes 32, three residual MLP layers, dropout 0.15; 117,868 parameters on 207
#: nodes with three input channels). STID at that size is already small, so ``small``, the
#: CLI's default, is the same configuration.
STID_PROFILES: Dict[str, Dict[str, float]] = {
    "reference": dict(embed_dim=32, node_dim=32, tod_dim=32, dow_dim=32, num_layers=3, dropout=0.15),
    "small": dict(embed_dim=32, node_dim=32, tod_dim=32, dow_dim=32, num_layers=3, dropout=0.15),
}

#: Days per week of the day-of-week embedding table.
DAYS_PER_WEEK = 7


class _ResidualMLP(nn.Module):
    """``h + FC2(Dropout(ReLU(FC1(h))))`` on the last axis (the paper's 1x1-conv MLP layer)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.fc2(self.drop(torch.relu(self.fc1(h))))


class STID(nn.Module):
    r"""STID forecaster following the ``[B, T_in, K, F] -> [B, T_out, K, F_out]`` interface.

    From "Spatial-Temporal Identity: A Simple yet Effective Baseline for Multivariate Time
    Series Forecasting" (Shao et al., CIKM 2022): a linear embedding of each node's flattened
    history, concatenated with a node-identity embedding and time-of-day / day-of-week
    embeddings of the last input step, a stack of residual MLP layers and a linear head.
    The graph is not used (see :mod:`dynst_pyg.models.stid`).

    Args:
        num_nodes (int): size ``N`` of the *full* network (rows of the node embedding).
        in_features (int, optional): input channels ``F`` per node and step, the time
            channels included (default: ``3``: one reading plus the two channels of
            ``prepare(time_features=True)``).
        out_features (int, optional): output features ``F_out`` (default: ``1``).
        t_in (int, optional): input window length (default: ``12``).
        t_out (int, optional): forecast horizon (default: ``12``).
        profile (str, optional): ``"small"`` or ``"reference"`` (both the paper's
            configuration); explicit keyword hyperparameters below override the profile
            (default: ``"small"``).
        embed_dim (int, optional): size of the history embedding (default: from profile).
        node_dim (int, optional): size of the node-identity embedding (default: from profile).
        tod_dim (int, optional): size of the time-of-day embedding (default: from profile).
        dow_dim (int, optional): size of the day-of-week embedding (default: from profile).
        num_layers (int, optional): residual MLP layers (default: from profile).
        dropout (float, optional): dropout inside each MLP layer, in ``[0, 1)``
            (default: from profile).
        steps_per_day (int, optional): rows of the time-of-day table, e.g. ``288`` for
            5-minute data; a time-of-day fraction ``v`` reads row ``round(v * steps_per_day)``.
            It should be at least the data's steps per day, or steps share a row
            (default: ``288``).
        time_of_day_channel (int, optional): input channel holding the time of day as a
            fraction of the day in ``[0, 1)``; negative values count from the end; :obj:`None`
            for no time-of-day embedding (default: ``-2``, as appended by ``prepare``).
        day_of_week_channel (int, optional): input channel holding the day of week as
            ``d / 7``; :obj:`None` for no day-of-week embedding (default: ``-1``).
        node_embedding (bool, optional): use the node-identity embedding (default: :obj:`True`).
        embed_time_channels (bool, optional): also feed the time channels into the history
            embedding, as the published BasicTS configuration does (``input_dim=3``); by
            default the history embedding sees the reading channels only, as in the paper's
            equations (default: :obj:`False`).

    Example:
        >>> splits = load_los_loop().prepare(time_features=True)   # in_features = 3
        >>> model = STID(207, splits.in_features).eval()
        >>> y = model(x, edge_index)                                 # all 207 sensors
        >>> y_small = model(x[:, :, keep], sub_ei, node_index=keep)  # a subset: E[keep]
    """

    def __init__(
        self,
        num_nodes: int,
        in_features: int = 3,
        out_features: int = 1,
        t_in: int = 12,
        t_out: int = 12,
        profile: str = "small",
        *,
        embed_dim: Optional[int] = None,
        node_dim: Optional[int] = None,
        tod_dim: Optional[int] = None,
        dow_dim: Optional[int] = None,
        num_layers: Optional[int] = None,
        dropout: Optional[float] = None,
        steps_per_day: int = 288,
        time_of_day_channel: Optional[int] = -2,
        day_of_week_channel: Optional[int] = -1,
        node_embedding: bool = True,
        embed_time_channels: bool = False,
    ) -> None:
        super().__init__()
        if profile not in STID_PROFILES:
            raise ValueError(f"profile must be one of {sorted(STID_PROFILES)}, got {profile!r}")
        check_positive_ints(num_nodes=num_nodes, in_features=in_features, out_features=out_features,
                            t_in=t_in, t_out=t_out, steps_per_day=steps_per_day)
        hp = dict(STID_PROFILES[profile])
        overrides = dict(embed_dim=embed_dim, node_dim=node_dim, tod_dim=tod_dim, dow_dim=dow_dim,
                         num_layers=num_layers, dropout=dropout)
        hp.update({k: v for k, v in overrides.items() if v is not None})
        check_positive_ints(**{k: hp[k] for k in ("embed_dim", "node_dim", "tod_dim", "dow_dim", "num_layers")})
        if isinstance(hp["dropout"], bool) or not isinstance(hp["dropout"], (int, float)) \
                or not 0.0 <= float(hp["dropout"]) < 1.0:
            raise ValueError(f"dropout must be a float in [0, 1), got {hp['dropout']!r}")
        tod_ch = _resolve_channel("time_of_day_channel", time_of_day_channel, in_features)
        dow_ch = _resolve_channel("day_of_week_channel", day_of_week_channel, in_features)
        if tod_ch is not None and tod_ch == dow_ch:
            raise ValueError(f"time_of_day_channel and day_of_week_channel both name input channel {tod_ch}")
        time_chs = [c for c in (tod_ch, dow_ch) if c is not None]
        history = list(range(in_features)) if embed_time_channels else \
            [c for c in range(in_features) if c not in time_chs]
        if not history:
            raise ValueError(f"in_features={in_features} leaves no reading channel for the history embedding once "
                             f"the time channels {time_chs} are set aside; STID needs in_features >= "
                             f"{len(time_chs) + 1} here (the readings plus the time channels of "
                             "prepare(time_features=True))")
        self.hparams = hp
        self.profile = profile
        self.num_nodes = num_nodes
        self.in_features = in_features
        self.out_features = out_features
        self.t_in = t_in
        self.t_out = t_out
        self.steps_per_day = steps_per_day
        self.time_of_day_channel = tod_ch
        self.day_of_week_channel = dow_ch
        self.embed_time_channels = bool(embed_time_channels)
        self.register_buffer("history_channels", torch.tensor(history, dtype=torch.long), persistent=False)
        self._all_channels = len(history) == in_features

        e, nd, td, dd = (int(hp[k]) for k in ("embed_dim", "node_dim", "tod_dim", "dow_dim"))
        self.history_embedding = nn.Linear(t_in * len(history), e)
        hidden = e
        if node_embedding:
            self.node_emb = nn.Parameter(torch.empty(num_nodes, nd))
            hidden += nd
        else:
            self.register_parameter("node_emb", None)
        if tod_ch is not None:
            self.tod_emb = nn.Parameter(torch.empty(steps_per_day, td))
            hidden += td
        else:
            self.register_parameter("tod_emb", None)
        if dow_ch is not None:
            self.dow_emb = nn.Parameter(torch.empty(DAYS_PER_WEEK, dd))
            hidden += dd
        else:
            self.register_parameter("dow_emb", None)
        self.hidden_dim = hidden
        self.encoder = nn.Sequential(*[_ResidualMLP(hidden, float(hp["dropout"])) for _ in range(int(hp["num_layers"]))])
        self.regression = nn.Linear(hidden, t_out * out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform embeddings (as the reference code) and PyTorch's default for the linear layers."""
        for emb in (self.node_emb, self.tod_emb, self.dow_emb):
            if emb is not None:
                nn.init.xavier_uniform_(emb)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    # ------------------------------------------------------------------ time decoding
    def time_of_day_index(self, x: Tensor) -> Tensor:
        """Row of the time-of-day table for every window and node: ``[B, K]`` long.

        Reads ``time_of_day_channel`` at the last input step, ``round(v * steps_per_day)``
        clamped to ``0..steps_per_day - 1`` (NaN reads row 0).
        """
        if self.time_of_day_channel is None:
            raise RuntimeError("this STID was built with time_of_day_channel=None")
        return _decode(x[:, -1, :, self.time_of_day_channel], self.steps_per_day)

    def day_of_week_index(self, x: Tensor) -> Tensor:
        """Row of the day-of-week table for every window and node: ``[B, K]`` long.

        Reads ``day_of_week_channel`` at the last input step, ``round(v * 7)`` clamped to ``0..6``.
        """
        if self.day_of_week_channel is None:
            raise RuntimeError("this STID was built with day_of_week_channel=None")
        return _decode(x[:, -1, :, self.day_of_week_channel], DAYS_PER_WEEK)

    # ------------------------------------------------------------------ network
    @accepts_batch()
    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                node_index: Optional[Tensor] = None) -> Tensor:
        """Forecast.

        Args:
            x (Tensor): ``[B, T_in, K, F]`` normalised history of the present nodes (time
                channels as written by ``prepare(time_features=True)``), or a PyG
                ``Data``/``Batch`` of node-first windows passed alone (``node_index = n_id``
                then comes from the batch, and the forecast is returned node-first,
                ``[B*K, T_out, F_out]``; see :mod:`dynst_pyg.models.batching`).
            edge_index (Tensor): ``[2, E]`` graph on the present nodes (ids ``0..K-1``);
                validated but **not used**: STID is not a graph network.
            edge_weight (Tensor, optional): ``[E]`` weights; not used (default: :obj:`None`).
            node_index (Tensor, optional): ``[K]`` original ids of the present nodes, which
                select the rows ``E[node_index]`` of the node embedding; required when
                ``K != num_nodes`` (default: :obj:`None`).

        Returns:
            Tensor: ``[B, T_out, K, F_out]`` normalised forecast.
        """
        k = check_forward_inputs(x, edge_index, edge_weight, node_index, num_nodes=self.num_nodes,
                                 in_features=self.in_features, t_in=self.t_in, model="STID")
        b = x.size(0)
        hist = x if self._all_channels else x.index_select(-1, self.history_channels)
        hist = hist.permute(0, 2, 1, 3).reshape(b, k, -1)  # [B, K, T_in * F_hist], time-major per node
        parts = [self.history_embedding(hist)]
        if self.node_emb is not None:
            emb = self.node_emb if node_index is None else self.node_emb[node_index.to(self.node_emb.device)]
            parts.append(emb.unsqueeze(0).expand(b, -1, -1))
        if self.tod_emb is not None:
            parts.append(self.tod_emb[self.time_of_day_index(x)])
        if self.dow_emb is not None:
            parts.append(self.dow_emb[self.day_of_week_index(x)])
        h = self.encoder(torch.cat(parts, dim=-1))  # [B, K, hidden]
        out = self.regression(h).view(b, k, self.t_out, self.out_features)
        return out.permute(0, 2, 1, 3).contiguous()

    def extra_repr(self) -> str:
        return (f"num_nodes={self.num_nodes}, in_features={self.in_features}, out_features={self.out_features}, "
                f"t_in={self.t_in}, t_out={self.t_out}, profile={self.profile!r}, hidden_dim={self.hidden_dim}, "
                f"time_of_day_channel={self.time_of_day_channel}, day_of_week_channel={self.day_of_week_channel}")


def _resolve_channel(name: str, channel: Optional[int], in_features: int) -> Optional[int]:
    """``channel`` as an index in ``0..in_features - 1`` (negative counts from the end), or :obj:`None`."""
    if channel is None:
        return None
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise ValueError(f"{name} must be an int channel index or None, got {channel!r}")
    if not -in_features <= channel < in_features:
        raise ValueError(f"{name}={channel} is not an input channel of in_features={in_features}: STID was built "
                         "expecting time channels the windows do not have; window with prepare(time_features=True) "
                         "(two channels appended) or pass time_of_day_channel=None, day_of_week_channel=None")
    return channel % in_features


def _decode(value: Tensor, size: int) -> Tensor:
    """Embedding row ``round(value * size)`` clamped to ``0..size - 1``; NaN reads row 0."""
    idx = torch.round(torch.nan_to_num(value.detach(), nan=0.0) * size)
    return idx.clamp_(0, size - 1).long()
