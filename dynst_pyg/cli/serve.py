"""Serving a pruned run: forecasts from live readings of the kept sensors (:class:`Forecaster`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..data import time_feature_channels
from ..data.missing import forward_fill
from ..training.engine import autocast_for
from .runs import LoadedRun, load_run

__all__ = ["Forecaster", "read_readings"]

#: Monday 00:00, the time the training windows give to step 0 when the data carry no date-times.
_EPOCH = "2024-01-01 00:00"


def read_readings(path: str | Path):
    """A readings file in the ``--data`` format (CSV or Parquet: a time column first, then one
    column per sensor id) as a :class:`pandas.DataFrame` indexed by its time column."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--readings {path}: file not found (a time column, then one column per sensor)")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={0: str}, skipinitialspace=True)
    else:
        raise ValueError(f"--readings {path}: expected a .csv or .parquet file")
    if frame.shape[1] < 2:
        raise ValueError(f"--readings {path}: expected a time column followed by one column per sensor id")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.set_index(frame.columns[0])


class Forecaster:
    """The served model of a ``dynst-pyg prune`` run, forecasting from raw readings.

    Readings go through the same steps as the training inputs: a missing reading (NaN or the
    dataset's ``null_value``) is unobserved, the last observed reading of the sensor is carried
    forward (:func:`~dynst_pyg.data.missing.forward_fill`; before a sensor's first reading the
    training mean), the scaler stored with the model normalises, and the observed-indicator and
    time channels are appended when the run used them.

    Args:
        run (LoadedRun): A run read back with :func:`~dynst_pyg.cli.load_run`.
    """

    def __init__(self, run: LoadedRun) -> None:
        ds = run.splits.dataset
        if ds.num_features != 1:
            raise ValueError(f"forecast reads one value per sensor and step; run {run.run_id} was trained on "
                             f"{ds.num_features} features per sensor")
        self.run = run
        self.sensor_ids: list[str] = [str(s) for s in ds.sensor_id]
        self.keep = run.mask.keep.cpu()
        self.kept_ids: list[str] = [self.sensor_ids[i] for i in self.keep.tolist()]
        self.t_in, self.t_out = run.splits.t_in, run.splits.t_out
        self.interval_minutes = int(ds.interval_minutes)
        self.null_value = ds.null_value
        self.target = run.spec.target
        self.scaler = run.saved_scaler if run.saved_scaler is not None else run.splits.scaler
        self.kept_scaler = self.scaler.select_nodes(self.keep)

    @classmethod
    def load(cls, run_dir: str | Path, device: Optional[str] = None) -> "Forecaster":
        """Reads a run folder (every check of :func:`~dynst_pyg.cli.load_run`) onto ``device``
        (default: the run's device if this machine has it, else auto)."""
        return cls(load_run(run_dir, device=device))

    @property
    def output_ids(self) -> list[str]:
        """The sensors forecast: the kept ones (``target="kept"``) or every sensor (``"all"``)."""
        return self.kept_ids if self.target == "kept" else self.sensor_ids

    # ------------------------------------------------------------------ readings
    def _table(self, readings, sensor_ids: Optional[Sequence[str]], times):
        """``(values [T, K] float64 of the kept sensors, times or None, numeric times?)``."""
        import pandas as pd

        if isinstance(readings, pd.DataFrame):
            frame = readings
            if "time" in frame.columns:
                frame = frame.set_index("time")
            ids = [str(c) for c in frame.columns]
            times = list(frame.index) if not isinstance(frame.index, pd.RangeIndex) else None
            raw = frame
        else:
            arr = np.asarray(readings, dtype=np.float64)
            if arr.ndim != 2:
                raise ValueError(f"`readings` must be a DataFrame or an array [T, K], got shape {arr.shape}")
            if sensor_ids is None or len(sensor_ids) != arr.shape[1]:
                raise ValueError(f"`sensor_ids` must name the {arr.shape[1]} columns of `readings`")
            ids = [str(s) for s in sensor_ids]
            raw = pd.DataFrame(arr, columns=ids)
            if times is not None and len(times) != arr.shape[0]:
                raise ValueError(f"`times` has {len(times)} entries, `readings` {arr.shape[0]} rows")
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"readings have two columns for sensor {dup!r}")
        col = dict(zip(ids, range(len(ids))))
        for sid in self.kept_ids:
            if sid not in col:
                raise ValueError(f"readings have no column for kept sensor {sid!r} (the run keeps "
                                 f"{len(self.kept_ids)} sensors; other columns are ignored)")
        if len(raw) < self.t_in:
            raise ValueError(f"readings have {len(raw)} rows; the model forecasts from the last {self.t_in} steps, "
                             f"give at least {self.t_in} rows")
        values = np.empty((len(raw), len(self.kept_ids)), dtype=np.float64)
        for j, sid in enumerate(self.kept_ids):
            c = pd.to_numeric(raw.iloc[:, col[sid]], errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isnan(c) & ~np.isfinite(c)
            if bad.any():
                raise ValueError(f"readings, row {int(np.flatnonzero(bad)[0]) + 1}, sensor {sid!r}: "
                                 "an infinite reading; expected a number or empty")
            values[:, j] = c
        stamps, numeric = self._times(times)
        return values, stamps, numeric

    def _times(self, times):
        """Checked time stamps (pandas date-times or step numbers) and whether they are step numbers."""
        import pandas as pd

        if times is None:
            return None, True
        texts = pd.Series([str(t).strip() for t in times])
        numeric = pd.to_numeric(texts, errors="coerce")
        if not numeric.isna().any():
            stamps, step, unit = numeric.to_numpy(dtype=np.float64), 1.0, "step"
        else:
            parsed = pd.to_datetime(pd.Series(list(times)), errors="coerce")
            if parsed.isna().any():
                i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
                raise ValueError(f"readings, row {i + 1}: time {times[i]!r} is not a date-time or a step number")
            stamps = parsed.to_numpy().astype("datetime64[s]").astype(np.int64) / 60.0
            step, unit = float(self.interval_minutes), "minute"
        diff = np.diff(stamps)
        for i in np.flatnonzero(diff <= 0):  # order first: a swap also breaks the interval
            r, t, prev = int(i) + 1, times[int(i) + 1], times[int(i)]
            if diff[i] == 0:
                raise ValueError(f"readings, row {r + 1}: time {t} duplicates row {r} (one row per time step)")
            raise ValueError(f"readings, row {r + 1}: time {t} comes before row {r} ({prev}); "
                             "rows must be in time order")
        for i in np.flatnonzero(diff != step):
            r = int(i) + 1
            raise ValueError(f"readings, row {r + 1}: {diff[i]:g} {unit}(s) after row {r}; the run's interval is "
                             f"{step:g} {unit}(s) ({self.interval_minutes} min)")
        if numeric.isna().any():
            return pd.DatetimeIndex(pd.to_datetime(pd.Series(list(times)))), False
        return numeric.to_numpy(dtype=np.int64), True

    def inputs(self, values: np.ndarray, start=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised model inputs ``[T, K, F_in]`` of raw kept-sensor readings ``values [T, K]`` and
        where they are observed (bool ``[T, K]``); ``start`` is the first row's time (for time channels)."""
        splits = self.run.splits
        series = torch.as_tensor(values, dtype=torch.float32).unsqueeze(-1)
        observed = ~torch.isnan(series)
        if self.null_value is not None:
            observed &= series != self.null_value
        series = series.masked_fill(~observed, float("nan"))
        x = self.kept_scaler.transform(forward_fill(series, observed)).nan_to_num_(0.0)
        if splits.missing_indicator:
            x = torch.cat([x, observed.to(x.dtype)], dim=-1)
        if splits.time_features:
            tfc = time_feature_channels(x.size(0), self.interval_minutes, start)
            x = torch.cat([x, tfc[:, None, :].expand(-1, x.size(1), -1)], dim=-1)
        return x, observed[..., 0]

    # ------------------------------------------------------------------ forecasts
    @torch.no_grad()
    def forecast_tensor(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Original-scale forecasts ``[B, T_out, M]`` of normalised windows ``x [B, T_in, K, F_in]``."""
        run = self.run
        scaler = self.kept_scaler if self.target == "kept" else self.scaler
        outs = []
        for chunk in x.split(batch_size):
            with autocast_for(run.device, run.spec.precision):
                pred = run.served(chunk.to(run.device)).float()
            outs.append(scaler.inverse_transform(pred.cpu(), features=run.splits.target_features)[..., 0])
        return torch.cat(outs)

    def predict(self, readings, sensor_ids: Optional[Sequence[str]] = None, times: Optional[Sequence] = None,
                every_window: bool = False):
        """Forecasts from ``readings`` as a long :class:`pandas.DataFrame`.

        Columns: ``time`` (the forecast time: the last input row's time plus ``horizon``
        intervals), ``sensor_id``, ``horizon`` (1 .. ``T_out``), ``forecast`` (original scale)
        and ``input_missing`` (:obj:`True` when the sensor had no reading in the ``T_in`` input
        steps: it is forecast from filled values; always :obj:`False` for a pruned sensor).
        Rows cover the kept sensors (``target="kept"``) or every sensor (``"all"``).

        Refused with one :class:`ValueError` line: a kept sensor's column absent, fewer than
        ``T_in`` rows, time stamps out of order or duplicated, a step other than the run's
        interval, an infinite reading.

        Args:
            readings (DataFrame or array): A DataFrame indexed by time (or with a ``time``
                column) and one column per sensor id, or an array ``[T, K]``. Only the kept
                sensors' columns are read.
            sensor_ids (list[str], optional): The columns' sensor ids of an array (default: none).
            times (sequence, optional): An array's row times, date-times or step numbers
                (default: step numbers from 0).
            every_window (bool, optional): Forecast from every ``T_in`` consecutive rows, not
                only the last ones (default: :obj:`False`).
        """
        import pandas as pd

        values, stamps, numeric = self._table(readings, sensor_ids, times)
        T = values.shape[0]
        if stamps is None:
            stamps = np.arange(T, dtype=np.int64)
        if numeric:
            if self.run.splits.time_features and self.run.splits.dataset.start is not None:
                raise ValueError("this run reads time of day from its inputs: give the readings date-time stamps")
            # step numbers count from the training data's step 0, which the time channels take as Monday 00:00
            start = pd.Timestamp(_EPOCH) + pd.Timedelta(minutes=int(stamps[0]) * self.interval_minutes)
        else:
            start = stamps[0]
        x, observed = self.inputs(values, start)
        ends = np.arange(self.t_in, T + 1) if every_window else np.array([T])
        idx = torch.as_tensor(ends - self.t_in)[:, None] + torch.arange(self.t_in)
        pred = self.forecast_tensor(x[idx])                                     # [W, T_out, M]
        silent = ~observed[idx].any(dim=1)                                      # [W, K]
        M = pred.size(-1)
        flag = torch.zeros(len(ends), M, dtype=torch.bool)
        if self.target == "kept":
            flag = silent
        else:
            flag[:, self.keep] = silent
        W, H = len(ends), self.t_out
        h = np.arange(1, H + 1)
        last = stamps[ends - 1]
        if numeric:
            when = last[:, None] + h[None, :]
        else:
            when = np.asarray(last)[:, None] + (h * self.interval_minutes).astype("timedelta64[m]")[None, :]
        return pd.DataFrame({
            "time": np.repeat(when.reshape(-1), M),
            "sensor_id": np.tile(np.asarray(self.output_ids, dtype=object), W * H),
            "horizon": np.tile(np.repeat(h, M), W),
            "forecast": pred.reshape(-1).numpy().astype(np.float64),
            "input_missing": np.repeat(flag.numpy(), H, axis=0).reshape(-1),
        })
