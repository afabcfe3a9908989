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

import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from ..data.dataset import SpatioTemporalDataset
from .folder_graph import _LOCATIONS_EXPECTED, _build_graph, _read_edges, _read_locations
from .folder_readings import DATASET_JSON_KEYS, FolderFormatError, FolderNotice, _empty_sensors, _interval, _read_config, _read_npz, _read_table
from .graph_build import GraphSpec, parse_graph_spec

__all__ = ["load_folder", "FolderFormatError", "FolderNotice", "READINGS_FILES", "DATASET_JSON_KEYS"]

#: Accepted names of the readings file, in the order they are looked for.
READINGS_FILES = ("readings.csv", "readings.parquet", "readings.npz")
#: Neighbours per sensor of the graph built when there is no ``edges.csv`` and no graph spec.
DEFAULT_KNN = 8


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
