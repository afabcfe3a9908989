r"""Sensor graphs from coordinates, and the Gaussian distance kernel (the one implementation).

Two things live here, both plain NumPy/SciPy with no dataset types:

* **The distance kernel.** An edge of length :math:`d` gets the weight

  .. math::

      w = \exp\!\left(-\frac{d^2}{\sigma^2}\right),

  and weights below a ``threshold`` are dropped (DCRNN keeps weights :math:`\ge 0.1`). The
  scale :math:`\sigma` is chosen by :func:`gaussian_kernel`'s ``scale``:

  - ``"median"`` (the *median heuristic*, the default of the folder loader): the median of
    the positive edge lengths. Every weight then depends only on the *ratio* of an edge to
    the typical edge, so it is the same in metres or kilometres, for a network of nearly
    equal edges (the median-length edge has weight :math:`e^{-1} \approx 0.37`, an edge
    1.52 times as long :math:`0.1`) and in the presence of one huge distance (which gets
    weight :math:`\approx 0` instead of flattening the rest to 1).
  - ``"std"``: the sample standard deviation of the edge lengths, as in the DCRNN / METR-LA
    preprocessing, kept for the published loaders (PEMS04/08, Aarhus) whose results were
    computed with it. It measures the *spread*, not the size, of the distances: edges of
    nearly equal length all underflow to weight 0 (e.g. 830-1050 m with
    :math:`\sigma = 79` m gives :math:`\exp(-110)` and less), and one huge distance inflates
    :math:`\sigma` until every other weight is 1.
  - a positive number: that :math:`\sigma`, in the unit of the distances.

  When :math:`\sigma` is undefined (no positive distance for ``"median"``, fewer than two or
  only equal distances for ``"std"``) every weight is 1. :func:`gaussian_kernel` also says
  when the kept weights are *degenerate*: all :math:`< 10^{-3}` (the graph has no effect) or
  all :math:`> 1 - 10^{-3}` (the distances carry no information).

* **Graphs from coordinates**: :func:`knn_graph` (each sensor to its ``k`` nearest sensors,
  made symmetric) and :func:`radius_graph` (every pair at most ``km`` apart), both in
  kilometres: great-circle (haversine) distances for ``(lon, lat)`` degrees, Euclidean
  distance / 1000 for planar ``(x, y)`` metres. :func:`parse_graph_spec` reads the
  ``"edges"`` / ``"knn:K"`` / ``"radius:KM"`` strings of ``dataset.json`` and ``--graph``.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np

__all__ = ["EARTH_RADIUS_KM", "COORDINATE_KINDS", "GRAPH_SPEC_FORMS", "DEGENERATE_EPS", "GraphSpec",
           "KernelWeights", "parse_graph_spec", "gaussian_kernel", "distances_km", "knn_graph", "radius_graph"]

#: Mean Earth radius in km (IUGG), for great-circle distances.
EARTH_RADIUS_KM = 6371.0088
#: ``"lonlat"``: ``(lon, lat)`` in WGS84 degrees; ``"xy"``: planar ``(x, y)`` in metres.
COORDINATE_KINDS = ("lonlat", "xy")
#: The accepted spellings of a graph spec, for messages.
GRAPH_SPEC_FORMS = ("'edges' (the edges.csv of the folder)", "'knn:K' (each sensor to its K nearest sensors, "
                    "K a positive integer, e.g. knn:8)", "'radius:KM' (every pair of sensors at most KM "
                    "kilometres apart, e.g. radius:2.5)")
#: Kept weights all below this, or all above ``1 -`` this, are reported as degenerate.
DEGENERATE_EPS = 1e-3


class GraphSpec(NamedTuple):
    """How a dataset's graph is made: ``kind`` is ``"edges"``, ``"knn"`` or ``"radius"``; ``value`` is K or KM."""

    kind: str
    value: Optional[float] = None

    def __str__(self) -> str:
        if self.kind == "edges":
            return "edges"
        return f"{self.kind}:{int(self.value) if self.kind == 'knn' else f'{self.value:g}'}"


