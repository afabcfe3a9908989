"""Missing readings end to end in the data layer: a gap changes nothing but what it should."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynst_pyg.data import prepare
from dynst_pyg import DynSTMask
from dynst_pyg.training.references import TimeOfDayAverage, persistence_forecast
from dynst_pyg.data import SpatioTemporalDataset, StandardScaler, forward_fill
from dynst_pyg.datasets import from_static_signal, to_static_signal, to_temporal_signal
from dynst_pyg.metrics import forecast_metrics, masked_mae, masked_mape, masked_rmse

NAN = float("nan")


def line_graph(n: int) -> torch.Tensor:
    src = torch.arange(n - 1)
    return torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])


def ramp(T: int = 40, N: int = 3, F: int = 1) -> torch.Tensor:
    return (torch.arange(T * N * F, dtype=torch.float32).reshape(T, N, F) % 17) + 1.0


# ---------------------------------------------------------------- the mask itself
def test_mask_from_nan_null_value_and_explicit_mask():
    s = torch.tensor([[1.0, NAN], [0.0, 4.0], [5.0, 6.0]])
    ds = SpatioTemporalDataset(s, line_graph(2), null_value=0.0)
    assert ds.observed[..., 0].tolist() == [[True, False], [False, True], [True, True]]
    assert ds.null_mask() is ds.observed and ds.observed.dtype == torch.bool
    # unobserved cells hold NaN, observed ones keep their value
    assert torch.equal(torch.isnan(ds.series), ~ds.observed) and float(ds.series[2, 1, 0]) == 6.0
    assert ds.observed_share == pytest.approx(4 / 6)
    explicit = torch.tensor([[True, True], [True, True], [False, True]])
    ds2 = SpatioTemporalDataset(s, line_graph(2), observed=explicit)
    # the explicit mask removes [2, 0]; NaN still marks [0, 1]; without null_value 0.0 is a reading
    assert ds2.observed[..., 0].tolist() == [[True, False], [True, True], [False, True]]
    assert float(ds2.series[1, 0, 0]) == 0.0 and math.isnan(float(ds2.series[2, 0, 0]))
    assert not torch.isnan(s[2, 0])  # the caller's tensor is untouched


def test_replace_takes_the_new_series_gaps():
    ds = SpatioTemporalDataset(torch.tensor([[1.0, NAN], [3.0, 4.0]]), line_graph(2))
    new = ds.replace(series=torch.tensor([[NAN, 2.0], [3.0, 4.0]]))
    assert new.observed[..., 0].tolist() == [[False, True], [True, True]]
    kept = ds.replace(name="x")
    assert torch.equal(kept.observed, ds.observed)


def test_forward_fill_exact():
    s = torch.tensor([[NAN, 2.0], [1.0, NAN], [NAN, 3.0], [NAN, NAN], [4.0, NAN]]).unsqueeze(-1)
    out = forward_fill(s)
    expected = torch.tensor([[NAN, 2.0], [1.0, 2.0], [1.0, 3.0], [1.0, 3.0], [4.0, 3.0]]).unsqueeze(-1)
    assert torch.equal(torch.isnan(out), torch.isnan(expected))
    assert torch.equal(out.nan_to_num(-1), expected.nan_to_num(-1))
    assert math.isnan(float(s[1, 1, 0]))  # input untouched
    # an explicit mask hides a finite value too
    obs = ~torch.isnan(s)
    obs[4, 0, 0] = False
    assert float(forward_fill(s, obs)[4, 0, 0]) == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=2, max_size=2), min_size=1, max_size=12))
def test_forward_fill_is_the_last_observation(rows):
    s = torch.tensor([[NAN if v is None else float(v) for v in r] for r in rows]).unsqueeze(-1)
    out = forward_fill(s)
    for n in range(2):
        last = NAN
        for t in range(len(rows)):
            if rows[t][n] is not None:
                last = float(rows[t][n])
            got = float(out[t, n, 0])
            assert (math.isnan(got) and math.isnan(last)) or got == last


# ---------------------------------------------------------------- prepare: inputs, targets, scaler
def tiny_with_gaps() -> SpatioTemporalDataset:
    # T = 10, N = 2; sensor 0 misses steps 0 and 3, sensor 1 misses step 4 (val/test targets later)
    s = torch.tensor([[NAN, 10.0], [2.0, 11.0], [3.0, 12.0], [NAN, 13.0], [5.0, NAN],
                      [6.0, 15.0], [7.0, 16.0], [8.0, 17.0], [9.0, NAN], [10.0, 19.0]]).unsqueeze(-1)
    return SpatioTemporalDataset(s, line_graph(2))


def test_input_fill_rule_exact_and_targets_keep_nan():
    ds = tiny_with_gaps()
    sp = prepare(ds, t_in=2, t_out=1, ratios=(0.6, 0.2, 0.2))
    n = sp.train_steps
    raw = ds.series[:n, :, 0]
    obs = ~torch.isnan(raw)
    vals = raw[obs].double()
    mean, std = vals.mean(), vals.std(unbiased=False)
    # scaler = statistics of the observed training cells only
    assert float(sp.scaler.mean[0]) == pytest.approx(float(mean), rel=1e-6)
    assert float(sp.scaler.std[0]) == pytest.approx(float(std), rel=1e-6)
    # inputs: last observation carried forward, the training mean (normalised 0) before the first one
    filled = torch.tensor([[NAN, 10.0], [2.0, 11.0], [3.0, 12.0], [3.0, 13.0], [5.0, 13.0],
                           [6.0, 15.0], [7.0, 16.0], [8.0, 17.0], [9.0, 17.0], [10.0, 19.0]])
    expected = ((filled.double() - mean) / std).nan_to_num(0.0).float()
    assert torch.allclose(sp.train.inputs[..., 0], expected, atol=1e-6)
    assert float(sp.train.inputs[0, 0, 0]) == 0.0
    # targets are the raw series, NaN at the gaps
    _, y = sp.test.tensors()
    steps = sp.test.starts + 2
    assert torch.equal(y[:, 0].nan_to_num(-1), ds.series[steps].nan_to_num(-1))
    assert torch.equal(torch.isnan(sp.train.targets), ~ds.observed) and int(torch.isnan(sp.train.targets).sum()) == 4


def test_missing_indicator_channels_and_layout():
    ds = tiny_with_gaps()
    sp = prepare(ds, t_in=2, t_out=1, ratios=(0.6, 0.2, 0.2), missing_indicator=True, time_features=True)
    assert sp.in_features == 1 + 1 + 2 and sp.missing_indicator
    assert torch.equal(sp.train.inputs[..., 1], ds.observed[..., 0].float())
    plain = prepare(ds, t_in=2, t_out=1, ratios=(0.6, 0.2, 0.2), time_features=True)
    assert torch.equal(sp.train.inputs[..., 0], plain.train.inputs[..., 0])
    assert torch.equal(sp.train.inputs[..., 2:], plain.train.inputs[..., 1:])
    # reprepare keeps the layout
    assert sp.reprepare(ds).in_features == 4


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_scaler_stats_are_those_of_observed_cells(seed, per_node):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(30, 3, 2, generator=g) * 4 + 9
    gaps = torch.rand(30, 3, 2, generator=g) < 0.3
    gaps[0] = False  # every sensor keeps a reading
    sc = StandardScaler.fit(s.masked_fill(gaps, NAN), per_node=per_node)
    sc2 = StandardScaler.fit(s, per_node=per_node, observed=~gaps)  # same thing through the mask
    for n in range(3) if per_node else [None]:
        for f in range(2):
            cell = ~gaps[:, :, f] if n is None else ~gaps[:, n, f]
            v = (s[:, :, f] if n is None else s[:, n, f])[cell].double()
            m = sc.mean[f] if n is None else sc.mean[n, f]
            sd = sc.std[f] if n is None else sc.std[n, f]
            assert float(m) == pytest.approx(float(v.mean()), rel=1e-5)
            assert float(sd) == pytest.approx(float(v.std(unbiased=False)), rel=1e-5)
    assert torch.equal(sc.mean, sc2.mean) and torch.equal(sc.std, sc2.std)


def test_a_gap_changes_nothing_but_what_it_should():
    """Hiding one training reading (two different values behind it) changes only the cells it should."""
    base = ramp(T=40, N=3)
    gap_t, gap_n = 9, 1
    a = base.clone()
    b = base.clone()
    b[gap_t, gap_n, 0] = 1000.0  # a different value behind the same gap
    obs = torch.ones(40, 3, 1, dtype=torch.bool)
    obs[gap_t, gap_n, 0] = False
    sa = prepare(SpatioTemporalDataset(a, line_graph(3), observed=obs, interval_minutes=360), t_in=3, t_out=2)
    sb = prepare(SpatioTemporalDataset(b, line_graph(3), observed=obs, interval_minutes=360), t_in=3, t_out=2)
    full = prepare(SpatioTemporalDataset(a, line_graph(3), interval_minutes=360), t_in=3, t_out=2)
    # what is behind a gap is never read: scaler, inputs, targets, references all agree
    assert torch.equal(sa.scaler.mean, sb.scaler.mean) and torch.equal(sa.scaler.std, sb.scaler.std)
    assert torch.equal(sa.train.inputs, sb.train.inputs)
    assert torch.equal(sa.train.targets.nan_to_num(-1), sb.train.targets.nan_to_num(-1))
    assert torch.equal(TimeOfDayAverage(sa).table, TimeOfDayAverage(sb).table)
    # against the complete series the inputs differ only at the gap cell (filled with the previous reading)
    raw_in_a = sa.scaler.inverse_transform(sa.train.inputs, features=None)
    raw_in_full = full.scaler.inverse_transform(full.train.inputs, features=None)
    diff = ~torch.isclose(raw_in_a, raw_in_full, atol=1e-4)
    assert diff.nonzero().tolist() == [[gap_t, gap_n, 0]]
    assert float(raw_in_a[gap_t, gap_n, 0]) == pytest.approx(float(a[gap_t - 1, gap_n, 0]), abs=1e-4)
    # and the targets differ only there (NaN)
    assert torch.isnan(sa.train.targets).nonzero().tolist() == [[gap_t, gap_n, 0]]


def test_time_of_day_ignores_the_gap():
    pattern = torch.tensor([10.0, 20.0, 30.0, 40.0])
    series = pattern.repeat(10).reshape(40, 1, 1).repeat(1, 2, 1)
    series[:, 1] += torch.arange(40, dtype=torch.float32).reshape(40, 1)  # sensor 1 drifts
    series[5, 1, 0] = NAN  # slot 1 of day 1 is missing
    ds = SpatioTemporalDataset(series, line_graph(2), interval_minutes=360)
    sp = prepare(ds, t_in=2, t_out=2, ratios=(0.6, 0.2, 0.2))
    ha = TimeOfDayAverage(sp)
    n = sp.train_steps
    slot1 = [t for t in range(1, n, 4) if t != 5]
    assert float(ha.table[1, 1, 0]) == pytest.approx(float(series[slot1, 1, 0].mean()))
    assert float(ha.table[1, 0, 0]) == pytest.approx(20.0)


def test_persistence_carries_the_last_observation_over_a_gap():
    s = ramp(T=40, N=2)
    s[20:23, 0, 0] = NAN
    ds = SpatioTemporalDataset(s, line_graph(2))
    sp = prepare(ds, t_in=3, t_out=2, ratios=(0.5, 0.25, 0.25))
    idx = int((sp.val.starts == 20).nonzero()[0])
    p = persistence_forecast(sp.val, sp, torch.tensor([idx]))  # sensor 0's inputs (steps 20..22) are all missing
    assert float(p[0, 0, 0, 0]) == pytest.approx(float(s[19, 0, 0]), abs=1e-4)
    assert float(p[0, 1, 1, 0]) == pytest.approx(float(s[22, 1, 0]), abs=1e-4)


def test_sensor_without_training_reading_is_refused_by_id():
    s = ramp(T=40, N=3)
    s[:30, 2, 0] = NAN
    ds = SpatioTemporalDataset(s, line_graph(3), sensor_id=["a", "b", "c7"])
    with pytest.raises(ValueError, match=r"'c7' \(f0\).*select_nodes"):
        prepare(ds, t_in=2, t_out=2)
    # dropping it as the message suggests works
    kept = ds.select_nodes(ds.observed[:30].any(0).all(-1))
    assert kept.sensor_id == ["a", "b"] and len(prepare(kept, t_in=2, t_out=2).train) > 0


def test_train_series_is_normalised_targets_and_their_validity():
    ds = SpatioTemporalDataset(torch.cat([tiny_with_gaps().series, ramp(10, 2)], -1), line_graph(2))
    sp = prepare(ds, t_in=2, t_out=1, ratios=(0.6, 0.2, 0.2), target_features=(1, 0))
    series, valid = sp.train_series()
    n = sp.train_steps
    assert series.shape == valid.shape == (n, 2, 2)
    assert torch.equal(valid, ds.observed[:n][..., [1, 0]])
    expected = (ds.series[:n][..., [1, 0]] - sp.scaler.mean[[1, 0]]) / sp.scaler.std[[1, 0]]
    assert torch.allclose(series[valid], expected[valid]) and bool(torch.isnan(series[~valid]).all())
    # where observed, equal to the model inputs of the same features
    assert torch.allclose(series[valid], sp.train.inputs[:n][..., [1, 0]][valid])


# ---------------------------------------------------------------- metrics
def test_metric_with_a_gap_equals_the_metric_without_that_cell():
    g = torch.Generator().manual_seed(0)
    true = torch.rand(1, 3, 4, 1, generator=g) * 50 + 10
    pred = true + torch.randn(1, 3, 4, 1, generator=g)
    gapped = true.clone()
    gapped[0, 1, 2, 0] = NAN
    keep = ~torch.isnan(gapped)
    p, t = pred[keep].reshape(1, -1), true[keep].reshape(1, -1)
    assert float(masked_mae(pred, gapped)) == pytest.approx(float((p - t).abs().mean()), rel=1e-6)
    assert float(masked_rmse(pred, gapped)) == pytest.approx(float(((p - t) ** 2).mean().sqrt()), rel=1e-6)
    assert float(masked_mape(pred, gapped)) == pytest.approx(float(100 * ((p - t).abs() / t).mean()), rel=1e-5)
    m = forecast_metrics(pred, gapped, horizons=(2,))
    h2 = keep[:, 1]
    assert m["mae_h2"] == pytest.approx(float((pred[:, 1][h2] - true[:, 1][h2]).abs().mean()), rel=1e-6)


def test_loss_gradient_is_finite_and_zero_at_a_gap():
    true = torch.tensor([[1.0, NAN, 3.0]])
    pred = torch.tensor([[2.0, 5.0, 1.0]], requires_grad=True)
    for fn in (masked_mae, masked_rmse, masked_mape):
        pred.grad = None
        fn(pred, true).backward()
        assert bool(torch.isfinite(pred.grad).all()) and float(pred.grad[0, 1]) == 0.0


# ---------------------------------------------------------------- slicing, transforms, round trips
def gappy(N: int = 4) -> SpatioTemporalDataset:
    s = ramp(T=30, N=N, F=2)
    s[3, 1, 0] = NAN
    s[7, 2, 1] = NAN
    s[8, 3, :] = NAN
    pos = torch.stack([torch.arange(N, dtype=torch.float32), -torch.arange(N, dtype=torch.float32)], 1)
    return SpatioTemporalDataset(s, line_graph(N), pos=pos, sensor_id=[f"s{i}" for i in range(N)])


def test_dynst_mask_slices_the_mask_like_the_series():
    ds = gappy()
    out = DynSTMask(torch.tensor([0, 2, 3]), num_nodes=4)(ds)
    keep = [0, 2, 3]
    assert torch.equal(out.observed, ds.observed[:, keep])
    assert torch.equal(out.series.nan_to_num(-1), ds.series[:, keep].nan_to_num(-1))
    assert out.sensor_id == ["s0", "s2", "s3"] and torch.equal(out.pos, ds.pos[keep])
    assert out.meta["n_id"].tolist() == keep
    assert out.edge_index.tolist() == [[1, 2], [2, 1]]  # only 2-3 survives, relabelled
    assert ds.num_nodes == 4 and ds.observed.shape == (30, 4, 2)  # input untouched


def test_select_nodes_order_bool_and_errors():
    ds = gappy()
    sub = ds.select_nodes(torch.tensor([3, 1]))
    assert sub.sensor_id == ["s3", "s1"] and torch.equal(sub.observed, ds.observed[:, [3, 1]])
    assert sub.edge_index.numel() == 0
    twice = sub.select_nodes(torch.tensor([1]))
    assert twice.meta["n_id"].tolist() == [1]  # always refers to the first dataset
    assert ds.select_nodes(torch.tensor([True, False, True, True])).sensor_id == ["s0", "s2", "s3"]
    for bad, match in ((torch.tensor([0, 0]), "duplicate"), (torch.tensor([4]), "0..3"),
                       (torch.tensor([], dtype=torch.long), "no sensor"), (torch.tensor([True]), "N = 4")):
        with pytest.raises(ValueError, match=match):
            ds.select_nodes(bad)


def test_window_dataset_transform_applies_to_to_data():
    ds = gappy()
    sp = prepare(ds, t_in=3, t_out=2, ratios=(0.6, 0.2, 0.2))
    w = sp.train
    plain = w.to_data(5)  # targets are steps 8 and 9; sensor 3 has no reading at step 8
    assert tuple(plain.y.shape) == (4, 2, 1) and torch.isnan(plain.y).nonzero().tolist() == [[3, 0, 0]]
    w.transform = DynSTMask(torch.tensor([1, 3]), num_nodes=4)
    data = w.to_data(5)
    assert data.num_nodes == 2 and data.sensor_id == ["s1", "s3"]
    assert torch.equal(data.y.nan_to_num(-1), plain.y[[1, 3]].nan_to_num(-1))
    with pytest.raises(TypeError, match="transform"):
        type(w)(w.inputs, w.targets, w.starts, 3, 2, w.edge_index, w.edge_weight, transform=5)


def test_save_load_round_trip_keeps_the_mask(tmp_path):
    ds = gappy()
    obs = ds.observed.clone()
    obs[0, 0, 0] = False
    ds = ds.replace(observed=obs, meta={"note": "x", "ids": [1, 2]})
    ds.save(tmp_path / "d.pt")
    back = SpatioTemporalDataset.load(tmp_path / "d.pt")
    assert torch.equal(back.observed, ds.observed) and torch.equal(back.series.nan_to_num(-1), ds.series.nan_to_num(-1))
    assert back.sensor_id == ds.sensor_id and torch.equal(back.pos, ds.pos) and back.meta == ds.meta
    with pytest.raises(TypeError, match="meta"):
        ds.replace(meta={"bad": object()}).save(tmp_path / "e.pt")


def test_signal_round_trips_carry_the_mask():
    ds = gappy()
    sig = to_static_signal(ds)
    back = from_static_signal(sig)
    assert torch.equal(back.observed, ds.observed)
    assert torch.equal(back.series.nan_to_num(-1), ds.series.nan_to_num(-1))
    snaps = list(to_temporal_signal(ds, t_in=3, t_out=2))
    assert torch.equal(snaps[6].x_observed, ds.observed[6:9].permute(1, 0, 2).float())
    assert torch.equal(snaps[6].y_observed, ds.observed[9:11].permute(1, 0, 2).float())
    assert torch.equal(torch.isnan(snaps[6].x), ~ds.observed[6:9].permute(1, 0, 2))
    # DynSTMask slices the mask of a signal too
    small = DynSTMask(torch.tensor([1, 3]), num_nodes=4)(sig)
    assert torch.equal(from_static_signal(small).observed, ds.observed[:, [1, 3]])
