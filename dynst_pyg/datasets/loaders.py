"""Loaders for the real traffic formats, generic constructors and PyG-Temporal interop.

Data files are never shipped with the package. They are looked up under the data
root (:func:`data_root`). Each dataset lives in its own sub-folder (``los-loop/``,
``metr-la/``, ``pems-bay/``, ``pems04/``, ``pems08/``, ``aarhus/``).
"""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import shutil
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..data.dataset import SpatioTemporalDataset
from .safe_pickle import ArraysOnlyUnpickler

_REPO_ROOT = Path(__file__).resolve().parents[2]


class DataFileMissing(FileNotFoundError):
    """A dataset file is not under the data root; the message says where to put it."""


class ChecksumMismatch(ValueError):
    """A file's sha256 differs from the one recorded in the dataset card."""


@dataclass(frozen=True)
class FileCard:
    """One file of a dataset: where it lives under the data root, its checksum and origin."""

    relpath: str
    sha256: Optional[str]
    url: Optional[str] = None
    source: str = ""


_DCRNN = "https://raw.githubusercontent.com/liyaguang/DCRNN/602afd9d767d3aa1c9b3eac51710d6aeee12c227/data/sensor_graph/"
_TGCN = "https://raw.githubusercontent.com/martinwhl/T-GCN-PyTorch/cc0178972788d2ce9d2f7323dea46588934ea205/data/"
_ASTGNN = "https://raw.githubusercontent.com/guoshnBJTU/ASTGNN/9c2e19b98c4cedf1f35214d8789685b6381b3aad/data/"

#: Every file the loaders know, with sha256 and (where a stable public copy exists) a URL.
FILES: dict[str, list[FileCard]] = {
    "los-loop": [
        FileCard("los-loop/los_speed.csv", "7b732d86ae32b2930595becba28aff39dacbfb2197e250fc0332e1744ce2cbf4", _TGCN + "los_speed.csv", "T-GCN (METR-LA slice)"),
        FileCard("los-loop/los_adj.csv", "7a6eb41e10677992b5af50f5ab187c6c05c5c3a92cb973950cfddbf857361e76", _TGCN + "los_adj.csv", "T-GCN"),
        FileCard("metr-la/graph_sensor_locations.csv", "eb8ea96e07358b45d0e4ba3b89c2673fa20c54af50150249e627389e749ade6f", _DCRNN + "graph_sensor_locations.csv", "DCRNN"),
    ],
    "metr-la": [
        FileCard("metr-la/metr-la.h5", "64784b76d6fb8ec9bff4b6decafb354da2bb37840468fdccee5044e511277c05", None, "DCRNN (Google Drive / Baidu links in its README)"),
        FileCard("metr-la/adj_mx.pkl", "a35687c6e15aa228dc45027b0ed2a0ea0f4ec78f573deb992c595092d12f61b3", _DCRNN + "adj_mx.pkl", "DCRNN"),
        FileCard("metr-la/graph_sensor_locations.csv", "eb8ea96e07358b45d0e4ba3b89c2673fa20c54af50150249e627389e749ade6f", _DCRNN + "graph_sensor_locations.csv", "DCRNN"),
    ],
    "pems-bay": [
        FileCard("pems-bay/pems-bay.h5", None, None, "DCRNN (Google Drive / Baidu links in its README)"),
        FileCard("pems-bay/adj_mx_bay.pkl", "116275f5704d0d492018e14c047f7ae5004385b450aa907f88424055a4a97370", _DCRNN + "adj_mx_bay.pkl", "DCRNN"),
        FileCard("pems-bay/graph_sensor_locations_bay.csv", "276ee01059610774d4e59572507f7e32eaac21f1f5882fcd9e3d7d426a4b7a6c", _DCRNN + "graph_sensor_locations_bay.csv", "DCRNN"),
    ],
    "pems04": [
        FileCard("pems04/PEMS04.npz", None, None, "ASTGCN / STSGCN releases"),
        FileCard("pems04/PEMS04.csv", "68ffaa80447eb34428a9999dc28363c61406ec0fd714686d0582d2386ac6f5f7", _ASTGNN + "PEMS04/PEMS04.csv", "ASTGNN"),
    ],
    "pems08": [
        FileCard("pems08/PEMS08.npz", None, None, "ASTGCN / STSGCN releases"),
        FileCard("pems08/PEMS08.csv", "859d68e7583ed4e6016588eaaca494d3ece286dae361614c5c1833017f87eaa7", _ASTGNN + "PEMS08/PEMS08.csv", "ASTGNN"),
    ],
    "aarhus": [
        FileCard("aarhus/aarhus_traffic_aug_sep_2014.tar.gz",
                 "5c24e6eac529e76897cf47e92f00eec9ff3324d93a89b693dc1cb6c8457a6b93", None,
                 "CityPulse Open Data Aarhus via CityBench/Benchmark @ 8884af6 (streams/)"),
        FileCard("aarhus/trafficMetaData.csv", "db74202649e2dba17acb17baf60c339e64a4308a7da00b9f737ee75de1b74c97",
                 None, "CityBench/Benchmark @ 8884af6 (dataset/MetaData/)"),
    ],
}


