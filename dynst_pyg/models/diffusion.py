r"""The diffusion graph convolution shared by Graph WaveNet and DCRNN, and its support cache.

For supports ``S_1 .. S_M`` (one diffusion step is ``x' = S_m @ x`` along the node axis,
see :mod:`dynst_pyg.models.supports`) and ``K`` diffusion steps,

.. math::
    \mathrm{out} = z W_0 + b + \sum_{m=1}^{M} \sum_{k=1}^{K} (S_m^k z) W_{m,k},

which is DCRNN's dual random-walk diffusion convolution (one ``W_0`` shared by the
``k = 0`` terms) and Graph WaveNet's graph convolution ``W [z, S_1 z, S_1^2 z, ...]``.

Node mixing and channel mixing commute, so the sum can be evaluated in two orders:

* *diffuse first*: ``S_m^k z`` for ``k = 1..K`` on the ``C_in`` input channels, each
  multiplied by its weight block;
* *project first* (Horner's rule): ``S_m (z W_{m,1} + S_m (z W_{m,2} + ...))``, so the
  diffusion runs on ``C_out`` channels; cheaper when ``C_out < C_in``.

Both give the same value up to floating-point rounding.
"""

from __future__ import annotations

import math
from typing import List, Optional

import torch
from torch import Tensor, nn

from .._checks import check_nonnegative_int, check_positive_ints
from .supports import SupportCache, diffuse, to_support_format, transition_supports

__all__ = ["DiffusionConv", "TransitionSupports"]

_INITS = ("xavier", "linear")


class DiffusionConv(nn.Module):
    r"""Diffusion convolution on node-first signals ``z [K, ..., C_in]``.

    ``out = z W_0 + b + sum_m sum_{k=1..K} (S_m^k z) W_{m,k}`` for supports ``S_m``.
    ``weight`` stacks the blocks ``[W_0; W_{1,1}; ..; W_{1,K}; W_{2,1}; ..]`` on its
    first axis, each ``[C_in, C_out]``.

    Args:
        in_channels (int): input channels ``C_in``.
        out_channels (int): output channels ``C_out``.
        num_supports (int): number of supports ``M``.
        diffusion_steps (int, optional): ``K``; ``0`` leaves only ``z W_0 + b``
            (default: ``2``).
        bias_init (float, optional): initial bias for ``init="xavier"`` (default: ``0.0``).
        project_first (bool, optional): evaluate by Horner's rule on ``C_out`` channels
            (:obj:`True`) or diffuse the ``C_in`` input channels first (:obj:`False`);
            :obj:`None` picks Horner's rule when ``C_out < C_in`` (default: :obj:`None`).
        init (str, optional): ``"xavier"``: Xavier-normal weights (gain 1.414) and a
            constant bias, as in DCRNN; ``"linear"``: the initialisation of
            :class:`torch.nn.Linear` over the ``(1 + M K) C_in`` concatenated inputs, as in
            Graph WaveNet, the weight then being stored in the memory order of
            ``Linear.weight.t()`` (default: ``"xavier"``).
    """

    def __init__(self, in_channels: int, out_channels: int, num_supports: int, diffusion_steps: int = 2,
                 bias_init: float = 0.0, *, project_first: Optional[bool] = None, init: str = "xavier") -> None:
        super().__init__()
        check_positive_ints(in_channels=in_channels, out_channels=out_channels, num_supports=num_supports)
        check_nonnegative_int(diffusion_steps, "diffusion_steps")
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_supports = num_supports
        self.diffusion_steps = diffusion_steps
        self.num_matrices = 1 + num_supports * diffusion_steps
        self.project_first = out_channels < in_channels if project_first is None else bool(project_first)
        self.init = init
        rows = self.num_matrices * in_channels
        if init == "xavier":
            self.weight = nn.Parameter(torch.empty(rows, out_channels))
            self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init)))
            nn.init.xavier_normal_(self.weight, gain=1.414)
        else:
            # torch.nn.Linear(rows, out_channels): same random draws, same memory order
            w = torch.empty(out_channels, rows)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            bound = 1.0 / math.sqrt(rows)
            self.weight = nn.Parameter(w.t())
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))

    def forward(self, z: Tensor, supports: List[Tensor]) -> Tensor:
        """Apply the convolution.

        Args:
            z (Tensor): ``[K, ..., C_in]`` node-first signal.
            supports (list[Tensor]): ``M`` dense or sparse-CSR ``[K, K]`` supports.

        Returns:
            Tensor: ``[K, ..., C_out]``.
        """
        if len(supports) != self.num_supports:
            raise ValueError(f"supports must hold {self.num_supports} matrices, got {len(supports)}")
        c = self.in_channels
        w = self.weight
        out = torch.addmm(self.bias, z.reshape(-1, c), w[:c]).view(*z.shape[:-1], self.out_channels)
        if self.diffusion_steps == 0:
            return out
        j = 1
        if self.project_first:
            for s in supports:
                ys = [torch.matmul(z, w[(j + o) * c:(j + o + 1) * c]) for o in range(self.diffusion_steps)]
                j += self.diffusion_steps
                acc = ys[-1]
                for y in reversed(ys[:-1]):
                    acc = diffuse(s, acc) + y
                out = out + diffuse(s, acc)
        else:
            z = z.contiguous()
            for s in supports:
                zk = z
                for _ in range(self.diffusion_steps):
                    zk = diffuse(s, zk)
                    out = out + torch.matmul(zk, w[j * c:(j + 1) * c])
                    j += 1
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, num_supports={self.num_supports}, "
                f"diffusion_steps={self.diffusion_steps}, project_first={self.project_first}")


