"""The readings of an own-data folder: ``dataset.json``, the readings table, its time column and gaps."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .graph_build import parse_graph_spec

import numpy as np

__all__ = ["FolderFormatError", "FolderNotice", "DATASET_JSON_KEYS", "TRAIN_SHARE", "MOSTLY_MISSING"]

#: Keys ``dataset.json`` may hold.
DATASET_JSON_KEYS = ("name", "interval_minutes", "null_value", "time_column", "graph")


class FolderFormatError(ValueError):
    """A file of a dataset folder is missing or malformed (the message names file, row and column)."""


class FolderNotice(UserWarning):
    """One line on what :func:`~dynst_pyg.datasets.folder.load_folder` did that the files did not spell out."""


def _read_config(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FolderFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") \
            from None
    if not isinstance(config, dict):
        raise FolderFormatError(f"{path}: expected a JSON object with keys among {list(DATASET_JSON_KEYS)}")
    unknown = sorted(set(config) - set(DATASET_JSON_KEYS))
    if unknown:
        raise FolderFormatError(f"{path}: unknown key(s) {unknown}; expected keys among {list(DATASET_JSON_KEYS)}")
    if "name" in config and not (isinstance(config["name"], str) and config["name"]):
        raise FolderFormatError(f"{path}: \"name\" must be a non-empty string, got {config['name']!r}")
    iv = config.get("interval_minutes")
    if iv is not None and (isinstance(iv, bool) or not isinstance(iv, int) or iv < 1):
        raise FolderFormatError(f"{path}: \"interval_minutes\" must be a positive integer, got {iv!r}")
    nv = config.get("null_value")
    if nv is not None and (isinstance(nv, bool) or not isinstance(nv, (int, float)) or not math.isfinite(nv)):
        raise FolderFormatError(f"{path}: \"null_value\" must be a finite number (the value that marks a missing "
                                f"reading), got {nv!r}")
    if nv is not None:
        config["null_value"] = float(nv)
    tc = config.get("time_column")
    if tc is not None and not (isinstance(tc, str) and tc):
        raise FolderFormatError(f"{path}: \"time_column\" must be a column name, got {tc!r}")
    if "graph" in config:
        try:
            config["graph"] = parse_graph_spec(config["graph"], f"{path}: \"graph\"")
        except ValueError as exc:
            raise FolderFormatError(str(exc)) from None
    return config


# ------------------------------------------------------------------------ readings
def _read_table(path: Path, time_column: Optional[str],
                null_value: Optional[float]) -> Tuple[np.ndarray, List[str], Sequence[Any]]:
    """``readings.csv`` / ``readings.parquet``: a time column and one column per sensor."""
    import pandas as pd

    if path.suffix == ".csv":
        header, lines = _csv_layout(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, header=0, names=header,
                                skipinitialspace=True)
        except pd.errors.ParserError as exc:
            raise FolderFormatError(f"{path}: {str(exc).strip()} (the header has {len(header)} columns)") from None
        if len(frame) != len(lines):
            raise FolderFormatError(f"{path}: could not align {len(frame)} parsed rows with {len(lines)} lines; "
                                    "check the quoting")

        def where(i: int) -> str:
            return f"line {lines[i]}"
    else:
        try:
            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise FolderFormatError(f"{path}: reading parquet needs pyarrow or fastparquet ({exc}); "
                                    "install one or use readings.csv") from None
        header = [str(c).strip() for c in frame.columns]
        _check_header(path, header)
        frame.columns = header

        def where(i: int) -> str:
            return f"row {i}"
    tcol = header[0] if time_column is None else time_column
    if tcol not in header:
        raise FolderFormatError(f"{path}: no column {tcol!r} (the \"time_column\" of dataset.json); "
                                f"columns are {header[:5]}{' ...' if len(header) > 5 else ''}")
    ids = [h for h in header if h != tcol]
    if not ids:
        raise FolderFormatError(f"{path}: no sensor columns; expected a time column followed by one column per "
                                "sensor")
    if len(frame) == 0:
        raise FolderFormatError(f"{path}: no data rows; expected one row per time step")
    values = np.empty((len(frame), len(ids)), dtype=np.float64)
    for j, sid in enumerate(ids):
        col = frame[sid]
        text = None if pd.api.types.is_numeric_dtype(col) else col.astype(str).str.strip()
        num = pd.to_numeric(text if text is not None else col, errors="coerce").to_numpy(dtype=np.float64)
        if text is not None:
            bad = np.isnan(num) & ~text.str.lower().isin(["", "nan", "na", "null", "none"]).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise FolderFormatError(f"{path}: {where(i)}, column {sid!r}: {text.iloc[i]!r} is not a number")
        values[:, j] = num
    _check_values(path, values, ids, null_value, where)
    return values, ids, list(frame[tcol])


def _csv_layout(path: Path) -> Tuple[List[str], List[int]]:
    """The header of a readings CSV and the file line of every data row; rows must match the header."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise FolderFormatError(f"{path}: empty file; expected a header line: a time column, then one "
                                    "column per sensor id")
        header = [h.strip() for h in header]
        _check_header(path, header)
        lines = []
        for row in reader:
            if not row:  # blank lines are skipped
                continue
            if len(row) != len(header):
                raise FolderFormatError(f"{path}: line {reader.line_num}: {len(row)} fields, expected "
                                        f"{len(header)} like the header")
            lines.append(reader.line_num)
    return header, lines