def parse_graph_spec(spec: str, where: str = "graph") -> GraphSpec:
    """Reads ``"edges"``, ``"knn:K"`` or ``"radius:KM"`` (case and spaces ignored).

    Args:
        spec (str): The spec.
        where (str, optional): What holds it, for the message (default: ``"graph"``).

    Raises:
        ValueError: naming ``where``, the value and the accepted forms.
    """
    text = spec.strip().lower().replace(" ", "") if isinstance(spec, str) else None
    m = re.fullmatch(r"(edges|knn|radius)(?::(.*))?", text or "")
    why = None
    if m is None:
        why = "unknown form"
    elif m.group(1) == "edges":
        if m.group(2) is not None:
            why = "'edges' takes no value"
        else:
            return GraphSpec("edges")
    elif m.group(2) in (None, ""):
        why = f"{m.group(1)!r} needs a value after the colon"
    elif m.group(1) == "knn":
        if not re.fullmatch(r"\d+", m.group(2)) or int(m.group(2)) < 1:
            why = "K must be a positive integer"
        else:
            return GraphSpec("knn", int(m.group(2)))
    else:
        try:
            km = float(m.group(2))
        except ValueError:
            km = float("nan")
        if not (math.isfinite(km) and km > 0):
            why = "KM must be a positive number of kilometres"
        else:
            return GraphSpec("radius", km)
    raise ValueError(f"{where}: {spec!r} is not a graph spec ({why}); expected {', '.join(GRAPH_SPEC_FORMS[:-1])} "
                     f"or {GRAPH_SPEC_FORMS[-1]}")


# ------------------------------------------------------------------------ the kernel
class KernelWeights(NamedTuple):
    """What :func:`gaussian_kernel` returns.

    Attributes:
        weight (ndarray): ``exp(-(d / sigma)^2)`` of every distance, float64.
        keep (ndarray): bool, :obj:`True` where ``weight >= threshold``.
        sigma (float): The scale used (``nan`` when undefined and every weight is 1).
        problem (str or None): Why the kept weights are degenerate, or :obj:`None`.
    """

    weight: np.ndarray
    keep: np.ndarray
    sigma: float
    problem: Optional[str]


def gaussian_kernel(dist: "np.ndarray | list", scale: Union[str, float] = "median",
                    threshold: float = 0.1) -> KernelWeights:
    r"""Gaussian-kernel weights :math:`\exp(-(d/\sigma)^2)` of edge lengths (see the module documentation).

    Args:
        dist (array-like): Non-negative finite edge lengths ``[E]``, in any one unit.
        scale (str or float, optional): How :math:`\sigma` is chosen: ``"median"`` (median
            of the positive lengths, scale-robust), ``"std"`` (sample standard deviation,
            DCRNN), or a positive number. (default: :obj:`"median"`)
        threshold (float, optional): Weights below it are marked as dropped in ``keep``;
            ``0`` keeps every edge. (default: :obj:`0.1`)

    Returns:
        KernelWeights: ``(weight, keep, sigma, problem)``.
    """
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    if d.size and (not np.isfinite(d).all() or (d < 0).any()):
        raise ValueError("distances must be finite and non-negative")
    if not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"`threshold` must lie in [0, 1), got {threshold!r}")
    if isinstance(scale, str):
        if scale == "median":
            positive = d[d > 0]
            sigma = float(np.median(positive)) if positive.size else float("nan")
        elif scale == "std":
            sigma = float(d.std(ddof=1)) if d.size > 1 else float("nan")
            sigma = sigma if sigma > 0 else float("nan")
        else:
            raise ValueError(f"`scale` must be 'median', 'std' or a positive number, got {scale!r}")
    else:
        sigma = float(scale)
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"`scale` must be 'median', 'std' or a positive number, got {scale!r}")
    w = np.ones_like(d) if math.isnan(sigma) else np.exp(-np.square(d / sigma))
    keep = w >= threshold
    return KernelWeights(w, keep, sigma, _degenerate(w, keep))


def _degenerate(w: np.ndarray, keep: np.ndarray) -> Optional[str]:
    if w.size == 0:
        return None
    if not keep.any():
        return f"every one of the {w.size} weights is below the threshold, so no edge is left"
    kept = w[keep]
    if kept.size < 2:
        return None
    if float(kept.max()) < DEGENERATE_EPS:
        return f"all {kept.size} weights are below {DEGENERATE_EPS:g} (the graph has no effect)"
    if float(kept.min()) > 1.0 - DEGENERATE_EPS:
        return (f"all {kept.size} weights are above {1 - DEGENERATE_EPS:g} (the distances carry no information; "
                "the graph is unweighted)")
    return None


