"""The shared DiffusionConv gives bit-for-bit the outputs of the two copies it replaced.

``_old_gwn_gconv`` and ``_old_dcrnn_forward`` are verbatim copies of the graph convolutions
that Graph WaveNet (``GraphWaveNet._gconv`` with its ``nn.Linear`` weights) and DCRNN
(``DiffusionConv.forward``) had before they shared one layer; the tests compare with
``torch.equal``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dynst_pyg.models import DCRNN, DiffusionConv, GraphWaveNet, TransitionSupports, transition_supports
from dynst_pyg.models.supports import diffuse, to_support_format


# --------------------------------------------------------------------------- the replaced code
def _old_gwn_gconv(h, supports, mlp: nn.Linear, order: int, dropout: float, training: bool):
    c = h.size(-1)
    w = mlp.weight
    out = F.linear(h, w[:, :c], mlp.bias)
    j = 1
    for s in supports:
        ys = [F.linear(h, w[:, (j + o) * c:(j + o + 1) * c]) for o in range(order)]
        j += order
        z = ys[-1]
        for y in reversed(ys[:-1]):
            z = diffuse(s, z) + y
        out = out + diffuse(s, z)
    return F.dropout(out, dropout, training=training)


def _old_dcrnn_forward(conv, z, supports):
    c = conv.in_channels
    w = conv.weight
    out = torch.addmm(conv.bias, z.reshape(-1, c), w[:c]).view(*z.shape[:-1], conv.out_channels)
    if conv.diffusion_steps == 0:
        return out
    j = 1
    if conv.out_channels < c:
        for s in supports:
            ys = [torch.matmul(z, w[(j + o) * c:(j + o + 1) * c]) for o in range(conv.diffusion_steps)]
            j += conv.diffusion_steps
            acc = ys[-1]
            for y in reversed(ys[:-1]):
                acc = diffuse(s, acc) + y
            out = out + diffuse(s, acc)
    else:
        z = z.contiguous()
        for s in supports:
            zk = z
            for _ in range(conv.diffusion_steps):
                zk = diffuse(s, zk)
                out = out + torch.matmul(zk, w[j * c:(j + 1) * c])
                j += 1
    return out


def _graph(k: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, k, (2, 3 * k), generator=g)
    return ei, torch.rand(ei.size(1), generator=g) + 0.1


def _supports(k: int, seed: int, sparse):
    ei, ew = _graph(k, seed)
    return [to_support_format(s, sparse) for s in transition_supports(ei, ew, k)]


# --------------------------------------------------------------------------- layer level
@pytest.mark.parametrize("c_in, c_out", [(4, 4), (8, 4), (4, 8), (16, 16), (3, 5)])
@pytest.mark.parametrize("sparse", [False, True])
def test_linear_init_reproduces_graph_wavenet_linear_layer_bit_for_bit(c_in, c_out, sparse):
    order, m = 2, 3
    torch.manual_seed(7)
    lin = nn.Linear((order * m + 1) * c_in, c_out)
    torch.manual_seed(7)
    conv = DiffusionConv(c_in, c_out, m, order, project_first=True, init="linear")
    # same random draws, same values, same memory order as Linear.weight.t()
    assert torch.equal(conv.weight, lin.weight.t()) and torch.equal(conv.bias, lin.bias)
    assert conv.weight.stride() == lin.weight.t().stride()
    h = torch.randn(7, 3, 5, c_in)
    sup = _supports(7, 1, sparse)[:2] + [torch.softmax(torch.randn(7, 7), 1).t()]
    assert torch.equal(conv(h, sup), _old_gwn_gconv(h, sup, lin, order, 0.0, False))


@pytest.mark.parametrize("c_in, c_out, steps", [(6, 8, 2), (9, 3, 3), (8, 8, 2), (5, 4, 0)])
def test_xavier_layer_is_the_former_dcrnn_layer_bit_for_bit(c_in, c_out, steps):
    torch.manual_seed(1)
    conv = DiffusionConv(c_in, c_out, 2, steps, bias_init=1.0)
    torch.manual_seed(1)  # the former init: xavier-normal weight (gain 1.414), constant bias
    w = torch.empty((1 + 2 * steps) * c_in, c_out)
    nn.init.xavier_normal_(w, gain=1.414)
    assert torch.equal(conv.weight, w) and bool((conv.bias == 1.0).all())
    assert conv.project_first == (c_out < c_in)
    z = torch.randn(7, 4, c_in)
    for sparse in (False, True):
        sup = _supports(7, 2, sparse)
        assert torch.equal(conv(z, sup), _old_dcrnn_forward(conv, z, sup))


def test_both_evaluation_orders_agree_and_bad_arguments_are_named():
    torch.manual_seed(0)
    a = DiffusionConv(5, 5, 2, 3, project_first=True)
    b = DiffusionConv(5, 5, 2, 3, project_first=False)
    b.load_state_dict(a.state_dict())
    z, sup = torch.randn(9, 2, 5), _supports(9, 3, False)
    assert torch.allclose(a(z, sup), b(z, sup), atol=1e-5)
    with pytest.raises(ValueError, match="supports must hold 2"):
        a(z, sup[:1])
    with pytest.raises(ValueError, match="init must be one of"):
        DiffusionConv(2, 2, 1, init="kaiming")
    with pytest.raises(ValueError, match="`in_channels` must be a positive int"):
        DiffusionConv(0, 2, 1)
    with pytest.raises(ValueError, match="`diffusion_steps` must be a non-negative int"):
        DiffusionConv(2, 2, 1, -1)


# --------------------------------------------------------------------------- model level
def _old_gwn_forward(model: GraphWaveNet, x, supports, linears):
    """The former ``forward_with_supports`` with the former ``_gconv`` on ``linears``."""
    b, t, k, _ = x.shape
    h = x.permute(2, 0, 1, 3)
    if t < model.receptive_field:
        h = F.pad(h, (0, 0, model.receptive_field - t, 0))
    h = model.start_conv(h)
    fl, ks = model.final_length, model.kernel_size
    skip = None
    n_layers = len(model.filter_gate)
    for i, d in enumerate(model.dilations):
        residual = h
        length = h.size(2) - (ks - 1) * d
        taps = torch.cat([h[:, :, j * d: j * d + length] for j in range(ks)], dim=-1) if ks > 1 else h
        filt, gate = model.filter_gate[i](taps).chunk(2, dim=-1)
        h = torch.tanh(filt) * torch.sigmoid(gate)
        s = model.skip_convs[i](h[:, :, -fl:])
        skip = s if skip is None else s + skip
        if i == n_layers - 1:
            break
        h = _old_gwn_gconv(h.contiguous(), supports, linears[i], model.order, model.dropout, model.training)
        h = h + residual[:, :, -length:]
        h = model.bns[i](h.reshape(-1, h.size(-1))).view(h.shape)
    h = F.relu(model.end_conv_1(F.relu(skip)))
    h = model.end_conv_2(h.reshape(k, b, -1))
    return h.view(k, b, model.t_out, model.out_features).permute(1, 2, 0, 3).contiguous()


def _as_linears(model: GraphWaveNet):
    out = []
    for conv in model.gconvs:
        lin = nn.Linear(conv.weight.size(0), conv.out_channels)
        lin.weight = nn.Parameter(conv.weight.detach().t())  # the same storage, Linear's layout
        lin.bias = nn.Parameter(conv.bias.detach())
        out.append(lin)
    return out


@pytest.mark.parametrize("kw", [dict(), dict(residual_channels=8, dilation_channels=4, skip_channels=8,
                                            end_channels=8, support_kind="forward")])
def test_graph_wavenet_forward_is_unchanged_bit_for_bit(kw):
    torch.manual_seed(0)
    model = GraphWaveNet(9, t_in=8, t_out=3, **kw).eval()
    ei, ew = _graph(9, 5)
    keep = torch.tensor([0, 2, 3, 5, 8])
    x = torch.randn(3, 8, 5, 1)
    sub_ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    with torch.no_grad():
        sup = model.supports(sub_ei, None, keep)
        new = model(x, sub_ei, None, node_index=keep)
        old = _old_gwn_forward(model, x, sup, _as_linears(model))
        full = model(torch.randn(2, 8, 9, 1), ei, ew)
    assert torch.equal(new, old)
    assert full.shape == (2, 3, 9, 1)


def test_graph_wavenet_loads_state_dicts_written_with_linear_graph_convolutions():
    torch.manual_seed(0)
    model = GraphWaveNet(6, t_in=8, t_out=2).eval()
    old_style = {}
    for key, value in model.state_dict().items():
        if key.startswith("gconvs."):
            key = key.replace("gconvs.", "gconv_mlps.")
            value = value.t().contiguous() if key.endswith(".weight") else value
        old_style[key] = value
    torch.manual_seed(1)
    fresh = GraphWaveNet(6, t_in=8, t_out=2).eval()
    fresh.load_state_dict(old_style)
    ei, _ = _graph(6, 0)
    x = torch.randn(2, 8, 6, 1)
    with torch.no_grad():
        assert torch.equal(fresh(x, ei), model(x, ei))


def test_dcrnn_cells_use_the_shared_layer_and_one_support_cache():
    model = DCRNN(7, t_in=4, t_out=2, hidden=6)
    assert isinstance(model.encoder[0].gates, DiffusionConv)
    assert isinstance(model.support_cache, TransitionSupports)
    ei, ew = _graph(7, 0)
    x = torch.randn(2, 4, 7, 1)
    model(x, ei, ew)
    model(x, ei, ew)
    assert model.support_cache.builds == 1
    assert "kind='dual'" in repr(model.support_cache)
