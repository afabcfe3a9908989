"""Backbones by name: what ``--backbone`` accepts."""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

__all__ = ["make_backbone"]


def make_backbone(name: str, num_nodes: int, in_features: int = 1, out_features: int = 1, t_in: int = 12,
                  t_out: int = 12, profile: str = "small", adaptive_topk: Optional[int] = None) -> nn.Module:
    """A backbone by name: ``gwnet``, ``dcrnn``, ``stid`` or a PyG-Temporal recurrent cell's name (e.g. ``GConvGRU``).

    ``adaptive_topk`` keeps ``k`` entries per row of Graph WaveNet's adaptive adjacency (large networks).
    """
    if adaptive_topk is not None and name != "gwnet":
        raise ValueError(f"--adaptive-topk applies to gwnet only, not {name!r}")
    if name == "gwnet":
        from .graph_wavenet import GraphWaveNet

        return GraphWaveNet(num_nodes, in_features, out_features, t_in, t_out, profile=profile,
                            adaptive_topk=adaptive_topk)
    if name == "dcrnn":
        from .dcrnn import DCRNN

        return DCRNN(num_nodes, in_features, out_features, t_in, t_out, profile=profile)
    if name == "stid":  # reads the time channels of prepare(time_features=True)
        from .stid import STID

        return STID(num_nodes, in_features, out_features, t_in, t_out, profile=profile)
    from .tgt import TGTAdapter, resolve_cell

    try:
        resolve_cell(name)
    except (ValueError, AttributeError, ImportError) as exc:
        raise ValueError(f"unknown backbone {name!r}: use gwnet, dcrnn, stid or a PyG-Temporal recurrent cell name "
                         f"such as GConvGRU, TGCN, A3TGCN ({exc})") from exc
    hidden = 32 if profile == "small" else 64
    kwargs: dict[str, Any] = {}
    if name in ("GConvGRU", "GConvLSTM"):
        kwargs["K"] = 2
    if name == "A3TGCN":
        kwargs["periods"] = t_in
    return TGTAdapter(name, num_nodes, in_features, out_features, hidden, t_in, t_out, **kwargs)