# ------------------------------------------------------------------------ distances and graphs
def _check_coords(coords: np.ndarray, kind: str) -> np.ndarray:
    c = np.asarray(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"`coords` must have shape [N, 2], got {tuple(c.shape)}")
    if not np.isfinite(c).all():
        raise ValueError("`coords` contains NaN or infinite values")
    if kind not in COORDINATE_KINDS:
        raise ValueError(f"`kind` must be one of {COORDINATE_KINDS}, got {kind!r}")
    return c


def distances_km(coords: np.ndarray, kind: str, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Distances in km between sensors ``src[i]`` and ``dst[i]``.

    Args:
        coords (ndarray): ``[N, 2]``: ``(lon, lat)`` degrees or ``(x, y)`` metres.
        kind (str): ``"lonlat"`` (haversine on a sphere of radius :data:`EARTH_RADIUS_KM`)
            or ``"xy"`` (Euclidean distance / 1000).
        src, dst (ndarray): Sensor indices ``[E]``.
    """
    c = _check_coords(coords, kind)
    a, b = c[np.asarray(src, dtype=np.int64)], c[np.asarray(dst, dtype=np.int64)]
    if kind == "xy":
        return np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]) / 1000.0
    lon1, lat1, lon2, lat2 = (np.radians(v) for v in (a[:, 0], a[:, 1], b[:, 0], b[:, 1]))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _embed_km(c: np.ndarray, kind: str) -> np.ndarray:
    """Points whose Euclidean distances order pairs like the true distances (km; chords on the sphere)."""
    if kind == "xy":
        return c / 1000.0
    lon, lat = np.radians(c[:, 0]), np.radians(c[:, 1])
    return EARTH_RADIUS_KM * np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def _symmetric(src: np.ndarray, dst: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    keys = np.unique(np.concatenate([src * n + dst, dst * n + src]))
    return keys // n, keys % n


def knn_graph(coords: np.ndarray, kind: str, k: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sensor linked to its ``k`` nearest other sensors, in both directions.

    Args:
        coords (ndarray): ``[N, 2]`` coordinates (see :func:`distances_km`).
        kind (str): ``"lonlat"`` or ``"xy"``.
        k (int): Neighbours per sensor, ``1 <= k < N``.

    Returns:
        ``(src, dst, km)``: directed edges sorted by ``(src, dst)`` (no self-loops; the union
        of ``i -> j`` and ``j -> i`` over the nearest neighbours, so a sensor may have more
        than ``k``) and their lengths in km.
    """
    from scipy.spatial import cKDTree

    c = _check_coords(coords, kind)
    n = c.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) < n:
        raise ValueError(f"`k` must be an integer in [1, N) = [1, {n}), got {k!r}")
    k = int(k)
    _, nbr = cKDTree(_embed_km(c, kind)).query(_embed_km(c, kind), k=min(k + 1, n))
    nbr = np.asarray(nbr).reshape(n, -1)
    src, dst = [], []
    for i in range(n):
        row = [int(j) for j in nbr[i] if j != i][:k]
        src += [i] * len(row)
        dst += row
    s, d = _symmetric(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), n)
    return s, d, distances_km(c, kind, s, d)


def radius_graph(coords: np.ndarray, kind: str, km: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of distinct sensors at most ``km`` kilometres apart, in both directions.

    Args:
        coords (ndarray): ``[N, 2]`` coordinates (see :func:`distances_km`).
        kind (str): ``"lonlat"`` or ``"xy"``.
        km (float): The radius in km (positive).

    Returns:
        ``(src, dst, km)``: directed edges sorted by ``(src, dst)`` and their lengths in km.
    """
    from scipy.spatial import cKDTree

    c = _check_coords(coords, kind)
    n = c.shape[0]
    if not (isinstance(km, (int, float, np.floating)) and math.isfinite(km) and km > 0):
        raise ValueError(f"`km` must be a positive number, got {km!r}")
    if kind == "lonlat":  # chord length of an arc of km kilometres (a little slack, filtered exactly below)
        reach = 2 * EARTH_RADIUS_KM * math.sin(min(km / (2 * EARTH_RADIUS_KM), math.pi / 2)) * (1 + 1e-9) + 1e-9
    else:
        reach = km * (1 + 1e-12)
    pairs = cKDTree(_embed_km(c, kind)).query_pairs(reach, output_type="ndarray")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    s, d = _symmetric(pairs[:, 0], pairs[:, 1], n)
    dist = distances_km(c, kind, s, d)
    ok = dist <= km * (1 + 1e-12)
    return s[ok], d[ok], dist[ok]
