r"""A dataset from a folder of plain files: the user's own sensors.

The folder holds

* ``readings.csv`` (or ``readings.parquet``): a time column (the first column, or the one
  named by ``time_column`` in ``dataset.json``) and one column per sensor, headed by the
  sensor's id; one row per time step, in order, at a regular interval. Times are ISO 8601
  date-times (``2024-03-04 08:05``) or step numbers. An empty cell is a missing reading.
  ``readings.npz`` instead holds an array ``readings`` ``[T, N]`` or ``[T, N, F]`` and,
  optionally, ``sensor_id`` ``[N]`` and ``time`` ``[T]``; NaN is a missing reading there.
* ``edges.csv`` (optional when ``locations.csv`` exists): one directed edge per row,
  columns ``from,to`` (sensor ids) and optionally ``weight`` (non-negative, not all 0) or
  ``distance`` (non-negative, any one unit).
  Distances become Gaussian-kernel weights ``exp(-(d / sigma)^2)`` with ``sigma`` the
  median of the positive distances (the median heuristic; see
  :mod:`~dynst_pyg.datasets.graph_build`), and edges whose weight is below
  ``weight_threshold`` (``0.1``, as in DCRNN, i.e. longer than about 1.52 times the median
  distance) are dropped with a :class:`FolderNotice`. The weights depend only on the ratio
  of each distance to the median, so they are the same in metres or kilometres and
  neither vanish for edges of nearly equal length nor flatten to 1 next to one huge
  distance. List both directions for a two-way road. A file with a header and no rows
  gives a graph without edges and a :class:`FolderNotice`.
* **No edges.csv**: the graph is built from ``locations.csv``, by default ``knn:8`` (each
  sensor linked to its 8 nearest sensors, both directions; at most ``N - 1``), or as the
  ``"graph"`` of ``dataset.json`` / the ``graph`` argument says: ``"knn:K"`` or
  ``"radius:KM"`` (every pair at most ``KM`` km apart). Its weights are the Gaussian
  kernel of the distances in km with ``sigma`` the median edge length and no threshold
  (``K`` or the radius already decide which pairs are linked); a :class:`FolderNotice`
  says in one line what was built. ``"graph": "knn:8"`` also replaces an existing
  ``edges.csv``; ``"graph": "edges"`` insists on it.
* ``locations.csv`` (optional): one row per sensor, columns ``sensor_id,lat,lon`` in WGS84
  degrees (headers case-insensitive; ``latitude``, ``longitude`` and ``lng`` are accepted
  too) *or* ``sensor_id,x,y`` in planar metres (UTM or any metric grid). ``dataset.pos``
  holds ``(lon, lat)`` degrees or ``(x, y)`` metres, and ``dataset.meta["coordinates"]``
  says which: ``"lonlat"`` or ``"xy"`` (a map should be drawn with
  ``geographic=(meta["coordinates"] == "lonlat")``). Distances between sensors are in km
  either way: great-circle (haversine) for degrees, Euclidean / 1000 for metres.
* ``dataset.json`` (optional): ``{"name": ..., "interval_minutes": ..., "null_value": ...,
  "time_column": ..., "graph": ...}``, all optional. ``null_value`` is the number that marks
  a missing reading in the files besides empty cells / NaN (e.g. ``0`` in METR-LA-style
  data; leave it out for counts, where 0 is a reading); every missing reading ends up NaN
  in the series and False in ``dataset.observed``. A ``null_value`` that marks more than
  half of the readings, and sensors without a reading in the first 70 % of the steps
  (which training refuses; ``drop_empty_sensors=True`` drops them), are said in notices.
  ``interval_minutes`` is checked against date-time stamps, and required for step numbers
  (and for a ``readings.npz`` without ``time``): there is no default, since the interval
  decides what a time of day is.

Every problem is reported as one :class:`FolderFormatError` line naming the file, the
line (CSV, the header being line 1) or row, the column, and what was expected. What the
loader decided on the user's behalf (edges dropped by the kernel, ...) is said in one
line each, as a :class:`FolderNotice` warning, and kept in ``dataset.meta["notices"]``.
The files are only read, never changed.

.. code-block:: python

    from dynst_pyg.datasets.folder import load_folder

    ds = load_folder("datasets/example")       # SpatioTemporalDataset
    ds = load_folder("my_stations", graph="knn:6", drop_empty_sensors=True)
    print(ds.meta["graph_source"], ds.meta["dropped_sensors"])

The format, file by file, with three example networks: ``datasets/example/README.md``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .core import SpatioTemporalDataset
from .graph_build import GraphSpec, gaussian_kernel, knn_graph, parse_graph_spec, radius_graph

__all__ = ["load_folder", "FolderFormatError", "FolderNotice", "READINGS_FILES", "DATASET_JSON_KEYS"]

#: Accepted names of the readings file, in the order they are looked for.
READINGS_FILES = ("readings.csv", "readings.parquet", "readings.npz")
#: Keys ``dataset.json`` may hold.
DATASET_JSON_KEYS = ("name", "interval_minutes", "null_value", "time_column", "graph")
#: Neighbours per sensor of the graph built when there is no ``edges.csv`` and no graph spec.
DEFAULT_KNN = 8


class FolderFormatError(ValueError):
    """A file of a dataset folder is missing or malformed (the message names file, row and column)."""


class FolderNotice(UserWarning):
    """One line on what :func:`load_folder` did that the files did not spell out (e.g. edges dropped)."""


def load_folder(path: "str | os.PathLike[str]", graph: Optional[str] = None, drop_empty_sensors: bool = False,
                weight_threshold: float = 0.1) -> SpatioTemporalDataset:
    """Loads a dataset folder (see the module documentation for its files).

    Args:
        path (str or PathLike): The folder.
        graph (str, optional): Where the graph comes from: ``"edges"`` (``edges.csv``),
            ``"knn:K"`` (each sensor linked to its ``K`` nearest sensors, both directions)
            or ``"radius:KM"`` (every pair at most ``KM`` km apart), the last two built from
            ``locations.csv``. It overrides the ``"graph"`` of ``dataset.json``.
            (default: :obj:`None`: ``dataset.json``'s ``"graph"``; else ``edges.csv`` if the
            folder has one; else ``knn:8`` (at most ``N - 1``) from ``locations.csv``)
        drop_empty_sensors (bool, optional): Drop the sensors that have no reading (of
            some feature) in the first 70 % of the steps, the chronological training share
            of :meth:`~SpatioTemporalDataset.prepare`'s default split, which refuses such
            sensors; their edges and locations go with them and a graph is built on the
            rest. Which were dropped is said in a :class:`FolderNotice` and listed in
            ``meta["dropped_sensors"]``. :obj:`False` only warns about them.
            (default: :obj:`False`)
        weight_threshold (float, optional): Edges of ``edges.csv`` whose Gaussian-kernel
            weight (from their ``distance``) is below this are dropped, as in the DCRNN
            preprocessing; ``0`` keeps every edge. (default: :obj:`0.1`)

    Returns:
        SpatioTemporalDataset: sensors in the column order of the readings, edges in the
        row order of ``edges.csv``, ``pos`` from ``locations.csv`` (or :obj:`None`) with
        ``meta["coordinates"]`` ``"lonlat"`` or ``"xy"`` (absent without locations);
        ``meta["graph"]`` is the graph spec used (``"edges"``, ``"knn:K"``,
        ``"radius:KM"``) and ``meta["graph_source"]`` a phrase for a legend (e.g.
        ``"8 nearest neighbours (built from locations.csv)"``); ``meta["notices"]`` holds
        the :class:`FolderNotice` lines (also issued as warnings). A ``null_value`` that
        marks more than half of the readings as missing is said in a notice.

    Raises:
        FolderFormatError: naming the file, row and column of the first problem found.
        ValueError: when ``graph`` or ``weight_threshold`` is not valid.
    """
    if not isinstance(drop_empty_sensors, bool):
        raise ValueError(f"`drop_empty_sensors` must be True or False, got {drop_empty_sensors!r}")
    if isinstance(weight_threshold, bool) or not isinstance(weight_threshold, (int, float)) \
            or not 0.0 <= weight_threshold < 1.0:
        raise ValueError(f"`weight_threshold` must be a number in [0, 1), got {weight_threshold!r}")
    spec_arg = None if graph is None else parse_graph_spec(graph, "graph")
    notices: List[str] = []
    root = Path(path)
    if not root.is_dir():
        raise FolderFormatError(f"{root}: not a folder; expected a folder with readings.csv and edges.csv "
                                "or locations.csv")
    config = _read_config(root / "dataset.json")
    null_value = config.get("null_value")
    readings = [root / f for f in READINGS_FILES if (root / f).is_file()]
    if not readings:
        raise FolderFormatError(f"{root}: no readings file; expected one of {', '.join(READINGS_FILES)} "
                                "(a time column and one column per sensor)")
    if len(readings) > 1:
        raise FolderFormatError(f"{root}: several readings files {[p.name for p in readings]}; keep exactly one")
    src = readings[0]
    if src.suffix == ".npz":
        series, ids, times = _read_npz(src, null_value)
    else:
        series, ids, times = _read_table(src, config.get("time_column"), null_value)
    interval, start = _interval(src, times, config.get("interval_minutes"), root / "dataset.json")
    keep, dropped = _empty_sensors(src, root / "dataset.json", series, ids, null_value, drop_empty_sensors, notices)
    edges, loc = root / "edges.csv", root / "locations.csv"
    if spec_arg is not None:
        spec, origin, default = spec_arg, f"graph={graph!r}", False
    elif "graph" in config:
        spec, origin, default = config["graph"], f"{root / 'dataset.json'}: \"graph\" {str(config['graph'])!r}", False
    elif edges.is_file() or not loc.is_file():
        spec, origin, default = GraphSpec("edges"), "", True
    else:
        spec, origin, default = GraphSpec("knn", DEFAULT_KNN), "the default without edges.csv", True
    coords, coord_kind = _read_locations(loc, ids, src.name, keep) if loc.is_file() else (None, None)
    if coords is not None:
        coords = coords[keep]
    pos = None if coords is None else torch.from_numpy(coords).float()
    meta: Dict[str, Any] = {"source": str(root)}
    if drop_empty_sensors:
        meta["dropped_sensors"] = dropped
    if coord_kind is not None:
        meta["coordinates"] = coord_kind
    if spec.kind == "edges":
        if not edges.is_file():
            raise FolderFormatError(f"{edges}: missing; expected a CSV with columns from,to and optionally weight or "
                                    "distance" + (f" ({origin} asks for it)" if origin else
                                                  ", or a locations.csv to build the graph from"))
        edge_index, edge_weight = _read_edges(edges, ids, src.name, float(weight_threshold), notices, keep)
        meta["graph"], meta["graph_source"] = "edges", "edges.csv"
    else:
        if coords is None:
            raise FolderFormatError(f"{loc}: missing; the graph {spec} ({origin}) is built from the sensors' "
                                    f"coordinates: a CSV with columns {_LOCATIONS_EXPECTED}")
        edge_index, edge_weight, meta["graph"], meta["graph_source"] = _build_graph(
            spec, origin, default, coords, coord_kind, loc, edges.is_file(), notices)
    for line in notices:
        warnings.warn(line, FolderNotice, stacklevel=2)
    return SpatioTemporalDataset(
        torch.from_numpy(series[:, keep]).float(), edge_index, edge_weight, pos=pos,
        sensor_id=[s for s, k in zip(ids, keep) if k],
        interval_minutes=interval, start=start, null_value=null_value,
        name=config.get("name", root.resolve().name), meta={**meta, "notices": list(notices)})


# ------------------------------------------------------------------------ dataset.json
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
def _read_csv_rows(path: Path, required: Sequence[str], optional: Sequence[str]) -> Tuple[Dict[str, int], list]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    expected = ",".join(required) + (f" (optionally {' or '.join(optional)})" if optional else "")
    if not rows:
        raise FolderFormatError(f"{path}: empty file; expected a header line with columns {expected}")
    head = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in head if h not in required and h not in optional]
    if unknown:
        raise FolderFormatError(f"{path}: line 1: unknown column {unknown[0]!r}; expected columns {expected}")
    missing = [h for h in required if h not in head]
    if missing:
        raise FolderFormatError(f"{path}: line 1: no column {missing[0]!r}; expected columns {expected}")
    dup = next((h for i, h in enumerate(head) if h in head[:i]), None)
    if dup is not None:
        raise FolderFormatError(f"{path}: line 1: column {dup!r} appears twice")
    return {h: i for i, h in enumerate(head)}, rows[1:]


def _number(path: Path, line: int, column: str, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FolderFormatError(f"{path}: line {line}, column {column!r}: {text!r} is not a number; "
                                f"expected {what}") from None
    if not math.isfinite(value) or value < 0:
        raise FolderFormatError(f"{path}: line {line}, column {column!r}: {text!r}; expected {what}")
    return value


def _strip_zeros(sid: str) -> str:
    return sid.lstrip("0") or ("0" if sid else "")


def _unknown_sensor(path: Path, line: int, column: str, sid: str, ids: Sequence[str],
                    readings: str) -> FolderFormatError:
    """The error for a sensor id not among the readings' columns, with a hint when only leading zeros differ."""
    msg = f"{path}: line {line}, column {column!r}: unknown sensor {sid!r} (not a sensor column of {readings})"
    key = _strip_zeros(sid)
    match = next((s for s in ids if _strip_zeros(s) == key), None)
    if match is not None:
        msg += (f"; {readings} has {match!r}, the same id up to leading zeros: a spreadsheet or a number format "
                "may have stripped them; write the ids the same way in both files (as text)")
    return FolderFormatError(msg)


