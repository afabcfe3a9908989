"""Adapter that puts any PyTorch Geometric Temporal recurrent cell behind the backbone interface.

PyG-Temporal cells (``GConvGRU``, ``TGCN``, ``A3TGCN``, ``DCRNN``, ``GConvLSTM``, ...)
consume one graph signal ``X: [N, F]`` per call and return the next hidden state. The
:class:`TGTAdapter` turns such a cell into a forecaster

    ``forward(x: [B, T_in, K, F], edge_index, edge_weight=None, node_index=None) -> [B, T_out, K, F_out]``

by running the cell over the ``T_in`` steps of every window and mapping the last hidden
state through ``ReLU`` and a linear head to ``T_out * F_out`` values per node. Like every
backbone it also takes a PyG ``Batch`` of node-first windows (see
:mod:`dynst_pyg.models.batching`).

Three kinds of cell are recognised from their signatures:

* *GRU-like* (return ``H``): ``GConvGRU``, ``TGCN``, ``DCRNN``;
* *LSTM-like* (``forward`` takes ``C`` and returns ``(H, C)``): ``GConvLSTM``, ``GCLSTM``;
* *attention over periods* (``__init__`` takes ``periods``): ``A3TGCN`` consumes the
  whole window ``[N, F, T_in]`` in one call.

Batching: the ``B`` windows are either processed one after another (``batch_mode="loop"``),
or stacked as one disjoint union of ``B`` copies of the graph (``"union"``, one call per
time step; exact for any message-passing cell because copies share no edges). ``"auto"``
uses ``"union"`` except for cells known to build a dense adjacency of the whole input
graph (PyG-Temporal's ``DCRNN``/``BatchedDCRNN``), where the union would cost
``(B K)^2`` memory. Cells that cache their normalised graph (``cached=True``) must not be
used with varying graphs or batch sizes.

PyG-Temporal cells have no node-specific parameters, so ``node_index`` is only validated.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional, Type, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_ints
from .batching import accepts_batch
from .supports import check_forward_inputs

__all__ = ["TGTAdapter", "resolve_cell"]

_DENSE_ADJ_CELLS = {"DCRNN", "BatchedDCRNN"}


def resolve_cell(cell: Union[str, Type[nn.Module]]) -> Type[nn.Module]:
    """Return a PyG-Temporal recurrent cell class from its name (or the class itself).

    Args:
        cell (str or type): e.g. ``"GConvGRU"`` or ``torch_geometric_temporal.nn.recurrent.TGCN``.

    Returns:
        type: the cell class.
    """
    if isinstance(cell, str):
        try:
            from torch_geometric_temporal.nn import recurrent
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("TGTAdapter needs torch_geometric_temporal to resolve a cell name") from exc
        cls = getattr(recurrent, cell, None)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            names = sorted(n for n in dir(recurrent) if isinstance(getattr(recurrent, n), type))
            raise ValueError(f"cell {cell!r} is not a recurrent cell of torch_geometric_temporal.nn.recurrent; "
                             f"available: {names}")
        return cls
    if isinstance(cell, type) and issubclass(cell, nn.Module):
        return cell
    raise TypeError(f"cell must be a cell name (str) or an nn.Module subclass, got {cell!r}")


class TGTAdapter(nn.Module):
    r"""Wrap a PyG-Temporal recurrent cell into the ``[B, T_in, K, F] -> [B, T_out, K, F_out]`` interface.

    Args:
        cell (str or type): cell name in ``torch_geometric_temporal.nn.recurrent`` or class.
        num_nodes (int): ``N`` of the full network (validates ``node_index``).
        in_features (int): input features ``F``.
        out_features (int): output features ``F_out``.
        hidden (int): hidden channels of the cell (its ``out_channels``).
        t_in (int): input window length (``periods`` for attention cells).
        t_out (int): forecast horizon.
        batch_mode (str, optional): ``"loop"``, ``"union"`` or ``"auto"`` (default: ``"auto"``).
        **cell_kwargs: extra arguments of the cell constructor (e.g. ``K=2`` for
            ``GConvGRU``/``DCRNN``).

    Example:
        >>> model = TGTAdapter("GConvGRU", num_nodes=207, in_features=1, out_features=1,
        ...                    hidden=32, t_in=12, t_out=12, K=2)
        >>> y = model(x, edge_index, edge_weight)   # [B, 12, 207, 1]
    """

    def __init__(
        self,
        cell: Union[str, Type[nn.Module]],
        num_nodes: int,
        in_features: int,
        out_features: int,
        hidden: int,
        t_in: int,
        t_out: int,
        batch_mode: str = "auto",
        **cell_kwargs: Any,
    ) -> None:
        super().__init__()
        check_positive_ints(num_nodes=num_nodes, in_features=in_features, out_features=out_features, hidden=hidden,
                            t_in=t_in, t_out=t_out)
        if batch_mode not in ("loop", "union", "auto"):
            raise ValueError(f"batch_mode must be 'loop', 'union' or 'auto', got {batch_mode!r}")
        cls = resolve_cell(cell)
        init_params = inspect.signature(cls.__init__).parameters
        fwd_params = inspect.signature(cls.forward).parameters
        self.attention = "periods" in init_params
        self.lstm = "C" in fwd_params
        if "H" not in fwd_params:
            raise ValueError(f"cell {cls.__name__} has no hidden-state argument H in forward(); "
                             "only recurrent cells (X, edge_index, edge_weight, H, ...) are supported")
        kwargs = dict(cell_kwargs)
        if self.attention:
            kwargs.setdefault("periods", t_in)
        try:
            self.cell = cls(in_features, hidden, **kwargs)
        except TypeError as exc:
            raise TypeError(f"could not build {cls.__name__}(in_channels={in_features}, out_channels={hidden}, "
                            f"**{kwargs}): {exc}") from exc
        self.cell_name = cls.__name__
        if batch_mode == "auto":
            batch_mode = "loop" if cls.__name__ in _DENSE_ADJ_CELLS else "union"
        self.batch_mode = batch_mode
        self.num_nodes = num_nodes
        self.in_features = in_features
        self.out_features = out_features
        self.hidden = hidden
        self.t_in = t_in
        self.t_out = t_out
        self.head = nn.Linear(hidden, t_out * out_features)

    def _encode(self, xs: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor]) -> Tensor:
        """Run the cell over one graph sequence ``xs: [T, n, F]``; return the last ``H: [n, hidden]``."""
        if self.attention:
            return self.cell(xs.permute(1, 2, 0).contiguous(), edge_index, edge_weight, H=None)
        h: Optional[Tensor] = None
        c: Optional[Tensor] = None
        for t in range(xs.size(0)):
            if self.lstm:
                h, c = self.cell(xs[t], edge_index, edge_weight, H=h, C=c)
            else:
                h = self.cell(xs[t], edge_index, edge_weight, H=h)
        assert h is not None
        return h

    @accepts_batch()
    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                node_index: Optional[Tensor] = None) -> Tensor:
        """Forecast.

        Args:
            x (Tensor): ``[B, T_in, K, F]`` normalised history, or a PyG ``Data``/``Batch`` of
                node-first windows passed alone (the forecast is then node-first,
                ``[B*K, T_out, F_out]``; see :mod:`dynst_pyg.models.batching`).
            edge_index (Tensor): ``[2, E]`` graph on the present nodes (ids ``0..K-1``).
            edge_weight (Tensor, optional): ``[E]`` weights (default: ``None``).
            node_index (Tensor, optional): ``[K]`` original ids, required when
                ``K != num_nodes`` (default: ``None``).

        Returns:
            Tensor: ``[B, T_out, K, F_out]``.
        """
        k = check_forward_inputs(x, edge_index, edge_weight, node_index, num_nodes=self.num_nodes,
                                 in_features=self.in_features, t_in=self.t_in, model=f"TGTAdapter({self.cell_name})")
        b = x.size(0)
        edge_index = edge_index.long()
        if self.batch_mode == "union" and b > 1:
            offs = (torch.arange(b, device=edge_index.device) * k).repeat_interleave(edge_index.size(1))
            ei = edge_index.repeat(1, b) + offs.unsqueeze(0)
            ew = None if edge_weight is None else edge_weight.repeat(b)
            xs = x.permute(1, 0, 2, 3).reshape(x.size(1), b * k, -1)  # [T, B*K, F]
            h = self._encode(xs, ei, ew).view(b, k, self.hidden)
        else:
            h = torch.stack([self._encode(x[i], edge_index, edge_weight) for i in range(b)], dim=0)
        out = self.head(F.relu(h))  # [B, K, T_out * F_out]
        return out.view(b, k, self.t_out, self.out_features).transpose(1, 2).contiguous()

    def extra_repr(self) -> str:
        return (f"cell={self.cell_name}, num_nodes={self.num_nodes}, hidden={self.hidden}, t_in={self.t_in}, "
                f"t_out={self.t_out}, batch_mode={self.batch_mode!r}")
