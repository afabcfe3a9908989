"""Tests for dynst_pyg.models.TGTAdapter: PyG-Temporal cells behind the DESIGN §4 interface."""

import pytest
import torch

from dynst_pyg.models import TGTAdapter

N = 8
KEPT = torch.tensor([0, 1, 2, 3, 4])
PRUNED = torch.tensor([5, 6, 7])


def two_rings():
    """Directed weighted ring on KEPT plus a separate ring on PRUNED (both directions, no isolates)."""
    edges = []
    for grp in (KEPT.tolist(), PRUNED.tolist()):
        for a, b in zip(grp, grp[1:] + grp[:1]):
            edges += [(a, b), (b, a)]
    ei = torch.tensor(edges).t()
    ew = torch.linspace(0.5, 1.5, ei.size(1))
    pos = torch.full((N,), -1)
    pos[KEPT] = torch.arange(KEPT.numel())
    m = (pos[ei[0]] >= 0) & (pos[ei[1]] >= 0)
    return ei, ew, pos[ei[:, m]], ew[m]


CELLS = [
    ("GConvGRU", dict(K=2)),
    ("TGCN", {}),
    ("A3TGCN", {}),
    ("DCRNN", dict(K=2)),
    ("GConvLSTM", dict(K=2)),
]


def make(cell, kw, **extra):
    torch.manual_seed(0)
    return TGTAdapter(cell, num_nodes=N, in_features=2, out_features=1, hidden=6, t_in=4, t_out=3, **extra, **kw)


@pytest.mark.parametrize("cell,kw", CELLS)
@pytest.mark.parametrize("b", [1, 3])
def test_shapes_and_finite(cell, kw, b):
    ei, ew, _, _ = two_rings()
    model = make(cell, kw).eval()
    y = model(torch.randn(b, 4, N, 2), ei, ew)
    assert y.shape == (b, 3, N, 1) and torch.isfinite(y).all()


@pytest.mark.parametrize("cell,kw", CELLS)
def test_union_batching_equals_loop(cell, kw):
    ei, ew, _, _ = two_rings()
    loop = make(cell, kw, batch_mode="loop").eval()
    union = make(cell, kw, batch_mode="union").eval()
    union.load_state_dict(loop.state_dict())
    x = torch.randn(3, 4, N, 2)
    with torch.no_grad():
        assert torch.allclose(loop(x, ei, ew), union(x, ei, ew), atol=1e-5)


@pytest.mark.parametrize("cell,kw", CELLS[:3])
def test_subgraph_equals_full_graph_with_islands(cell, kw):
    ei, ew, sei, sew = two_rings()
    model = make(cell, kw).eval()
    x = torch.randn(2, 4, N, 2)
    with torch.no_grad():
        full = model(x, ei, ew)[:, :, KEPT]
        sub = model(x[:, :, KEPT], sei, sew, node_index=KEPT)
    assert torch.allclose(full, sub, atol=1e-5)


# (A3TGCN is left out on purpose: it restarts its TGCN from H = 0 at every period, so its reset
# gate never influences the output and gets a zero gradient by construction, not by the adapter.)
@pytest.mark.parametrize("cell,kw", [CELLS[0], CELLS[1], CELLS[4]])
def test_gradients_reach_every_parameter(cell, kw):
    ei, ew, _, _ = two_rings()
    model = make(cell, kw).train()
    model(torch.randn(2, 4, N, 2), ei, ew).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_cell_class_accepted_and_clear_errors():
    from torch_geometric_temporal.nn.recurrent import TGCN

    ei, ew, sei, sew = two_rings()
    model = make(TGCN, {})
    assert model.cell_name == "TGCN" and model.batch_mode == "union"
    assert make("DCRNN", dict(K=2)).batch_mode == "loop"
    with pytest.raises(ValueError, match="NoSuchCell"):
        make("NoSuchCell", {})
    with pytest.raises(TypeError, match="cell"):
        make(42, {})
    with pytest.raises(ValueError, match="node_index"):
        model(torch.randn(1, 4, KEPT.numel(), 2), sei, sew)
    with pytest.raises(ValueError, match="t_in"):
        model(torch.randn(1, 5, N, 2), ei, ew)
    with pytest.raises(ValueError, match="batch_mode"):
        make("TGCN", {}, batch_mode="fast")


def test_determinism_under_seed():
    ei, ew, _, _ = two_rings()
    x = torch.randn(2, 4, N, 2)
    a = make("GConvGRU", dict(K=2)).eval()(x, ei, ew)
    b = make("GConvGRU", dict(K=2)).eval()(x, ei, ew)
    assert torch.equal(a, b)