def _read_edges(path: Path, ids: Sequence[str], readings: str, threshold: float, notices: List[str],
                keep: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
    col, rows = _read_csv_rows(path, ("from", "to"), ("weight", "distance"))
    if "weight" in col and "distance" in col:
        raise FolderFormatError(f"{path}: line 1: both 'weight' and 'distance' columns; keep one")
    index = {s: i for i, s in enumerate(ids)}
    value_col = "weight" if "weight" in col else "distance" if "distance" in col else None
    src: List[int] = []
    dst: List[int] = []
    vals: List[float] = []
    lines: List[int] = []
    first_line: Dict[Tuple[int, int], int] = {}
    for r, row in enumerate(rows):
        line = r + 2
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(col):
            raise FolderFormatError(f"{path}: line {line}: {len(row)} fields, expected {len(col)} like the header")
        ends = []
        for name in ("from", "to"):
            sid = row[col[name]].strip()
            if sid not in index:
                raise _unknown_sensor(path, line, name, sid, ids, readings)
            ends.append(index[sid])
        pair = (ends[0], ends[1])
        if pair in first_line:
            raise FolderFormatError(f"{path}: line {line}: repeats the edge {row[col['from']].strip()} -> "
                                    f"{row[col['to']].strip()} of line {first_line[pair]}; list each edge once")
        first_line[pair] = line
        lines.append(line)
        src.append(ends[0])
        dst.append(ends[1])
        if value_col is not None:
            what = "a non-negative weight" if value_col == "weight" else "a non-negative distance"
            vals.append(_number(path, line, value_col, row[col[value_col]].strip(), what))
    if not src:
        notices.append(f"{path}: a header and no edges, so the graph has none: graph-based selectors (degree, "
                       "pagerank, betweenness) have nothing to rank by and graph convolutions see no neighbours; "
                       "list the edges, or build a graph from locations.csv with \"graph\": \"knn:8\" in "
                       "dataset.json (CLI: --graph knn:8)")
    if not keep.all() and src:  # edges of dropped sensors go with them; the rest are relabelled
        stay = [i for i, (a, b) in enumerate(zip(src, dst)) if keep[a] and keep[b]]
        if len(stay) < len(src):
            notices.append(f"{path}: left out {len(src) - len(stay)} of {len(src)} edges, those of the dropped sensors")
        new = np.cumsum(keep) - 1
        src, dst = [int(new[src[i]]) for i in stay], [int(new[dst[i]]) for i in stay]
        lines, vals = [lines[i] for i in stay], [vals[i] for i in stay] if vals else vals
        ids = [s for s, k in zip(ids, keep) if k]
    edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    if value_col is None:
        return edge_index, torch.ones(len(src))
    v = np.asarray(vals, dtype=np.float64)
    if value_col == "weight":
        if v.size and not (v > 0).any():
            raise FolderFormatError(f"{path}: every weight is 0, so the graph would have no effect; give positive "
                                    "weights (or a distance column)")
        return edge_index, torch.from_numpy(v).float()
    k = gaussian_kernel(v, scale="median", threshold=threshold)
    if k.problem is not None and not k.keep.any():
        raise FolderFormatError(f"{path}: distance kernel exp(-(d / sigma)^2), sigma = {k.sigma:.4g} (the median "
                                f"distance): {k.problem} at weight_threshold={threshold:g}; lower weight_threshold")
    if k.problem is not None:
        notices.append(f"{path}: distance kernel: {k.problem}")
    dropped = np.flatnonzero(~k.keep)
    if dropped.size:
        i = int(dropped[0])
        cut = k.sigma * math.sqrt(math.log(1.0 / threshold))
        notices.append(f"{path}: dropped {dropped.size} of {v.size} edges whose Gaussian weight "
                       f"exp(-(d / sigma)^2) is below {threshold:g}, i.e. distance above {cut:.4g} (sigma = "
                       f"{k.sigma:.4g}, the median distance); the first is line {lines[i]} ({ids[src[i]]} -> "
                       f"{ids[dst[i]]}, distance {v[i]:g})")
    keep = torch.from_numpy(k.keep)
    return edge_index[:, keep], torch.from_numpy(k.weight[k.keep]).float()


def _build_graph(spec: GraphSpec, origin: str, default: bool, coords: np.ndarray, kind: str, loc: Path,
                 have_edges: bool, notices: List[str]) -> Tuple[torch.Tensor, torch.Tensor, str, str]:
    """A kNN or radius graph from the coordinates: ``(edge_index, edge_weight, spec, legend phrase)``."""
    n = coords.shape[0]
    if spec.kind == "knn":
        k = int(spec.value)
        if k >= n and not default:
            raise FolderFormatError(f"{origin}: knn:{k} needs more than {k} sensors and the readings have {n}; "
                                    f"use knn:K with K <= {n - 1}, or radius:KM")
        k = min(k, n - 1)
        if k == 0:
            s = d = km = np.zeros(0, dtype=np.int64)
        else:
            s, d, km = knn_graph(coords, kind, k)
        label, how, phrase = f"knn:{k}", f"each sensor to its {k} nearest, both directions", \
            f"{k} nearest neighbour{'s' if k != 1 else ''}"
    else:
        r = float(spec.value)
        if n < 2:
            raise FolderFormatError(f"{origin}: radius:{r:g} needs at least two sensors; the readings have one")
        s, d, km = radius_graph(coords, kind, r)
        if s.size == 0:
            closest = float(knn_graph(coords, kind, 1)[2].min())
            raise FolderFormatError(f"{origin}: radius:{r:g} links no two sensors (the closest two are "
                                    f"{closest:.4g} km apart); use a larger radius or knn:K")
        label, how, phrase = f"radius:{r:g}", f"every pair at most {r:g} km apart", f"sensors within {r:g} km"
    what = f"built the graph {label} from the coordinates" + (" (no edges.csv)" if default else f" ({origin})")
    if s.size == 0:
        notices.append(f"{loc}: {what}: one sensor, so the graph has no edges")
        return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), label, f"{phrase} (built from {loc.name})"
    kern = gaussian_kernel(km, scale="median", threshold=0.0)
    isolated = n - int(np.unique(np.concatenate([s, d])).size)
    dist = "great-circle" if kind == "lonlat" else "planar"
    line = (f"{loc}: {what}: {s.size} directed edges between {n} sensors ({how}"
            + (f"; {isolated} sensor(s) without a neighbour" if isolated else "")
            + f"); Gaussian weights exp(-(d / sigma)^2) of the {dist} distances, "
            + (f"sigma = {kern.sigma:.4g} km (the median edge length), weights from {kern.weight.min():.2f} to "
               f"{kern.weight.max():.2f}" if not math.isnan(kern.sigma) else "every weight 1 (the sensors coincide)")
            + ("; edges.csv is not used" if have_edges else ""))
    if kern.problem is not None:
        line += f"; {kern.problem}"
    notices.append(line)
    edge_index = torch.from_numpy(np.stack([s, d]).astype(np.int64))
    return edge_index, torch.from_numpy(kern.weight).float(), label, f"{phrase} (built from {loc.name})"