def _check_header(path: Path, header: Sequence[str]) -> None:
    empty = [i for i, h in enumerate(header) if not h]
    if empty:
        raise FolderFormatError(f"{path}: column {empty[0] + 1} has no name; every column needs a header "
                                "(the time column, then one sensor id per column)")
    seen: Dict[str, int] = {}
    for i, h in enumerate(header):
        if h in seen:
            raise FolderFormatError(f"{path}: columns {seen[h] + 1} and {i + 1} are both named {h!r}; "
                                    "sensor ids must be unique")
        seen[h] = i


def _read_npz(path: Path, null_value: Optional[float]) -> Tuple[np.ndarray, List[str], Sequence[Any]]:
    """``readings.npz``: ``readings [T, N(, F)]``, optional ``sensor_id [N]`` and ``time [T]``."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FolderFormatError(f"{path}: not a readable .npz archive ({exc})") from None
    with z:
        if "readings" not in z:
            raise FolderFormatError(f"{path}: no array 'readings'; expected readings [T, N] or [T, N, F] "
                                    f"(found {sorted(z.keys())})")
        raw = z["readings"]
        ids_raw = z["sensor_id"] if "sensor_id" in z else None
        times = z["time"] if "time" in z else None
    if raw.ndim not in (2, 3) or raw.shape[0] == 0 or raw.shape[1] == 0:
        raise FolderFormatError(f"{path}: 'readings' must have shape [T, N] or [T, N, F] with T, N >= 1, "
                                f"got {raw.shape}")
    if raw.dtype.kind not in "iuf":
        raise FolderFormatError(f"{path}: 'readings' must hold numbers, got dtype {raw.dtype}")
    values = raw.astype(np.float64)
    n = values.shape[1]
    if ids_raw is None:
        ids = [str(i) for i in range(n)]
    else:
        ids = [str(v).strip() for v in np.asarray(ids_raw).reshape(-1).tolist()]
        if len(ids) != n:
            raise FolderFormatError(f"{path}: 'sensor_id' has {len(ids)} entries but 'readings' has N = {n} "
                                    "sensors (axis 1)")
        dup = next((s for i, s in enumerate(ids) if s in ids[:i]), None)
        if dup is not None:
            raise FolderFormatError(f"{path}: 'sensor_id' holds {dup!r} twice; sensor ids must be unique")
    if times is not None and np.asarray(times).reshape(-1).shape[0] != values.shape[0]:
        raise FolderFormatError(f"{path}: 'time' has {np.asarray(times).size} entries but 'readings' has "
                                f"T = {values.shape[0]} steps (axis 0)")
    flat = values if values.ndim == 2 else values.reshape(values.shape[0], -1)
    _check_values(path, flat, ids if values.ndim == 2 else [f"{s}/f{f}" for s in ids
                                                             for f in range(values.shape[2])],
                  null_value, lambda i: f"row {i}")
    if values.ndim == 3:
        values = flat.reshape(values.shape)
    return values, ids, [] if times is None else list(np.asarray(times).reshape(-1))


def _check_values(path: Path, values: np.ndarray, columns: Sequence[str], null_value: Optional[float],
                  where: Any) -> None:
    """Rejects infinities; missing readings (NaN) stay NaN, the dataset's observation mask marks them."""
    inf = np.isinf(values)
    if inf.any():
        i, j = (int(v) for v in np.argwhere(inf)[0])
        raise FolderFormatError(f"{path}: {where(i)}, column {columns[j]!r}: infinite reading; expected a "
                                "finite number")


#: The chronological training share that :func:`_empty_sensors` looks at (``prepare``'s default split).
TRAIN_SHARE = 0.7
#: A ``null_value`` marking more than this share of the readings as missing is said in a notice.
MOSTLY_MISSING = 0.5


