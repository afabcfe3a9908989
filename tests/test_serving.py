"""Forecaster and `dynst-pyg forecast`: forecasts from raw readings equal evaluate's, bad readings are one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dynst_pyg.cli import Forecaster
from dynst_pyg.cli.main import main
from dynst_pyg.training.evaluation import raw_forecast

TINY = ["--nodes", "20", "--steps", "400", "--epochs", "1", "--warmup-epochs", "1", "--search-epochs", "1",
        "--max-batches", "2", "--batch-size", "16", "--quiet", "--no-dense", "--selector", "dynst-oneshot"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve") / "run"
    assert main(["prune", *TINY, "--target", "all", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def fc(run):
    return Forecaster.load(run, device="cpu")


def _frame(fc: Forecaster, rows: int, extra: bool = True) -> pd.DataFrame:
    """The first ``rows`` steps of the run's data as readings: kept sensors (and one pruned one), 5-min stamps."""
    ds = fc.run.splits.dataset
    ids = fc.kept_ids + ([s for s in fc.sensor_ids if s not in fc.kept_ids][:1] if extra else [])
    cols = [fc.sensor_ids.index(s) for s in ids]
    times = pd.date_range("2024-03-04 00:00", periods=rows, freq=f"{fc.interval_minutes}min")
    return pd.DataFrame(ds.series[:rows, cols, 0].numpy(), index=times, columns=ids)


def test_predict_on_the_last_test_window_equals_evaluate(fc):
    sub, i = fc.run.sub.test, len(fc.run.sub.test) - 1
    end = int(sub.starts[i]) + fc.t_in
    x, _ = sub.batch([i])
    with torch.no_grad():
        want = raw_forecast(fc.run.splits, fc.run.served(x))[0, :, :, 0]          # [T_out, N]
    ds, keep = fc.run.splits.dataset, fc.keep
    assert fc.run.splits.time_features  # the synthetic series has timestamps: time inputs on by default
    readings = ds.series[:end, keep, 0].numpy()
    with pytest.raises(ValueError, match="reads time of day from its inputs: give the readings date-time stamps"):
        fc.predict(readings, sensor_ids=fc.kept_ids)
    times = pd.date_range(ds.start, periods=end, freq=f"{ds.interval_minutes}min")
    rows = fc.predict(readings, sensor_ids=fc.kept_ids, times=times)
    assert list(rows.columns) == ["time", "sensor_id", "horizon", "forecast", "input_missing"]
    assert len(rows) == fc.t_out * len(fc.sensor_ids)          # target="all": every sensor
    got = rows.pivot(index="horizon", columns="sensor_id", values="forecast")[fc.sensor_ids].to_numpy()
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0)
    step = pd.Timedelta(minutes=ds.interval_minutes)
    assert rows["time"].min() == times[-1] + step and rows["time"].max() == times[-1] + fc.t_out * step
    assert not rows["input_missing"].any()


def test_without_time_inputs_an_array_of_readings_is_forecast_by_step_number(tmp_path):
    run = tmp_path / "run"
    assert main(["prune", *TINY, "--target", "all", "--no-time-features", "--out", str(run)]) == 0
    fc = Forecaster.load(run, device="cpu")
    assert not fc.run.splits.time_features
    sub, i = fc.run.sub.test, len(fc.run.sub.test) - 1
    end = int(sub.starts[i]) + fc.t_in
    x, _ = sub.batch([i])
    with torch.no_grad():
        want = raw_forecast(fc.run.splits, fc.run.served(x))[0, :, :, 0]
    rows = fc.predict(fc.run.splits.dataset.series[:end, fc.keep, 0].numpy(), sensor_ids=fc.kept_ids)
    got = rows.pivot(index="horizon", columns="sensor_id", values="forecast")[fc.sensor_ids].to_numpy()
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0)
    assert rows["time"].min() == end and rows["time"].max() == end - 1 + fc.t_out  # step numbers continue


def test_every_window_and_time_stamps_continue(fc):
    frame = _frame(fc, 30)
    last = fc.predict(frame)
    rows = fc.predict(frame, every_window=True)
    assert len(rows) == (30 - fc.t_in + 1) * fc.t_out * len(fc.sensor_ids)
    assert last["time"].min() == frame.index[-1] + pd.Timedelta(minutes=fc.interval_minutes)
    tail = rows.iloc[-len(last):].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, last)
    assert set(last["sensor_id"]) == set(fc.sensor_ids)


def test_a_silent_kept_sensor_is_forecast_and_flagged(fc):
    frame = _frame(fc, 40, extra=False)
    silent = fc.kept_ids[0]
    frame.iloc[-fc.t_in:, 0] = np.nan
    rows = fc.predict(frame)
    flagged = set(rows.loc[rows["input_missing"], "sensor_id"])
    assert flagged == {silent}
    assert np.isfinite(rows["forecast"]).all()
    # the filled input is the last reading carried forward, as in training
    held = frame.copy()
    held.iloc[-fc.t_in:, 0] = frame.iloc[-fc.t_in - 1, 0]
    np.testing.assert_allclose(fc.predict(held)["forecast"], rows["forecast"], atol=1e-5)


def _write(frame: pd.DataFrame, path) -> str:
    frame.index.name = "time"
    frame.to_csv(path)
    return str(path)


@pytest.mark.parametrize("case, msg", [
    ("absent", "readings have no column for kept sensor"),
    ("short", "readings have 5 rows; the model forecasts from the last 12 steps"),
    ("order", "rows must be in time order"),
    ("duplicate", "duplicates row"),
    ("interval", "the run's interval is 5 minute(s)"),
])
def test_bad_readings_are_refused_in_one_line(fc, run, tmp_path, capsys, case, msg):
    frame = _frame(fc, 5 if case == "short" else 20)
    if case == "absent":
        frame = frame.drop(columns=[fc.kept_ids[3]])
        msg += f" {fc.kept_ids[3]!r}"
    idx = list(frame.index)
    if case == "order":
        idx[7], idx[8] = idx[8], idx[7]
    elif case == "duplicate":
        idx[8] = idx[7]
    elif case == "interval":
        idx = list(pd.date_range("2024-03-04", periods=len(idx), freq="10min"))
    frame.index = pd.DatetimeIndex(idx)
    path = _write(frame, tmp_path / "r.csv")
    capsys.readouterr()
    assert main(["forecast", "--run", str(run), "--readings", path, "--out", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    if case in ("order", "duplicate"):
        assert "readings, row 9:" in err[0]  # 0-based row 8 is data row 9: the message counts data rows from 1
    assert not (tmp_path / "f.csv").exists()


def test_forecast_command_writes_long_rows(fc, run, tmp_path, capsys):
    path = _write(_frame(fc, 24), tmp_path / "readings.csv")
    out = tmp_path / "forecasts.csv"
    assert main(["forecast", "--run", str(run), "--readings", path, "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["time", "sensor_id", "horizon", "forecast", "input_missing"]
    assert len(rows) == fc.t_out * len(fc.sensor_ids) and sorted(rows["horizon"].unique()) == list(range(1, 13))
    expected = fc.predict(_frame(fc, 24))
    np.testing.assert_allclose(rows["forecast"].to_numpy(), expected["forecast"].to_numpy(), atol=1e-4)