#: Header spellings of ``locations.csv`` (case-insensitive) and the column each stands for.
LOCATION_COLUMNS = {"sensor_id": "sensor_id", "lat": "lat", "latitude": "lat", "lon": "lon", "lng": "lon",
                    "longitude": "lon", "x": "x", "y": "y"}
_LOCATIONS_EXPECTED = ("sensor_id,lat,lon (WGS84 degrees; also spelled latitude, longitude, lng) or sensor_id,x,y "
                       "(planar metres, e.g. UTM)")


def _read_locations(path: Path, ids: Sequence[str], readings: str,
                    needed: Optional[np.ndarray] = None) -> Tuple[np.ndarray, str]:
    """``locations.csv``: ``(coords [N, 2] float64, kind)``.

    ``kind`` is ``"lonlat"`` (``coords`` are ``(lon, lat)`` degrees) or ``"xy"`` (metres).
    Only the sensors ``needed`` (default: all) must have a row.
    """
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise FolderFormatError(f"{path}: empty file; expected a header line with columns {_LOCATIONS_EXPECTED}")
    raw = [h.strip() for h in rows[0]]
    head = [h.lower() for h in raw]
    unknown = [raw[i] for i, h in enumerate(head) if h not in LOCATION_COLUMNS]
    if unknown:
        raise FolderFormatError(f"{path}: line 1: unknown column {unknown[0]!r}; expected columns "
                                f"{_LOCATIONS_EXPECTED}")
    canon = [LOCATION_COLUMNS[h] for h in head]
    for j, c in enumerate(canon):
        if c in canon[:j]:
            first = raw[canon.index(c)]
            raise FolderFormatError(f"{path}: line 1: column {raw[j]!r} appears twice" if first.lower() == head[j]
                                    else f"{path}: line 1: columns {first!r} and {raw[j]!r} are the same coordinate; "
                                         "keep one")
    geo, planar = {"lat", "lon"} & set(canon), {"x", "y"} & set(canon)
    if geo and planar:
        raise FolderFormatError(f"{path}: line 1: both degree (lat/lon) and planar (x/y) columns; keep one pair: "
                                f"{_LOCATIONS_EXPECTED}")
    kind = "xy" if planar else "lonlat"
    need = ("sensor_id", "x", "y") if planar else ("sensor_id", "lat", "lon")
    missing = [c for c in need if c not in canon]
    if missing:
        also = {"lat": " (or 'latitude')", "lon": " (or 'longitude', 'lng')"}.get(missing[0], "")
        raise FolderFormatError(f"{path}: line 1: no column {missing[0]!r}{also}; expected columns "
                                f"{_LOCATIONS_EXPECTED}")
    col = {c: j for j, c in enumerate(canon)}
    index = {s: i for i, s in enumerate(ids)}
    coords = np.full((len(ids), 2), np.nan)
    for r, row in enumerate(rows[1:]):
        line = r + 2
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(canon):
            raise FolderFormatError(f"{path}: line {line}: {len(row)} fields, expected {len(canon)} "
                                    f"({','.join(raw)})")
        sid = row[col["sensor_id"]].strip()
        if sid not in index:
            raise _unknown_sensor(path, line, raw[col["sensor_id"]], sid, ids, readings)
        i = index[sid]
        if not np.isnan(coords[i, 0]):
            raise FolderFormatError(f"{path}: line {line}: sensor {sid!r} is listed twice")
        if planar:
            fields = (("x", None, 0), ("y", None, 1))
        else:
            fields = (("lat", 90.0, 1), ("lon", 180.0, 0))
        for name, limit, k in fields:
            text = row[col[name]].strip()
            try:
                value = float(text)
            except ValueError:
                raise FolderFormatError(f"{path}: line {line}, column {raw[col[name]]!r}: {text!r} is not a number"
                                        ) from None
            if not math.isfinite(value):
                raise FolderFormatError(f"{path}: line {line}, column {raw[col[name]]!r}: {text!r}; expected a "
                                        f"finite {'number of metres' if planar else 'number of degrees'}")
            if limit is not None and not -limit <= value <= limit:
                raise FolderFormatError(f"{path}: line {line}, column {raw[col[name]]!r}: {value:g} is outside "
                                        f"[{-limit:g}, {limit:g}] degrees; planar coordinates in metres (e.g. UTM) "
                                        "go in columns x,y")
            coords[i, k] = value
    lacking = np.isnan(coords[:, 0]) if needed is None else np.isnan(coords[:, 0]) & needed
    absent = [ids[i] for i in np.flatnonzero(lacking)]
    if absent:
        raise FolderFormatError(f"{path}: no row for sensor {absent[0]!r}"
                                f"{f' (and {len(absent) - 1} more)' if len(absent) > 1 else ''}; expected one "
                                "row per sensor of the readings")
    return coords, kind
