"""The Aarhus road-traffic dataset: 449 road segments, 5-minute readings, 2014-08-01 .. 2014-09-30.

City of Aarhus traffic data published by the CityPulse project (Open Data Aarhus), as the
raw per-segment files ``streams/AarhusTrafficData<REPORT_ID>.stream`` of CityBench. Each
segment lies between two Bluetooth detector points and reports, every 5 minutes, the
average speed (km/h), the number of vehicles matched and their average travel time (s).
A segment has no row for a step it did not report: about 9.5 % of the cells are missing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tarfile
import warnings
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from ..data.dataset import SpatioTemporalDataset
from .loaders import FILES, ChecksumMismatch, DataFileMissing, cache_dir, data_root, gaussian_kernel_edges, sha256sum

__all__ = ["load_aarhus", "AARHUS_FEATURES", "AARHUS_START", "AARHUS_STEPS"]

#: First step of the 5-minute grid (local time; no daylight-saving change inside the period).
AARHUS_START = datetime(2014, 8, 1)
#: Steps on the grid 2014-08-01 00:00 .. 2014-09-30 23:55 (61 days x 288).
AARHUS_STEPS = 61 * 288
#: Feature name -> column of the ``.stream`` files.
AARHUS_FEATURES = {"speed": "avgSpeed", "vehicle_count": "vehicleCount", "travel_time": "avgMeasuredTime"}

_ARCHIVE = "aarhus/aarhus_traffic_aug_sep_2014.tar.gz"
_STREAMS = "aarhus/streams"
_METADATA = "aarhus/trafficMetaData.csv"
_STREAM_NAME = re.compile(r"(?:^|/)AarhusTrafficData([^/]+)\.stream$")
_META_COLUMNS = ("REPORT_ID", "POINT_1_NAME", "POINT_2_NAME", "POINT_1_LAT", "POINT_1_LNG", "POINT_2_LAT",
                 "POINT_2_LNG")
_ZERO_SPEED = ("missing", "reading")
#: Bump when the cached array layout or the parsing rules change.
_CACHE_VERSION = 1
_EARTH_RADIUS_M = 6_371_008.8


def _card_sha(relpath: str) -> str:
    card = next(c for c in FILES["aarhus"] if c.relpath == relpath)
    assert card.sha256 is not None
    return card.sha256


def load_aarhus(root: Optional[str | os.PathLike] = None, features: Sequence[str] = ("speed",),
                zero_speed: str = "missing", cache: bool = True, cache_path: Optional[str | os.PathLike] = None,
                verify_checksums: bool = True) -> SpatioTemporalDataset:
    r"""Aarhus road traffic: ``[17568, 449, F]`` readings every 5 minutes on the segment graph.

    Reads ``aarhus/aarhus_traffic_aug_sep_2014.tar.gz`` under the data root directly
    (nothing is extracted), or, when the archive is absent, an extracted
    ``aarhus/streams/`` folder; the segment coordinates come from
    ``aarhus/trafficMetaData.csv``. The series lies on the 5-minute grid
    2014-08-01 00:00 .. 2014-09-30 23:55; a step a segment did not report is a missing
    cell (NaN, ``observed`` False). Identical duplicate rows are merged; conflicting
    duplicates, timestamps off the grid or outside the period, and a ``REPORT_ID`` that
    disagrees with its file name raise a ValueError naming the file.

    * **Sensors**: one per segment, ordered by ``REPORT_ID`` (numerically), which is the
      ``sensor_id``; ``pos`` is the segment's midpoint (lon, lat), the mean of its two
      detector points. A segment without a metadata row raises a ValueError naming it.
    * **Graph**: edge :math:`i \to j` when segment :math:`i` ends at the detector point where
      :math:`j` starts (``POINT_2_NAME`` of :math:`i` = ``POINT_1_NAME`` of :math:`j`),
      1,654 edges. Weight :math:`\exp(-(d_{ij} / \sigma)^2)` (the DCRNN Gaussian kernel),
      :math:`d_{ij}` the great-circle distance between the midpoints in metres and
      :math:`\sigma` the (sample) standard deviation of those distances over all edges;
      no threshold, so every edge is kept.
    * **Speed 0** (``zero_speed``): every one of the 169,731 speed-0 readings (2.38 % of
      the readings) has vehicle count 0 *and* travel time 0, and no other reading has
      travel time 0, although the shortest segment is 321 m long. Their share is flat
      over the day (2.1 % to 2.6 % in every hour, while the count-0 share swings from
      22 % at noon to 89 % at night, so they are not night-time standstills), 84 % of them
      sit in runs of an hour or longer (up to 39 hours), and the speed right before a run
      is 32 km/h in the median (below 10 km/h in only 17 % of runs, so no slowdown leads
      into them). A speed-0 row is therefore a report without a measurement, not a
      stopped road: with ``"missing"`` (default) the whole row counts as missing (all its
      features); ``"reading"`` keeps it as a reading of 0.
    * **Cache**: the parsed readings are stored in ``cache_path`` (default:
      :func:`~dynst_pyg.datasets.loaders.cache_dir`: ``$DYNST_CACHE``, else
      ``~/.cache/dynst_pyg``), keyed on the archive's sha256 (on the files' names, sizes
      and modification times for a ``streams/`` folder), so later loads skip parsing. A
      cache folder that cannot be written only gives a warning.

    Args:
        root (str, optional): The data root (default: :func:`~dynst_pyg.datasets.data_root`).
        features (tuple[str], optional): Any of ``"speed"`` (km/h), ``"vehicle_count"`` and
            ``"travel_time"`` (s), in the order wanted (default: ``("speed",)``).
        zero_speed (str, optional): ``"missing"`` or ``"reading"`` (default: ``"missing"``).
        cache (bool, optional): Read and write the parsed-readings cache (default: :obj:`True`).
        cache_path (str, optional): The cache folder (default: :obj:`None`, see above).
        verify_checksums (bool, optional): Check the archive and metadata file against their
            recorded sha256 and raise :class:`~dynst_pyg.datasets.ChecksumMismatch` if they
            differ; an extracted ``streams/`` folder has no recorded checksum (default: :obj:`True`).
    """
    feats = tuple(features) if not isinstance(features, str) else (features,)
    if not feats or any(f not in AARHUS_FEATURES for f in feats) or len(set(feats)) != len(feats):
        raise ValueError(f"`features` must be distinct names from {list(AARHUS_FEATURES)}, got {list(feats)}")
    if zero_speed not in _ZERO_SPEED:
        raise ValueError(f"`zero_speed` must be one of {_ZERO_SPEED}, got {zero_speed!r}")
    root = data_root(root)
    archive, streams = root / _ARCHIVE, root / _STREAMS
    if not archive.is_file() and not streams.is_dir():
        raise DataFileMissing(
            f"aarhus: missing file {_ARCHIVE!r} (or an extracted {_STREAMS}/ folder). Put it at {archive} "
            f"(data root {root}, set DYNST_DATA to change it); see datasets/README.md for its source.")
    meta_path = root / _METADATA
    if not meta_path.is_file():
        raise DataFileMissing(f"aarhus: missing file {_METADATA!r}. Put it at {meta_path} "
                              f"(data root {root}, set DYNST_DATA to change it); see datasets/README.md.")
    if verify_checksums:
        got, want = sha256sum(meta_path), _card_sha(_METADATA)
        if got != want:
            raise ChecksumMismatch(f"checksum mismatch for {meta_path}: expected sha256 {want}, got {got}")

    if archive.is_file():
        key = sha256sum(archive)
        want = _card_sha(_ARCHIVE)
        if verify_checksums and key != want:
            raise ChecksumMismatch(f"checksum mismatch for {archive}: expected sha256 {want}, got {key}")
        source = archive
    else:
        key = _folder_key(streams)
        source = streams
    ids, values = _cached_readings(source, key, cache, cache_path)

    speed = values[..., 0]
    zero_rows = int((speed == 0).sum())
    rows = int((~np.isnan(speed)).sum())
    if zero_speed == "missing":
        values = np.where((speed == 0)[..., None], np.nan, values)
    cols = [list(AARHUS_FEATURES).index(f) for f in feats]
    series = torch.from_numpy(np.ascontiguousarray(values[..., cols], dtype=np.float32))

    pos, edge_index, edge_weight = _segment_graph(meta_path, ids)
    T, N = values.shape[:2]
    meta = {
        "source": "CityPulse Open Data Aarhus road traffic, 2014-08-01..09-30, via CityBench/Benchmark @ 8884af6",
        "licence": "CityPulse / Open Data Aarhus open data (CityBench repository: GPL-3.0)",
        "zero_speed": zero_speed, "rows": rows, "row_share": rows / (T * N), "zero_speed_rows": zero_rows,
        "sha256": key,
    }
    return SpatioTemporalDataset(series, edge_index, edge_weight, pos=pos, sensor_id=ids, interval_minutes=5,
                                 start=AARHUS_START, name="aarhus", feature_names=list(feats), meta=meta)


# --------------------------------------------------------------------- readings
def _folder_key(streams: Path) -> str:
    h = hashlib.sha256(b"aarhus-streams-folder")
    for p in sorted(streams.iterdir()):
        if p.is_file() and _STREAM_NAME.search(p.name):
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cached_readings(source: Path, key: str, use_cache: bool,
                     cache_path: Optional[str | os.PathLike]) -> tuple[list[str], np.ndarray]:
    """``(report ids, readings [T, N, 3] float32)``, NaN where no row, from the cache or parsed."""
    path = cache_dir(cache_path) / f"aarhus-{key[:24]}-v{_CACHE_VERSION}.npz"
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, values = [str(s) for s in z["report_id"]], np.asarray(z["values"])
            if values.shape == (AARHUS_STEPS, len(ids), len(AARHUS_FEATURES)):
                return ids, values
            warnings.warn(f"ignoring the Aarhus cache {path}: unexpected shape {values.shape}", stacklevel=3)
        except (OSError, ValueError, KeyError) as exc:
            warnings.warn(f"ignoring the unreadable Aarhus cache {path}: {exc}", stacklevel=3)
    items = _archive_items(source) if source.is_file() else _folder_items(source)
    ids, values = _parse_streams(items)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.part")
            with open(tmp, "wb") as fh:
                np.savez(fh, report_id=np.array(ids), values=values)
            os.replace(tmp, path)
        except OSError as exc:
            warnings.warn(f"could not write the Aarhus cache to {path} ({exc}); set DYNST_CACHE or `cache_path` "
                          "to a writable folder to make the next load fast", stacklevel=3)
    return ids, values


def _archive_items(path: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile() and _STREAM_NAME.search(member.name):
                fh = tar.extractfile(member)
                assert fh is not None
                yield f"{path}:{member.name}", fh.read()


def _folder_items(path: Path) -> Iterator[tuple[str, bytes]]:
    for p in sorted(path.iterdir()):
        if p.is_file() and _STREAM_NAME.search(p.name):
            yield str(p), p.read_bytes()


def _sort_key(report_id: str) -> tuple:
    return (0, int(report_id), report_id) if report_id.isdigit() else (1, 0, report_id)


def _parse_streams(items: Iterator[tuple[str, bytes]]) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    columns = ["TIMESTAMP", "REPORT_ID", *AARHUS_FEATURES.values()]
    per_id: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, raw in items:
        rid = _STREAM_NAME.search(name).group(1)  # type: ignore[union-attr]
        if rid in per_id:
            raise ValueError(f"{name}: a second file for REPORT_ID {rid!r}")
        try:
            df = pd.read_csv(io.BytesIO(raw), usecols=columns, dtype={"REPORT_ID": str, "TIMESTAMP": str})
        except ValueError as exc:
            raise ValueError(f"{name}: expected the columns {columns} of an Aarhus .stream file ({exc})") from exc
        if (df["REPORT_ID"].str.strip() != rid).any():
            bad = df.loc[df["REPORT_ID"].str.strip() != rid, "REPORT_ID"].iloc[0]
            raise ValueError(f"{name}: a row has REPORT_ID {bad!r}, but the file name says {rid!r}")
        try:
            stamps = pd.to_datetime(df["TIMESTAMP"], format="%Y-%m-%dT%H:%M:%S").to_numpy()
            vals = df[list(AARHUS_FEATURES.values())].apply(pd.to_numeric).to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name}: unreadable TIMESTAMP or reading ({exc})") from exc
        seconds = (stamps - np.datetime64(AARHUS_START)) // np.timedelta64(1, "s")
        off = (seconds % 300 != 0) | (seconds < 0) | (seconds >= AARHUS_STEPS * 300)
        if off.any():
            raise ValueError(f"{name}: TIMESTAMP {df['TIMESTAMP'].iloc[int(off.argmax())]} is not on the 5-minute grid "
                             f"2014-08-01T00:00:00 .. 2014-09-30T23:55:00")
        if not np.isfinite(vals).all():
            raise ValueError(f"{name}: a reading is empty or not finite")
        steps = (seconds // 300).astype(np.int64)
        order = np.argsort(steps, kind="stable")
        steps, vals = steps[order], vals[order]
        dup = np.flatnonzero(steps[1:] == steps[:-1])
        if dup.size and not (vals[dup + 1] == vals[dup]).all():
            i = int(dup[np.flatnonzero((vals[dup + 1] != vals[dup]).any(axis=1))[0]])
            raise ValueError(f"{name}: two different rows for step {int(steps[i])} "
                             f"({np.datetime64(AARHUS_START) + np.timedelta64(int(steps[i]) * 5, 'm')})")
        per_id[rid] = (steps, vals)
    if not per_id:
        raise ValueError("no AarhusTrafficData<REPORT_ID>.stream file found")
    ids = sorted(per_id, key=_sort_key)
    values = np.full((AARHUS_STEPS, len(ids), len(AARHUS_FEATURES)), np.nan, dtype=np.float32)
    for n, rid in enumerate(ids):
        steps, vals = per_id[rid]
        values[steps, n] = vals
    return ids, values


# --------------------------------------------------------------------- graph
def _segment_graph(path: Path, ids: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(pos [N, 2] midpoints, edge_index [2, E], edge_weight [E])`` from the metadata file."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _META_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} (expected the CityPulse trafficMetaData.csv)")
        rows: dict[str, dict] = {}
        for r in reader:
            rid = r["REPORT_ID"].strip()
            if rid in rows and any(rows[rid][c] != r[c] for c in _META_COLUMNS):
                raise ValueError(f"{path}: two different rows for REPORT_ID {rid!r}")
            rows[rid] = r
    absent = [rid for rid in ids if rid not in rows]
    if absent:
        raise ValueError(f"{path} has no row for REPORT_ID {absent[:10]}"
                         f"{f' and {len(absent) - 10} more' if len(absent) > 10 else ''}: "
                         "every segment needs its two detector points")
    seg = [rows[rid] for rid in ids]
    try:
        p1 = np.array([[float(r["POINT_1_LNG"]), float(r["POINT_1_LAT"])] for r in seg])
        p2 = np.array([[float(r["POINT_2_LNG"]), float(r["POINT_2_LAT"])] for r in seg])
    except ValueError as exc:
        raise ValueError(f"{path}: a detector point's coordinates are not numbers ({exc})") from exc
    mid = (p1 + p2) / 2
    starts: dict[str, list[int]] = {}
    for j, r in enumerate(seg):
        starts.setdefault(r["POINT_1_NAME"].strip(), []).append(j)
    src, dst = [], []
    for i, r in enumerate(seg):
        for j in starts.get(r["POINT_2_NAME"].strip(), []):
            if j != i:
                src.append(i)
                dst.append(j)
    s, d = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
    dist = _haversine_m(mid[s], mid[d])
    if s.size:
        ei, ew = gaussian_kernel_edges(s, d, dist, len(ids), threshold=0.0, symmetric=False)
    else:
        ei, ew = torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)
    return torch.from_numpy(mid).float(), ei, ew


def _haversine_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres between ``(lon, lat)`` rows of ``a`` and ``b`` (degrees)."""
    lon1, lat1, lon2, lat2 = (np.radians(v) for v in (a[:, 0], a[:, 1], b[:, 0], b[:, 1]))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