class TransitionSupports:
    """Random-walk supports of a graph, built once per graph and cached by tensor identity.

    Calling it with the *same* ``edge_index``/``edge_weight`` tensor objects, node count,
    device and dtype returns the supports built the first time (see :class:`SupportCache`).

    Args:
        kind (str, optional): ``"dual"`` (forward and backward walks) or ``"forward"``,
            see :func:`~dynst_pyg.models.supports.transition_supports` (default: ``"dual"``).
        sparse (bool or str, optional): storage of the supports, see
            :func:`~dynst_pyg.models.supports.to_support_format` (default: ``"auto"``).
        maxsize (int, optional): number of graphs remembered (default: ``4``).
    """

    def __init__(self, kind: str = "dual", sparse: "bool | str" = "auto", maxsize: int = 4) -> None:
        if kind not in ("dual", "forward"):
            raise ValueError(f"kind must be 'dual' or 'forward', got {kind!r}")
        if sparse not in (True, False, "auto"):
            raise ValueError(f"sparse must be True, False or 'auto', got {sparse!r}")
        self.kind = kind
        self.sparse = sparse
        self.cache = SupportCache(maxsize)

    @property
    def num_supports(self) -> int:
        """Number of supports per graph: 2 for ``"dual"``, 1 for ``"forward"``."""
        return 2 if self.kind == "dual" else 1

    def __call__(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int, *,
                 device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32) -> List[Tensor]:
        """The supports of a ``num_nodes``-node graph (validated by the caller).

        Args:
            edge_index (Tensor): ``[2, E]`` graph, node ids ``0..num_nodes-1``.
            edge_weight (Tensor, optional): ``[E]`` non-negative weights.
            num_nodes (int): number of nodes.
            device (torch.device, optional): where the supports live (default: ``edge_index.device``).
            dtype (torch.dtype, optional): support dtype (default: ``torch.float32``).
        """
        device = edge_index.device if device is None else device
        return self.cache.get(
            edge_index, edge_weight, num_nodes, device, dtype,
            lambda: [to_support_format(m, self.sparse) for m in
                     transition_supports(edge_index, edge_weight, num_nodes, kind=self.kind,
                                         dtype=dtype, device=device)])

    @property
    def builds(self) -> int:
        """How many times supports were (re)built."""
        return self.cache.builds

    def clear(self) -> None:
        """Forget every cached graph."""
        self.cache.clear()

    def __len__(self) -> int:
        return len(self.cache)

    def __repr__(self) -> str:
        return f"TransitionSupports(kind={self.kind!r}, sparse={self.sparse!r}, cached={len(self)})"
