"""Masked metrics against hand-computed values, and the reference forecasters."""

from __future__ import annotations

import math

import pytest
import torch

from dynst_pyg.data import prepare
from dynst_pyg.training.references import TimeOfDayAverage, persistence_forecast, reference_metrics
from dynst_pyg.data import SpatioTemporalDataset
from dynst_pyg.metrics import forecast_metrics, masked_mae, masked_mape, masked_rmse


def test_hand_computed_values_with_nulls():
    true = torch.tensor([[1.0, 2.0, 0.0, 4.0], [2.0, 0.0, 0.0, 0.0]])
    pred = torch.tensor([[2.0, 2.0, 9.0, 1.0], [4.0, 5.0, 5.0, 5.0]])
    # sample 0: valid errors 1, 0, 3 -> MAE 4/3 ; sample 1: valid error 2 -> MAE 2
    assert float(masked_mae(pred, true, 0.0)) == pytest.approx((4 / 3 + 2) / 2)
    assert masked_mae(pred, true, 0.0, reduction="none").tolist() == pytest.approx([4 / 3, 2.0])
    # RMSE: per-sample MSE (10/3, 4), averaged, sqrt
    assert float(masked_rmse(pred, true, 0.0)) == pytest.approx(math.sqrt((10 / 3 + 4) / 2))
    # MAPE: sample 0: (1/1 + 0/2 + 3/4)/3, sample 1: 2/2
    assert float(masked_mape(pred, true, 0.0)) == pytest.approx(100 * ((1.75 / 3) + 1.0) / 2)


def test_padding_sample_does_not_leak():
    true = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    pred = torch.tensor([[2.0, 3.0], [100.0, -50.0]])
    assert float(masked_mae(pred, true, 0.0)) == pytest.approx(0.5)
    assert float(masked_mae(pred[:1], true[:1], 0.0)) == pytest.approx(0.5)


def test_without_null_value_zero_counts():
    true = torch.tensor([[0.0, 2.0]])
    pred = torch.tensor([[1.0, 2.0]])
    assert float(masked_mae(pred, true)) == pytest.approx(0.5)


def test_per_horizon_and_shape_errors():
    true = torch.ones(2, 12, 3, 1)
    pred = true.clone()
    pred[:, 2] += 3.0  # horizon 3 only
    m = forecast_metrics(pred, true)
    assert m["mae_h3"] == pytest.approx(3.0) and m["mae_h6"] == 0 and m["mae_h12"] == 0
    assert m["mae"] == pytest.approx(3.0 / 12)
    with pytest.raises(ValueError, match="same shape"):
        masked_mae(pred, true[:, :5])
    with pytest.raises(ValueError, match="horizons"):
        forecast_metrics(pred[:, :4], true[:, :4])


def test_persistence_and_time_of_day_exact_on_tiny_series():
    # 1 sensor, a daily pattern of 4 steps (interval 360 min), 40 steps
    pattern = torch.tensor([10.0, 20.0, 30.0, 40.0])
    series = pattern.repeat(10).reshape(40, 1, 1)
    ds = SpatioTemporalDataset(series, torch.zeros(2, 0, dtype=torch.long), interval_minutes=360)
    sp = prepare(ds, t_in=2, t_out=2, ratios=(0.6, 0.2, 0.2))
    x, y = sp.test.batch(torch.arange(len(sp.test)))
    ha = TimeOfDayAverage(sp).forecast(sp.test)
    assert torch.allclose(ha, y)  # a perfectly periodic series is forecast exactly
    pers = persistence_forecast(sp.test, sp)
    assert torch.allclose(pers[:, 0], series[sp.test.starts + 1])
    assert torch.allclose(pers[:, 1], pers[:, 0])
    ref = reference_metrics(sp, horizons=(1, 2))
    assert ref["time_of_day"]["mae"] == pytest.approx(0.0, abs=1e-4)
    assert ref["persistence"]["mae"] > 5


@pytest.mark.data
def test_reference_forecasters_on_los_loop(los_loop_splits):
    ref = reference_metrics(los_loop_splits)
    p, h = ref["persistence"], ref["time_of_day"]
    # persistence error grows with the horizon; historical average does not depend on it much
    assert p["mae_h3"] < p["mae_h6"] < p["mae_h12"]
    assert 2.0 < p["mae_h3"] < 6.0 and 3.0 < h["mae_h12"] < 8.0
