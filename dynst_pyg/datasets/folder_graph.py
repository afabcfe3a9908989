"""The graph of an own-data folder: ``edges.csv``, ``locations.csv``, or a graph built from the coordinates."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .folder_readings import FolderFormatError
from .graph_build import GraphSpec, gaussian_kernel, knn_graph, radius_graph

__all__ = ["LOCATION_COLUMNS"]


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
