"""SensorGate: gating, saliency, regrow scores."""

from __future__ import annotations

import pytest
import torch

from dynst_pyg.scoring.gate import SensorGate


def test_gate_zeroes_pruned_sensors_for_every_time_step_and_feature():
    g = SensorGate(4)
    g.set_active(torch.tensor([True, False, True, True]))
    x = torch.randn(2, 3, 4, 2)
    out = g(x)
    assert torch.equal(out[:, :, 1], torch.zeros(2, 3, 2))
    assert torch.equal(out[:, :, [0, 2, 3]], x[:, :, [0, 2, 3]])
    sub = g(x[:, :, [2, 3]], node_index=torch.tensor([2, 3]))
    assert torch.equal(sub, x[:, :, [2, 3]])


def test_saliency_and_regrow_match_autograd():
    torch.manual_seed(0)
    N = 5
    g = SensorGate(N, ema=0.0)
    g.set_active(torch.tensor([True, True, False, True, True]))
    w = torch.randn(N)
    x = torch.randn(3, 2, N, 1)

    def loss_fn(inp):
        return ((inp[..., 0] * w).sum(-1) ** 2).mean()

    g.train()
    out = g(x)
    loss_fn(out).backward()
    # reference: gradient w.r.t. the gated input, and w.r.t. the effective gate at its current value
    xg = (x * g.effective().detach().view(1, 1, -1, 1)).requires_grad_(True)
    loss_fn(xg).backward()
    grad = xg.grad
    sal = (xg.detach() * grad).abs().sum(dim=(0, 1, 3)) / 3
    reg = (x * grad).sum(dim=(0, 1, 3)).abs() / 3
    assert torch.allclose(g.regrow_score, reg, atol=1e-6)
    active = g.active
    assert torch.allclose(g.saliency[active], sal[active], atol=1e-6)
    assert float(g.saliency[2]) == 0.0 and float(g.regrow_score[2]) > 0  # pruned: no saliency, but a regrow signal
    # the gate parameter's gradient is the regrow signal (times the support)
    eff = torch.ones(N, requires_grad=True)
    loss_fn(x * (eff * active.float()).view(1, 1, -1, 1)).backward()


def test_ema_merges_steps():
    g = SensorGate(2, ema=0.5)
    g.train()
    x = torch.ones(1, 1, 2, 1)
    for scale in (1.0, 3.0):
        (g(x) * torch.tensor([scale, 0.0]).view(1, 1, 2, 1)).sum().backward()
    # first step initialises (no decay), second averages: 0.5 * 1 + 0.5 * 3
    assert g.saliency.tolist() == pytest.approx([2.0, 0.0])


def test_importance_combines_saliency_and_magnitude():
    g = SensorGate(3, gate_weight=0.5, marginal_weight=0.0)
    g.saliency.copy_(torch.tensor([1.0, 0.5, 0.0]))
    with torch.no_grad():
        g.gate.copy_(torch.tensor([0.0, 1.0, 2.0]))
    assert g.importance().tolist() == pytest.approx([0.5, 0.5, 0.5])
    # with marginal values recorded they enter by rank: 0.2 * saliency + 0.0 * gate + 0.8 * rank
    g2 = SensorGate(3, gate_weight=0.0, marginal_weight=0.8)
    g2.saliency.copy_(torch.tensor([1.0, 0.5, 0.0]))
    g2.record_marginal(torch.tensor([3.0, 1.0, 2.0]), torch.zeros(3), torch.arange(3))
    assert g2.importance().tolist() == pytest.approx([0.2 + 0.8, 0.1 + 0.0, 0.0 + 0.4])


def test_marginal_running_mean_and_reset_on_support_change():
    g = SensorGate(3, marginal_weight=0.8)
    for d in (1.0, 3.0):
        g.record_marginal(torch.tensor([d]), torch.tensor([0.0]), torch.tensor([1]))
    assert float(g.marginal[1]) == pytest.approx(2.0) and int(g.marginal_count[1]) == 2
    g.set_active(torch.tensor([True, True, False]))
    assert int(g.marginal_count.sum()) == 0
    with pytest.raises(ValueError, match="same shape"):
        g.record_marginal(torch.zeros(2), torch.zeros(3), torch.arange(3))


def test_regrown_sensor_restarts_from_mean_gate():
    g = SensorGate(3)
    g.set_active(torch.tensor([True, True, False]))
    with torch.no_grad():
        g.gate.copy_(torch.tensor([2.0, 4.0, 0.0]))
    g.set_active(torch.tensor([True, True, True]))
    assert float(g.gate[2].detach()) == pytest.approx(3.0)


def test_bad_input():
    with pytest.raises(ValueError, match="num_nodes"):
        SensorGate(0)
    g = SensorGate(3)
    with pytest.raises(ValueError, match="at least one"):
        g.set_active(torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="active"):
        g.set_active(torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="x"):
        g(torch.ones(2, 3, 4, 1))


def test_importance_blends_reconstruction_value():
    g = SensorGate(4, gate_weight=0.0, marginal_weight=0.0, recon_weight=0.75)
    g.saliency.copy_(torch.tensor([1.0, 0.5, 0.25, 0.0]))
    before = g.importance()
    assert torch.allclose(before, torch.tensor([1.0, 0.5, 0.25, 0.0]))  # no recon set yet: weight unused
    g.set_reconstruction(torch.tensor([0.25, 0.5, 0.75, 1.0]))
    assert torch.allclose(g.importance(), 0.25 * before + 0.75 * g.recon)
    with pytest.raises(ValueError, match="recon_weight"):
        SensorGate(4, recon_weight=1.5)