def data_root(root: Optional[str | os.PathLike] = None) -> Path:
    """The folder datasets are read from.

    The first that applies: ``root`` if given; ``$DYNST_DATA``; ``../shared/data``
    relative to the current working directory when that folder exists; when the package
    runs from a source checkout (a ``pyproject.toml`` above the package), ``shared/data``
    next to the checkout when it exists; else the user-level default
    ``$XDG_DATA_HOME/dynst_pyg`` (``~/.local/share/dynst_pyg`` when ``XDG_DATA_HOME`` is unset).
    """
    if root is not None:
        return Path(root)
    env = os.environ.get("DYNST_DATA")
    if env:
        return Path(env)
    shared = Path.cwd().parent / "shared" / "data"
    if shared.is_dir():
        return shared
    checkout = _REPO_ROOT.parent / "shared" / "data"
    if (_REPO_ROOT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dynst_pyg"


def cache_dir(path: Optional[str | os.PathLike] = None) -> Path:
    """The folder parsed datasets are cached in (the data root may be read-only).

    ``path`` if given, else ``$DYNST_CACHE``, else ``$XDG_CACHE_HOME/dynst_pyg``
    (``~/.cache/dynst_pyg`` when ``XDG_CACHE_HOME`` is unset). It is not created here.
    """
    if path is not None:
        return Path(path)
    env = os.environ.get("DYNST_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynst_pyg"


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _require(root: Path, relpath: str, dataset: str) -> Path:
    p = root / relpath
    if not p.is_file():
        card = next((c for c in FILES.get(dataset, []) if c.relpath == relpath), None)
        how = f" It can be downloaded with `dynst_pyg.datasets.download({dataset!r})`." if card and card.url else (
            f" Obtain it from {card.source} (see datasets/README.md)." if card else "")
        raise DataFileMissing(
            f"{dataset}: missing file {relpath!r}. Put it at {p} (data root {root}, set DYNST_DATA to change it).{how}"
        )
    return p


def verify(path: str | os.PathLike, sha256: str) -> None:
    """Raises :class:`ChecksumMismatch` unless the file's sha256 equals ``sha256``."""
    got = sha256sum(path)
    if got != sha256.lower():
        raise ChecksumMismatch(f"checksum mismatch for {path}: expected sha256 {sha256}, got {got}")


def download(name: str, root: Optional[str | os.PathLike] = None, force: bool = False) -> list[Path]:
    """Downloads the files of dataset ``name`` that have a public URL, verifying sha256.

    A file already present with the right checksum is left alone. A download whose
    checksum disagrees is deleted and raises :class:`ChecksumMismatch`.

    Returns:
        The local paths of the files that now exist.
    """
    if name not in FILES:
        raise ValueError(f"`name` must be one of {sorted(FILES)}, got {name!r}")
    root = data_root(root)
    out = []
    for card in FILES[name]:
        dest = root / card.relpath
        if dest.is_file() and not force and (card.sha256 is None or sha256sum(dest) == card.sha256):
            out.append(dest)
            continue
        if card.url is None:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        with urllib.request.urlopen(card.url, timeout=60) as resp, open(tmp, "wb") as fh:  # noqa: S310 - fixed URLs
            shutil.copyfileobj(resp, fh)
        if card.sha256 is not None:
            try:
                verify(tmp, card.sha256)
            except ChecksumMismatch:
                tmp.unlink(missing_ok=True)
                raise
        tmp.replace(dest)
        out.append(dest)
    return out


# --------------------------------------------------------------------- helpers
def dense_to_edges(adj: np.ndarray | Tensor, name: str = "adj") -> tuple[Tensor, Tensor]:
    """Non-zero entries of a dense ``[N, N]`` weight matrix as ``(edge_index, edge_weight)``; ``adj[i, j]`` is edge i->j."""
    a = torch.as_tensor(np.asarray(adj), dtype=torch.float32)
    if a.dim() != 2 or a.size(0) != a.size(1):
        raise ValueError(f"`{name}` must be a square [N, N] matrix, got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")
    idx = a.nonzero().t().contiguous()
    return idx, a[idx[0], idx[1]]


def gaussian_kernel_edges(src: Sequence[int], dst: Sequence[int], dist: Sequence[float], num_nodes: int,
                          threshold: float = 0.1, symmetric: bool = True,
                          scale: str | float = "std") -> tuple[Tensor, Tensor]:
    """Gaussian-kernel weights ``exp(-(d / sigma)^2)`` of distance rows, below ``threshold`` dropped.

    The kernel is :func:`~dynst_pyg.datasets.graph_build.gaussian_kernel` (the one
    implementation); a degenerate result (every weight ~0 or ~1) gives a warning.
    Duplicate (from, to) rows are merged (the first distance is kept).

    Args:
        src, dst (sequence of int): Edge ends, node indices ``0..num_nodes-1``.
        dist (sequence of float): Non-negative distances, one per row.
        num_nodes (int): Number of nodes.
        threshold (float, optional): Weights below it are dropped. (default: :obj:`0.1`)
        symmetric (bool, optional): Add the reverse of every row. (default: :obj:`True`)
        scale (str or float, optional): ``sigma``: ``"std"`` (sample standard deviation of
            the distances, DCRNN; what the PEMS04/08 and Aarhus loaders use),
            ``"median"`` (median of the positive distances, scale-robust) or a number.
            (default: :obj:`"std"`)
    """
    d = torch.as_tensor(np.asarray(dist, dtype=np.float64))
    s = torch.as_tensor(np.asarray(src, dtype=np.int64))
    t = torch.as_tensor(np.asarray(dst, dtype=np.int64))
    if s.numel() and (int(s.min()) < 0 or int(max(s.max(), t.max())) >= num_nodes or int(t.min()) < 0):
        raise ValueError(f"distance rows refer to nodes outside 0..{num_nodes - 1}")
    if (d < 0).any() or not torch.isfinite(d).all():
        raise ValueError("distances must be finite and non-negative")
    seen: dict[tuple[int, int], float] = {}
    for a, b, x in zip(s.tolist(), t.tolist(), d.tolist()):
        seen.setdefault((a, b), x)
        if symmetric:
            seen.setdefault((b, a), x)
    pairs = torch.tensor(list(seen.keys()), dtype=torch.long).reshape(-1, 2)
    dd = torch.tensor(list(seen.values()), dtype=torch.float64)
    from .graph_build import gaussian_kernel

    k = gaussian_kernel(dd.numpy(), scale=scale, threshold=threshold)
    if k.problem is not None:
        import warnings

        warnings.warn(f"Gaussian-kernel edge weights (sigma = {k.sigma:.4g}, scale={scale!r}): {k.problem}",
                      stacklevel=2)
    keep = torch.from_numpy(k.keep)
    return pairs[keep].t().contiguous(), torch.from_numpy(k.weight[k.keep]).to(torch.float32)


def _read_locations(path: Path, header: bool) -> tuple[list[str], Tensor]:
    ids, lonlat = [], []
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if header:
        head = [h.strip().lower() for h in rows[0]]
        try:
            i_id, i_lat, i_lon = head.index("sensor_id"), head.index("latitude"), head.index("longitude")
        except ValueError as exc:
            raise ValueError(f"{path}: expected columns sensor_id, latitude, longitude, got {rows[0]}") from exc
        rows = rows[1:]
    else:
        i_id, i_lat, i_lon = 0, 1, 2
    for r in rows:
        if not r:
            continue
        ids.append(r[i_id].strip())
        lonlat.append((float(r[i_lon]), float(r[i_lat])))
    return ids, torch.tensor(lonlat, dtype=torch.float32)


def _check_ids(expected: Sequence[str], got: Sequence[str], what: str) -> None:
    if list(expected) != list(got):
        if len(expected) != len(got):
            raise ValueError(f"sensor ids disagree: {what} has {len(got)} sensors, expected {len(expected)}")
        i = next(i for i, (a, b) in enumerate(zip(expected, got)) if a != b)
        raise ValueError(f"sensor ids disagree at position {i}: {what} has {got[i]!r}, expected {expected[i]!r}")


# --------------------------------------------------------------------- loaders
def load_los_loop(root: Optional[str | os.PathLike] = None) -> SpatioTemporalDataset:
    """Los-loop: 7 days (2012-03-01..07) of real METR-LA speeds, 207 sensors, 5-minute steps.

    Reads ``los-loop/los_speed.csv`` (header = sensor ids) and ``los-loop/los_adj.csv``
    (symmetric weights), and joins coordinates from ``metr-la/graph_sensor_locations.csv``,
    checking the sensor ids agree position by position.
    """
    root = data_root(root)
    speed_p = _require(root, "los-loop/los_speed.csv", "los-loop")
    adj_p = _require(root, "los-loop/los_adj.csv", "los-loop")
    loc_p = _require(root, "metr-la/graph_sensor_locations.csv", "los-loop")
    with open(speed_p, newline="") as fh:
        header = next(csv.reader(fh))
    ids = [h.strip() for h in header]
    speed = np.loadtxt(speed_p, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if speed.shape[1] != len(ids):
        raise ValueError(f"{speed_p}: {len(ids)} ids in the header but {speed.shape[1]} columns")
    adj = np.loadtxt(adj_p, delimiter=",", dtype=np.float64, ndmin=2)
    if adj.shape != (len(ids), len(ids)):
        raise ValueError(f"{adj_p}: adjacency is {adj.shape}, expected ({len(ids)}, {len(ids)}) to match the speed table")
    loc_ids, pos = _read_locations(loc_p, header=True)
    _check_ids(ids, loc_ids, str(loc_p))
    ei, ew = dense_to_edges(adj, "los_adj")
    return SpatioTemporalDataset(torch.from_numpy(speed).float(), ei, ew, pos=pos, sensor_id=ids,
                                 interval_minutes=5, start=datetime(2012, 3, 1), null_value=0.0,
                                 name="los-loop", feature_names=["speed"],
                                 meta={"source": "T-GCN Los-loop (METR-LA, 2012-03-01..07)"})


def _load_h5_table(path: Path) -> tuple[np.ndarray, list[str], Optional[datetime], int]:
    import pandas as pd

    df = pd.read_hdf(path)
    values = df.to_numpy(dtype=np.float64)
    ids = [str(c) for c in df.columns]
    start, interval = None, 5
    if isinstance(df.index, pd.DatetimeIndex) and len(df.index) > 1:
        start = df.index[0].to_pydatetime()
        interval = int(round((df.index[1] - df.index[0]).total_seconds() / 60)) or 5
    return values, ids, start, interval


def _load_adj_pkl(path: Path) -> tuple[list[str], np.ndarray]:
    """``(sensor_ids, adj_mx)`` of a DCRNN adjacency pickle, read without running code from the file."""
    with open(path, "rb") as fh:
        try:
            obj = ArraysOnlyUnpickler(fh, path).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable adjacency pickle ({exc})") from exc
    if not (isinstance(obj, (list, tuple)) and len(obj) == 3):
        raise ValueError(f"{path}: expected a pickle of [sensor_ids, sensor_id_to_ind, adj_mx]")
    ids, _, adj = obj
    return [str(i) for i in ids], np.asarray(adj, dtype=np.float64)


def _load_pems_h5(name: str, h5: str, pkl: str, loc: str, loc_header: bool, root) -> SpatioTemporalDataset:
    root = data_root(root)
    h5_p = _require(root, h5, name)
    pkl_p = _require(root, pkl, name)
    loc_p = _require(root, loc, name)
    values, ids, start, interval = _load_h5_table(h5_p)
    adj_ids, adj = _load_adj_pkl(pkl_p)
    _check_ids(adj_ids, ids, f"{h5_p} columns")
    loc_ids, pos = _read_locations(loc_p, header=loc_header)
    _check_ids(adj_ids, loc_ids, str(loc_p))
    ei, ew = dense_to_edges(adj, "adj_mx")
    return SpatioTemporalDataset(torch.tensor(values, dtype=torch.float32), ei, ew, pos=pos, sensor_id=ids,
                                 interval_minutes=interval, start=start, null_value=0.0, name=name,
                                 feature_names=["speed"], meta={"source": "DCRNN"})


def load_metr_la(root: Optional[str | os.PathLike] = None) -> SpatioTemporalDataset:
    """METR-LA: pandas-HDF5 speed table ``metr-la/metr-la.h5``, ``adj_mx.pkl`` and the locations CSV (with header)."""
    return _load_pems_h5("metr-la", "metr-la/metr-la.h5", "metr-la/adj_mx.pkl",
                         "metr-la/graph_sensor_locations.csv", True, root)


def load_pems_bay(root: Optional[str | os.PathLike] = None) -> SpatioTemporalDataset:
    """PEMS-BAY: ``pems-bay/pems-bay.h5``, ``adj_mx_bay.pkl`` and the header-less locations CSV."""
    return _load_pems_h5("pems-bay", "pems-bay/pems-bay.h5", "pems-bay/adj_mx_bay.pkl",
                         "pems-bay/graph_sensor_locations_bay.csv", False, root)


def _load_pems_npz(name: str, stem: str, start: datetime, root) -> SpatioTemporalDataset:
    root = data_root(root)
    npz_p = _require(root, f"{name}/{stem}.npz", name)
    csv_p = _require(root, f"{name}/{stem}.csv", name)
    with np.load(npz_p) as z:
        if "data" not in z:
            raise ValueError(f"{npz_p}: expected an array named 'data' of shape [T, N, 3], found {list(z.keys())}")
        data = np.asarray(z["data"], dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"{npz_p}: 'data' must be [T, N, F], got shape {data.shape}")
    N = data.shape[1]
    rows = np.genfromtxt(csv_p, delimiter=",", skip_header=1, ndmin=2)
    if rows.shape[1] < 3:
        raise ValueError(f"{csv_p}: expected columns from,to,cost")
    ei, ew = gaussian_kernel_edges(rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2], N)
    names = ["flow", "occupancy", "speed"][: data.shape[2]] if data.shape[2] <= 3 else None
    return SpatioTemporalDataset(torch.from_numpy(data).float(), ei, ew, interval_minutes=5, start=start,
                                 null_value=0.0, name=name, feature_names=names, meta={"source": "PeMS via ASTGCN"})


def load_pems04(root: Optional[str | os.PathLike] = None) -> SpatioTemporalDataset:
    """PEMS04: ``pems04/PEMS04.npz`` (``data [T, N, 3]``) and ``PEMS04.csv`` distances -> Gaussian-kernel weights."""
    return _load_pems_npz("pems04", "PEMS04", datetime(2018, 1, 1), root)


def load_pems08(root: Optional[str | os.PathLike] = None) -> SpatioTemporalDataset:
    """PEMS08: ``pems08/PEMS08.npz`` (``data [T, N, 3]``) and ``PEMS08.csv`` distances -> Gaussian-kernel weights."""
    return _load_pems_npz("pems08", "PEMS08", datetime(2016, 7, 1), root)


# --------------------------------------------------------------------- generic
def from_arrays(series: Any, edge_index: Any, edge_weight: Any = None, pos: Any = None,
                sensor_id: Optional[Sequence[str]] = None, interval: int = 5, **kwargs: Any) -> SpatioTemporalDataset:
    """A dataset from plain arrays: ``series [T, N(, F)]``, ``edge_index [2, E]`` (``interval`` in minutes)."""
    return SpatioTemporalDataset(series, edge_index, edge_weight, pos=pos, sensor_id=sensor_id,
                                 interval_minutes=interval, **kwargs)


def from_networkx(G: Any, series: Any, weight: str = "weight", **kwargs: Any) -> SpatioTemporalDataset:
    """A dataset from a networkx graph whose nodes are ordered as ``series``'s node axis.

    Node attributes ``pos`` (lon, lat) and ``sensor_id`` are used when every node has them.
    Undirected graphs contribute both directions of each edge.
    """
    import networkx as nx

    nodes = list(G.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    s = torch.as_tensor(np.asarray(series))
    if s.dim() < 2 or s.size(1) != len(nodes):
        raise ValueError(f"`series` must be [T, N, F] with N = {len(nodes)} graph nodes, got {tuple(s.shape)}")
    src, dst, w = [], [], []
    for u, v, d in G.edges(data=True):
        src.append(index[u]); dst.append(index[v]); w.append(float(d.get(weight, 1.0)))
        if not G.is_directed() and u != v:
            src.append(index[v]); dst.append(index[u]); w.append(float(d.get(weight, 1.0)))
    ei = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    if "pos" not in kwargs and all("pos" in G.nodes[n] for n in nodes) and nodes:
        kwargs["pos"] = torch.tensor([list(G.nodes[n]["pos"]) for n in nodes], dtype=torch.float32)
    if "sensor_id" not in kwargs:
        kwargs["sensor_id"] = [str(G.nodes[n].get("sensor_id", n)) for n in nodes]
    return SpatioTemporalDataset(s, ei, torch.tensor(w), **kwargs)


def to_temporal_signal(dataset: SpatioTemporalDataset, t_in: int = 12, t_out: int = 12, stride: int = 1):
    """PyG-Temporal :class:`StaticGraphTemporalSignal` with one snapshot per window.

    Snapshot ``k`` holds ``features[k]``: ``[N, T_in, F]`` and ``targets[k]``: ``[N, T_out, F]``
    (node-first, as everywhere in dynst_pyg), on the raw scale, for windows ``stride`` apart.
    Missing readings are NaN in both, and the observation masks travel as the extra
    snapshot attributes ``x_observed`` and ``y_observed``, shaped like ``x`` and ``y``,
    1.0 where a reading exists and 0.0 where not (float, because PyG-Temporal snapshots
    only carry integer and float arrays).
    """
    from torch_geometric_temporal.signal import StaticGraphTemporalSignal

    from ..data.windows import num_windows

    n = num_windows(dataset.num_steps, t_in, t_out, stride)
    if n == 0:
        raise ValueError(f"`dataset` has T = {dataset.num_steps} steps, too short for one {t_in} -> {t_out} window")
    x, m = dataset.series.numpy(), dataset.observed.numpy().astype(np.float32)
    starts = range(0, n * stride, stride)

    def node_first(a: np.ndarray, lo: int, hi: int) -> list:
        return [np.ascontiguousarray(a[s + lo:s + hi].transpose(1, 0, 2)) for s in starts]

    return StaticGraphTemporalSignal(dataset.edge_index.numpy(), dataset.edge_weight.numpy(),
                                     node_first(x, 0, t_in), node_first(x, t_in, t_in + t_out),
                                     x_observed=node_first(m, 0, t_in), y_observed=node_first(m, t_in, t_in + t_out))


def to_static_signal(dataset: SpatioTemporalDataset):
    """One snapshot per time step: ``features[t] = series[t]`` (``[N, F]``), ``targets[t] = series[t + 1]``.

    This is the lossless layout :func:`from_static_signal` reads back (round trip); the last
    step's target repeats its own reading, since there is no next step. Missing readings
    are NaN, and the observation masks travel as the extra snapshot attributes
    ``x_observed`` and ``y_observed`` (``[N, F]``, 1.0 = reading, 0.0 = missing).
    """
    from torch_geometric_temporal.signal import StaticGraphTemporalSignal

    x, m = dataset.series.numpy(), dataset.observed.numpy().astype(np.float32)
    T = x.shape[0]
    nxt = [t + 1 if t + 1 < T else t for t in range(T)]
    return StaticGraphTemporalSignal(dataset.edge_index.numpy(), dataset.edge_weight.numpy(),
                                     [x[t] for t in range(T)], [x[t] for t in nxt],
                                     x_observed=[m[t] for t in range(T)], y_observed=[m[t] for t in nxt])


def from_static_signal(signal: Any, interval: int = 5, **kwargs: Any) -> SpatioTemporalDataset:
    """A dataset from a PyG-Temporal ``StaticGraphTemporalSignal`` whose ``features[t]`` are ``[N, F]`` readings.

    NaN readings are missing; an ``x_observed`` attribute (one ``[N, F]`` array per step,
    non-zero = reading, as :func:`to_static_signal` writes) marks further cells as missing.
    """
    feats = getattr(signal, "features", None)
    if not feats:
        raise ValueError("`signal` has no features (expected a StaticGraphTemporalSignal with one [N, F] array per step)")
    arr = [np.asarray(f) for f in feats]
    shapes = {a.shape for a in arr}
    if len(shapes) != 1:
        raise ValueError(f"`signal.features` must share one shape, got {sorted(shapes)}")
    series = np.stack(arr, axis=0)
    observed = None
    if "x_observed" in list(getattr(signal, "additional_feature_keys", [])):
        observed = np.stack([np.asarray(o) != 0 for o in signal.x_observed], axis=0)
        if observed.shape != series.shape:
            raise ValueError(f"`signal.x_observed` must match the features' shape {series.shape}, got {observed.shape}")
    if series.ndim == 2:
        series = series[..., None]
        observed = None if observed is None else observed[..., None]
    if observed is not None and "observed" not in kwargs:
        kwargs["observed"] = torch.from_numpy(observed)
    ew = None if signal.edge_weight is None else np.asarray(signal.edge_weight)
    return SpatioTemporalDataset(torch.from_numpy(series).float(), torch.as_tensor(np.asarray(signal.edge_index)),
                                 None if ew is None else torch.from_numpy(ew).float(), interval_minutes=interval, **kwargs)
