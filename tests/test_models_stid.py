"""Tests for dynst_pyg.models.STID (exact tiny case, node-wise independence, time decoding, batches, errors)."""

from datetime import datetime

import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.loader import DataLoader

from dynst_pyg.data import prepare
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.data.windows import time_feature_channels
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.models import STID, STID_PROFILES
from dynst_pyg.graph.subgraph import induced_subgraph
from dynst_pyg.transforms.dynst_mask import DynSTMask

N, T_IN, T_OUT = 9, 4, 3
NO_EDGES = torch.zeros(2, 0, dtype=torch.long)


def windows(b=5, n=N, t=T_IN, f_data=1, seed=0, steps_per_day=288):
    """Random readings plus time channels laid out as prepare(time_features=True) writes them."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(b, t, n, f_data, generator=g)
    slot = torch.randint(0, steps_per_day, (b, 1, 1), generator=g) + torch.arange(t).view(1, t, 1)
    tod = (slot % steps_per_day).float() / steps_per_day
    dow = torch.randint(0, 7, (b, 1, 1), generator=g).float() / 7
    return torch.cat([data, tod.expand(b, t, n)[..., None], dow.expand(b, t, n)[..., None]], dim=-1)


def small_model(in_features=3, **kw):
    args = dict(embed_dim=8, node_dim=4, tod_dim=4, dow_dim=3, num_layers=2, dropout=0.1, steps_per_day=288)
    args.update(kw)
    return STID(N, in_features, 2, T_IN, T_OUT, **args)


def test_profiles_and_paper_parameter_count():
    assert STID_PROFILES["reference"] == dict(embed_dim=32, node_dim=32, tod_dim=32, dow_dim=32, num_layers=3,
                                              dropout=0.15)
    # METR-LA, 12 -> 12: hidden 4 * 32 = 128; history 12 x 1 reading (paper) or 12 x 3 channels (BasicTS input_dim=3)
    paper = STID(207, 3, 1, 12, 12, profile="reference")
    basicts = STID(207, 3, 1, 12, 12, profile="reference", embed_time_channels=True)
    assert paper.hidden_dim == 128
    assert sum(p.numel() for p in paper.parameters()) == 117_100
    assert sum(p.numel() for p in basicts.parameters()) == 117_868
    assert tuple(paper.node_emb.shape) == (207, 32) and tuple(paper.tod_emb.shape) == (288, 32)
    assert tuple(paper.dow_emb.shape) == (7, 32)
    with pytest.raises(ValueError, match="profile"):
        STID(207, profile="huge")


@pytest.mark.parametrize("b", [1, 3])
def test_shapes(b):
    y = small_model().eval()(windows(b), NO_EDGES)
    assert y.shape == (b, T_OUT, N, 2)
    assert torch.isfinite(y).all()


def test_exact_tiny_case():
    """Identity-like weights make every input of the head visible in the output."""
    model = STID(2, 3, 1, t_in=2, t_out=5, embed_dim=2, node_dim=1, tod_dim=1, dow_dim=1, num_layers=1,
                 dropout=0.0, steps_per_day=4)
    with torch.no_grad():
        model.history_embedding.weight.copy_(torch.eye(2))
        model.history_embedding.bias.zero_()
        model.node_emb.copy_(torch.tensor([[10.0], [20.0]]))
        model.tod_emb.copy_(100 * torch.arange(4.0).view(4, 1))
        model.dow_emb.copy_(1000 * torch.arange(7.0).view(7, 1))
        for p in model.encoder.parameters():  # residual layer = identity
            p.zero_()
        model.regression.weight.copy_(torch.eye(5))
        model.regression.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.5]))
    x = torch.zeros(1, 2, 2, 3)
    x[0, :, 0, 0] = torch.tensor([1.0, 2.0])  # node 0 history (t0, t1)
    x[0, :, 1, 0] = torch.tensor([3.0, 4.0])
    x[0, 0, :, 1], x[0, 1, :, 1] = 0.25, 0.5  # time of day: only the last step (0.5 -> slot 2) counts
    x[0, 0, :, 2], x[0, 1, :, 2] = 6 / 7, 3 / 7  # day of week: last step, Thursday = 3
    y = model.eval()(x, NO_EDGES)
    expected = torch.tensor([[1.0, 2.0, 10.0, 200.0, 3000.5],
                             [3.0, 4.0, 20.0, 200.0, 3000.5]]).t().reshape(1, 5, 2, 1)
    assert torch.equal(y, expected)


def test_time_decoding_of_prepared_channels_is_exact():
    steps = 3 * 288 + 17
    tfc = time_feature_channels(steps, 5, datetime(2012, 3, 1, 0, 0))  # a Thursday
    model = STID(1, 3, t_in=1)
    x = tfc.view(steps, 1, 1, 2)
    x = torch.cat([torch.zeros(steps, 1, 1, 1), x], dim=-1)
    s = torch.arange(steps)
    assert torch.equal(model.time_of_day_index(x)[:, 0], s % 288)
    assert torch.equal(model.day_of_week_index(x)[:, 0], (s // 288 + 3) % 7)
    # a value a hair below its slot (round-off, e.g. after a float16 cast) still reads that slot;
    # truncation (the reference code's int cast) would read the previous one
    k = torch.arange(288)
    below = torch.stack([k * 0.0, (k - 1e-3) / 288, (k % 7 - 1e-3) / 7], -1).view(288, 1, 1, 3)
    assert torch.equal(model.time_of_day_index(below)[:, 0], k)
    assert torch.equal(model.day_of_week_index(below)[:, 0], k % 7)
    odd = torch.tensor([1.2, -0.3, float("nan"), 0.9999]).view(4, 1, 1)
    odd = torch.cat([odd * 0, odd, odd], dim=-1).view(4, 1, 1, 3)
    assert model.time_of_day_index(odd)[:, 0].tolist() == [287, 0, 0, 287]
    assert model.day_of_week_index(odd)[:, 0].tolist() == [6, 0, 0, 6]


def test_subset_forecast_equals_full_forecast_restricted():
    torch.manual_seed(0)
    model = small_model().double().eval()
    x = windows(6).double()
    idx = torch.tensor([7, 0, 3, 5])  # unsorted on purpose
    with torch.no_grad():
        full = model(x, NO_EDGES)
        sub = model(x[:, :, idx], NO_EDGES, node_index=idx)
        wrong = model(x[:, :, idx], NO_EDGES, node_index=torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(sub, full[:, :, idx], rtol=0, atol=1e-12)
    # the node identity matters: the same inputs under other ids give another forecast
    assert (wrong - full[:, :, idx]).abs().max() > 1e-3


def test_graph_is_ignored():
    model = small_model().eval()
    x = windows(3)
    ring = torch.stack([torch.arange(N), (torch.arange(N) + 1) % N])
    with torch.no_grad():
        assert torch.equal(model(x, NO_EDGES), model(x, ring, torch.rand(N)))


def test_time_embeddings_read_the_last_input_step():
    model = small_model().eval()
    x = windows(4)
    with torch.no_grad():
        base = model(x, NO_EDGES)
        for ch, shift in ((1, 37 / 288), (2, 2 / 7)):
            last = x.clone()
            last[:, -1, :, ch] = (last[:, -1, :, ch] + shift) % 1
            assert (model(last, NO_EDGES) - base).abs().max() > 1e-4, ch
            earlier = x.clone()
            earlier[:, :-1, :, ch] = (earlier[:, :-1, :, ch] + shift) % 1
            assert torch.equal(model(earlier, NO_EDGES), base), ch  # history embeds the readings only
    both = small_model(embed_time_channels=True).eval()
    earlier = x.clone()
    earlier[:, 0, :, 1] += 0.1
    with torch.no_grad():
        assert (both(earlier, NO_EDGES) - both(x, NO_EDGES)).abs().max() > 1e-5


def test_without_time_channels():
    model = small_model(in_features=1, time_of_day_channel=None, day_of_week_channel=None).eval()
    assert model.tod_emb is None and model.dow_emb is None and model.hidden_dim == 8 + 4
    y = model(torch.randn(2, T_IN, N, 1), NO_EDGES)
    assert y.shape == (2, T_OUT, N, 2)
    only_tod = small_model(in_features=2, time_of_day_channel=-1, day_of_week_channel=None).eval()
    assert only_tod.time_of_day_channel == 1 and only_tod.hidden_dim == 8 + 4 + 4
    with pytest.raises(ValueError, match=r"time_of_day_channel=-2 is not an input channel of in_features=1.*"
                                         r"prepare\(time_features=True\)"):
        STID(N, 1)
    with pytest.raises(ValueError, match="no reading channel"):
        STID(N, 2, time_of_day_channel=0, day_of_week_channel=1)
    with pytest.raises(ValueError, match="both name input channel 2"):
        STID(N, 3, time_of_day_channel=2, day_of_week_channel=-1)
    model = small_model()
    with pytest.raises(ValueError, match="x has 1 features .* in_features=3"):
        model(torch.randn(2, T_IN, N, 1), NO_EDGES)


@pytest.mark.parametrize("kw, match", [
    (dict(num_nodes=0), "`num_nodes` must be a positive int"),
    (dict(t_in=0), "`t_in` must be a positive int"),
    (dict(out_features=1.5), "`out_features` must be a positive int"),
    (dict(steps_per_day=0), "`steps_per_day` must be a positive int"),
    (dict(embed_dim=0), "`embed_dim` must be a positive int"),
    (dict(num_layers=-1), "`num_layers` must be a positive int"),
    (dict(dropout=1.0), r"dropout must be a float in \[0, 1\)"),
    (dict(dropout=True), r"dropout must be a float in \[0, 1\)"),
    (dict(time_of_day_channel="tod"), "time_of_day_channel must be an int channel index or None"),
    (dict(day_of_week_channel=3), "day_of_week_channel=3 is not an input channel of in_features=3"),
])
def test_constructor_errors_name_the_argument(kw, match):
    args = dict(num_nodes=N, in_features=3, out_features=1, t_in=T_IN, t_out=T_OUT)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        STID(**args)


def test_forward_errors():
    model = small_model()
    x = windows(2)
    with pytest.raises(ValueError, match="pass node_index"):
        model(x[:, :, :4], NO_EDGES)
    with pytest.raises(ValueError, match=r"node_index values must lie in \[0, 8\]"):
        model(x[:, :, :2], NO_EDGES, node_index=torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="duplicate"):
        model(x[:, :, :2], NO_EDGES, node_index=torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="t_in=4"):
        model(x[:, :3], NO_EDGES)
    with pytest.raises(ValueError, match="`edge_index` has node indices"):
        model(x, torch.tensor([[0], [N]]))
    with pytest.raises(TypeError, match="edge_index is required"):
        model(x)


def test_pyg_batches_match_dense_windows():
    splits = prepare(synthetic_road_network(num_nodes=20, num_steps=200, seed=1), t_in=T_IN, t_out=T_OUT,
                                                                                time_features=True)
    assert splits.in_features == 3
    keep = [0, 3, 4, 7, 10, 11, 15, 19]
    mask = SensorMask.from_indices(keep, 20)
    transform = T.Compose([DynSTMask(mask)])
    loader = DataLoader([transform(splits.train.to_data(i)) for i in range(8)], batch_size=4)
    torch.manual_seed(0)
    model = STID(20, 3, 1, T_IN, T_OUT).eval()
    sub_ei, sub_ew = induced_subgraph(mask, splits.train.edge_index, splits.train.edge_weight)
    for j, batch in enumerate(loader):
        x, _ = splits.train.batch(torch.arange(4 * j, 4 * j + 4))
        with torch.no_grad():
            out = model(batch)
            ref = model(x[:, :, mask.keep], sub_ei, sub_ew, node_index=mask.keep)
        assert out.shape == batch.y.shape == (4 * len(keep), T_OUT, 1)
        assert torch.equal(out, ref.transpose(1, 2).reshape(-1, T_OUT, 1))


def test_gradients_reach_every_parameter_and_only_kept_node_rows():
    model = small_model().train()
    model(windows(4), NO_EDGES).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.zero_grad()
    idx = torch.tensor([1, 4, 6])
    model(windows(4)[:, :, idx], NO_EDGES, node_index=idx).square().mean().backward()
    touched = model.node_emb.grad.abs().sum(1) > 0
    assert touched.nonzero().view(-1).tolist() == [1, 4, 6]


def test_dropout_only_in_training_and_inputs_untouched():
    model = small_model(dropout=0.5)
    x = windows(3)
    x0 = x.clone()
    model.train()
    assert not torch.equal(model(x, NO_EDGES), model(x, NO_EDGES))
    model.eval()
    assert torch.equal(model(x, NO_EDGES), model(x, NO_EDGES))
    assert torch.equal(x, x0)


def test_tiny_fit_decreases_loss():
    """A daily pattern per node that only the node and time-of-day identities can tell apart."""
    torch.manual_seed(0)
    n, spd = 6, 24
    steps = torch.arange(20 * spd)
    phase = torch.arange(n).float()
    series = torch.sin(2 * torch.pi * (steps[:, None] / spd + phase / n))  # [S, n]
    tod = (steps % spd).float() / spd
    starts = torch.arange(len(steps) - T_IN - T_OUT)
    t_idx = starts[:, None] + torch.arange(T_IN)
    y_idx = starts[:, None] + T_IN + torch.arange(T_OUT)
    x = torch.stack([series[t_idx], tod[t_idx][..., None].expand(-1, -1, n),
                     torch.zeros(len(starts), T_IN, n)], dim=-1)
    y = series[y_idx][..., None]
    model = STID(n, 3, 1, T_IN, T_OUT, embed_dim=8, node_dim=4, tod_dim=4, dow_dim=2, num_layers=1,
                 steps_per_day=spd, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        first = (model(x, NO_EDGES) - y).abs().mean().item()
    for _ in range(150):
        opt.zero_grad()
        loss = (model(x, NO_EDGES) - y).abs().mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = (model(x, NO_EDGES) - y).abs().mean().item()
    assert first > 0.3 and last < 0.1 * first, (first, last)


def test_make_backbone_and_run_splits_request_time_features():
    from dynst_pyg.cli import RunSpec, load_splits
    from dynst_pyg.models import make_backbone

    model = make_backbone("stid", 20, 3, 1, 12, 12, profile="reference")
    assert isinstance(model, STID) and model.hparams == STID_PROFILES["reference"]
    with pytest.raises(ValueError, match="time_of_day_channel"):
        make_backbone("stid", 20, 1)
    spec = RunSpec(nodes=20, steps=400, backbone="stid")
    splits = load_splits(spec)
    assert splits.time_features and splits.in_features == 3
    assert not load_splits(RunSpec(nodes=20, steps=400, backbone="gwnet", time_features=False)).time_features
    assert load_splits(RunSpec(nodes=20, steps=400, backbone="gwnet")).time_features  # auto: timestamps