def _listing(names: Sequence[str], most: int = 10) -> str:
    shown = ", ".join(repr(s) for s in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _empty_sensors(path: Path, config_path: Path, series: np.ndarray, ids: Sequence[str],
                   null_value: Optional[float], drop: bool, notices: List[str]) -> Tuple[np.ndarray, List[str]]:
    """``(keep [N] bool, dropped ids)``: sensors without a reading in the first :data:`TRAIN_SHARE` of the steps."""
    T, N = series.shape[0], series.shape[1]
    observed = ~np.isnan(series)
    null_note = ""
    if null_value is not None:
        marked = series == null_value
        observed &= ~marked
        share = float(marked.mean())
        if share > MOSTLY_MISSING:
            null_note = (f"{config_path.name}'s \"null_value\": {null_value:g} marks every reading equal to "
                         f"{null_value:g} as missing, and {share:.1%} of the readings are ({int(marked.sum()):,} of "
                         f"{marked.size:,} cells)")
            notices.append(f"{config_path}: \"null_value\": {null_value:g} marks every reading equal to "
                           f"{null_value:g} as missing, and {share:.1%} of the readings of {path.name} are "
                           f"({int(marked.sum()):,} of {marked.size:,} cells); if {null_value:g} is a real reading "
                           "(a count, say), remove \"null_value\"")
    train = max(1, int(TRAIN_SHARE * T))
    empty = ~observed.reshape(T, N, -1)[:train].any(axis=0).all(axis=-1)
    names = [ids[i] for i in np.flatnonzero(empty)]
    where = f"the first {TRAIN_SHARE:.0%} of the steps (rows 0..{train - 1}, the training split)"
    if names and drop and len(names) == N:
        raise FolderFormatError(f"{path}: no sensor has a reading in {where}, so none would be left; "
                                + (null_note + "; " if null_note else "") + "check the file and dataset.json")
    if names and drop:
        notices.append(f"{path}: dropped {len(names)} of {N} sensors without a reading in {where} "
                       f"(drop_empty_sensors=True): {_listing(names)}")
    elif names:
        notices.append(f"{path}: {len(names)} of {N} sensors have no reading in {where}: {_listing(names)}; "
                       "training refuses them: drop them with drop_empty_sensors=True (CLI: --drop-empty-sensors)"
                       + (f"; note that {null_note}" if null_note else ""))
    return (~empty if drop else np.ones(N, dtype=bool)), (names if drop else [])


def _interval(path: Path, times: Sequence[Any], configured: Optional[int],
              config_path: Path) -> Tuple[int, Optional[datetime]]:
    """The sampling interval in minutes and the first time stamp, checked for regular steps."""
    import pandas as pd

    rows = "line" if path.suffix == ".csv" else "row"
    first_row = 2 if path.suffix == ".csv" else 0

    def ask(why: str) -> FolderFormatError:
        return FolderFormatError(f"{path}: {why}, so the time between rows is unknown; add \"interval_minutes\" "
                                 f"to {config_path} (e.g. {{\"interval_minutes\": 60}} for hourly readings)")

    if len(times) == 0:
        if configured is None:
            raise ask("no 'time' array")
        return configured, None
    numeric = pd.to_numeric(pd.Series([str(t).strip() for t in times]), errors="coerce")
    if not numeric.isna().any():  # step numbers: only checked for increasing order
        steps = numeric.to_numpy()
        bad = np.flatnonzero(np.diff(steps) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            if steps[i] == steps[i - 1]:
                raise FolderFormatError(f"{path}: duplicate time step {times[i]!r} at {rows} {i + first_row} (the "
                                        "previous row has the same step); expected one row per time step, in order")
            raise FolderFormatError(f"{path}: {rows} {i + first_row}: time {times[i]!r} does not increase; "
                                    "expected one row per time step, in order")
        if configured is None:
            raise ask(f"the time column holds step numbers ({', '.join(repr(t) for t in list(times)[:2])}, ...), "
                      "not date-times")
        return configured, None
    stamps = pd.to_datetime(pd.Series(times), errors="coerce", format="ISO8601")
    if stamps.isna().any():
        i = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise FolderFormatError(f"{path}: {rows} {i + first_row}, time column: {times[i]!r} is not a date-time "
                                "(expected ISO 8601 like 2024-03-04 08:05) or a step number")
    if len(stamps) == 1:
        if configured is None:
            raise ask("a single time stamp")
        return configured, stamps.iloc[0].to_pydatetime()
    minutes = np.diff(stamps.to_numpy().astype("datetime64[s]").astype(np.int64)) / 60.0
    step = float(configured) if configured is not None else minutes[0]
    off = np.flatnonzero((minutes != step) | (minutes <= 0))
    if off.size and minutes[off[0]] <= 0:
        i = int(off[0]) + 1
        if minutes[i - 1] == 0:
            raise FolderFormatError(f"{path}: duplicate timestamp {times[i]!r} at {rows} {i + first_row} (the "
                                    "previous row has the same time); expected one row per time step, in order")
        raise FolderFormatError(f"{path}: {rows} {i + first_row}: time {times[i]!r} is before the previous row "
                                f"({times[i - 1]!r}); expected one row per time step, in order")
    if step != int(step):
        raise FolderFormatError(f"{path}: {rows} {1 + first_row}: the first two time stamps are {minutes[0]:g} "
                                "minutes apart; expected a positive whole number of minutes")
    if off.size:
        i = int(off[0]) + 1
        why = "configured" if configured is not None else "the first step"
        raise FolderFormatError(f"{path}: {rows} {i + first_row}: time {times[i]!r} is {minutes[i - 1]:g} minutes "
                                f"after the previous row, expected {step:g} ({why}); rows must be regular "
                                "time steps without gaps (leave cells empty for missing readings)")
    return int(step), stamps.iloc[0].to_pydatetime()


# ------------------------------------------------------------------------ edges / locations
