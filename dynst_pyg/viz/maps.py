"""Maps of kept and pruned sensors: one network, one selection, coloured by score or by region.

Everything here draws with plain matplotlib and works offline: there are no map tiles
(the geometry is in :mod:`~dynst_pyg.viz.geo`). Importing this module selects no
matplotlib backend: a new figure comes from :mod:`matplotlib.pyplot` inside the function
that draws it, so the caller's backend is used (the ``map`` command selects ``Agg``).

Example:
    >>> from dynst_pyg.viz import plot_sensor_map
    >>> fig, ax = plot_sensor_map(dataset, mask)        # kept = coloured by score, pruned = grey x
    >>> fig.savefig("map.png", dpi=150)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import matplotlib
import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from .._checks import check_graph, check_scores
from ..selection.mask import SensorMask
from .geo import _add_scale_bar, _aspect, _auto_figsize, _check_geographic

if TYPE_CHECKING:  # pragma: no cover
    from ..data.dataset import SpatioTemporalDataset

__all__ = ["plot_sensor_map", "plot_region_map"]

#: gid of the artists drawn by :func:`plot_sensor_map` (useful to find them again).
GID_KEPT, GID_PRUNED, GID_EDGES = "dynst-kept", "dynst-pruned", "dynst-edges"
GID_HIGHLIGHT = "dynst-highlight"

PRUNED_COLOR = "#8c8c8c"
EDGE_COLOR = "#c8c8c8"
KEPT_COLOR = "#1f77b4"  # used when there are no scores
HIGHLIGHT_COLOR = "#d62728"

PosLike = Union["SpatioTemporalDataset", Tensor, np.ndarray, Any]
MaskLike = Union[SensorMask, Tensor, np.ndarray, Sequence[bool], None]


# ----------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------
def _float_array(value: Any, name: str, expected: str) -> np.ndarray:
    """``value`` (tensor or array-like) as float64 numpy; ``expected`` words the TypeError."""
    if isinstance(value, Tensor):
        return value.detach().cpu().to(torch.float64).numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"'{name}' must be {expected}: {exc}") from None


def _as_numpy_2d(value: Any, name: str) -> np.ndarray:
    arr = _float_array(value, name, "an [N, 2] array of (lon, lat) coordinates")
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise ValueError(f"'{name}' must have shape [N, 2] with (lon, lat) per sensor, got {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"'{name}' contains NaN or infinite coordinates")
    return arr


class _Network(NamedTuple):
    """What a map needs to know about the network it draws."""

    pos: np.ndarray                   # [N, 2] float64
    edge_index: Optional[np.ndarray]  # [2, E] int64, or None
    name: str                         # the dataset's name, "" when unknown
    sensor_ids: Optional[List[str]]   # one id per sensor, or None when unknown
    meta: dict = {}                   # the dataset's meta (coordinates kind, graph source), empty if none


def _ids_of(obj: Any, n: int) -> Optional[List[str]]:
    """The ``sensor_id`` of a dataset or Data as ``n`` strings, or :obj:`None` when it has none."""
    ids = getattr(obj, "sensor_id", None)
    if isinstance(ids, Tensor):
        ids = [str(int(v)) for v in ids.reshape(-1).tolist()]
    if not isinstance(ids, (list, tuple)) or len(ids) != n:
        return None
    return [str(v) for v in ids]


def _resolve_graph(dataset_or_pos: PosLike, edge_index: Any) -> _Network:
    """The coordinates, edges, name and sensor ids of a dataset, a PyG Data or bare coordinates."""
    from ..data.dataset import SpatioTemporalDataset

    name = ""
    ids: Optional[List[str]] = None
    ei: Any = edge_index
    if isinstance(dataset_or_pos, SpatioTemporalDataset):
        name = dataset_or_pos.name
        if dataset_or_pos.pos is None:
            raise ValueError(f"'dataset_or_pos': the dataset {dataset_or_pos.name!r} has no sensor coordinates "
                             "(its 'pos' is None); build it with pos=[N, 2] (lon, lat) or pass the coordinates "
                             "directly as an [N, 2] tensor")
        pos = _as_numpy_2d(dataset_or_pos.pos, "dataset.pos")
        ids = _ids_of(dataset_or_pos, pos.shape[0])
        if ei is None:
            ei = dataset_or_pos.edge_index
    elif isinstance(dataset_or_pos, (Tensor, np.ndarray, list, tuple)):
        pos = _as_numpy_2d(dataset_or_pos, "dataset_or_pos")
    elif hasattr(dataset_or_pos, "pos") and hasattr(dataset_or_pos, "edge_index"):  # PyG Data-like
        if getattr(dataset_or_pos, "pos", None) is None:
            raise ValueError("'dataset_or_pos': the graph has no sensor coordinates (data.pos is None); set "
                             "data.pos to an [N, 2] (lon, lat) tensor")
        pos = _as_numpy_2d(dataset_or_pos.pos, "data.pos")
        ids = _ids_of(dataset_or_pos, pos.shape[0])
        if ei is None:
            ei = dataset_or_pos.edge_index
    else:
        raise TypeError("'dataset_or_pos' must be a SpatioTemporalDataset, a PyG Data with 'pos', or an [N, 2] "
                        f"(lon, lat) tensor/array, got {type(dataset_or_pos).__name__}")
    meta = dict(getattr(dataset_or_pos, "meta", None) or {}) if isinstance(dataset_or_pos, SpatioTemporalDataset) else {}
    if ei is None:
        return _Network(pos, None, name, ids, meta)
    if not isinstance(ei, Tensor):
        try:
            ei = torch.as_tensor(np.asarray(ei))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"`edge_index` must be an integer tensor or array of shape [2, E]: {exc}") from None
    check_graph(ei, None, pos.shape[0])
    return _Network(pos, ei.detach().cpu().to(torch.long).numpy(), name, ids, meta)


def _check_same_network(smask: Optional[SensorMask], net: _Network) -> None:
    """Refuses a mask whose sensor ids are not the network's (both must be known to compare)."""
    mids = None if smask is None else smask.sensor_ids
    if mids is None or net.sensor_ids is None or mids == net.sensor_ids:
        return
    i = next(i for i, (a, b) in enumerate(zip(mids, net.sensor_ids)) if a != b)
    where = f"the data {net.name!r}" if net.name else "the data"
    raise ValueError(f"'mask' belongs to another network: sensor {i} is {mids[i]!r} in the mask, "
                     f"{net.sensor_ids[i]!r} in {where}")


def _resolve_mask(mask: MaskLike, n: int) -> Tuple[np.ndarray, Optional[SensorMask]]:
    """Boolean kept vector of length ``n`` (all True for None) and the SensorMask if one was given."""
    if mask is None:
        return np.ones(n, dtype=bool), None
    if isinstance(mask, SensorMask):
        if mask.num_nodes != n:
            raise ValueError(f"'mask' covers {mask.num_nodes} sensors but the map has {n} sensors with "
                             "coordinates; use the mask built for this network")
        return mask.bool_mask.numpy().astype(bool), mask
    if isinstance(mask, Tensor):
        arr = mask.detach().cpu().numpy()
    else:
        arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"'mask' must be a SensorMask or a boolean vector of length N, got dtype {arr.dtype} "
                        "(use SensorMask.from_indices for kept indices)")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"'mask' must be a boolean vector of length N={n} (one entry per sensor), got shape "
                         f"{tuple(arr.shape)}")
    return arr.copy(), None


def _resolve_scores(scores: Any, sensor_mask: Optional[SensorMask], n: int) -> Optional[np.ndarray]:
    if scores is None:
        if sensor_mask is None or sensor_mask.scores is None:
            return None
        scores = sensor_mask.scores
    s = check_scores(scores, "scores", num_nodes=n)
    if not np.isfinite(s).all():
        raise ValueError("'scores' contains infinite values (the colour scale needs finite ones)")
    return s


def _edge_segments(pos: np.ndarray, ei: np.ndarray) -> np.ndarray:
    """Undirected, self-loop-free edge segments [M, 2, 2] (each pair drawn once)."""
    if ei.size == 0:
        return np.zeros((0, 2, 2))
    u, v = ei[0], ei[1]
    off = u != v
    a, b = np.minimum(u[off], v[off]), np.maximum(u[off], v[off])
    pairs = np.unique(np.stack([a, b], axis=1), axis=0) if a.size else np.zeros((0, 2), dtype=np.int64)
    return np.stack([pos[pairs[:, 0]], pos[pairs[:, 1]]], axis=1)


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def _edge_label(net: _Network) -> str:
    """What the map's legend calls an edge: where the graph came from."""
    source = net.meta.get("graph_source")
    return "road-graph edge" if not source or source == "edges.csv" else f"graph edge: {source}"


def plot_sensor_map(
    dataset_or_pos: PosLike,
    mask: MaskLike = None,
    scores: Optional[Union[Tensor, np.ndarray, Sequence[float]]] = None,
    edge_index: Optional[Union[Tensor, np.ndarray]] = None,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
    *,
    cmap: str = "viridis",
    vmin: Optional[float] = None,
    vmax: Optional[float] = None,
    kept_size: float = 30.0,
    pruned_size: float = 16.0,
    show_edges: bool = True,
    scale_bar: bool = True,
    colorbar: bool = True,
    legend: bool = True,
    geographic: Optional[bool] = None,
    score_label: str = "importance score",
    highlight: Optional[Union[Tensor, np.ndarray, Sequence[int]]] = None,
    highlight_label: str = "highlighted",
    color_by_score: bool = True,
    figsize: Optional[Tuple[float, float]] = None,
) -> Tuple[Figure, Axes]:
    r"""Draws the sensors of a network at their coordinates, kept vs pruned.

    * road-graph edges: thin light-grey lines (each undirected pair once, no self-loops);
    * kept sensors: filled circles coloured by importance score (with a colour bar), or
      plain blue circles when there are no scores;
    * pruned sensors: small grey ``x`` markers;
    * a legend with the counts, and a scale bar in km.

    Longitude/latitude axes use the aspect ratio ``1 / cos(lat0)`` (``lat0`` = mean
    latitude), and the scale bar uses the equirectangular approximation
    ``1 deg lon = (pi / 180) * 6371 km * cos(lat0)``. No map tiles are drawn, so no network
    access is needed.

    Args:
        dataset_or_pos (SpatioTemporalDataset, Data or Tensor): The network: a dataset or
            PyG :class:`~torch_geometric.data.Data` with ``pos`` (and ``edge_index``), or an
            ``[N, 2]`` tensor/array of (lon, lat) coordinates.
        mask (SensorMask or BoolTensor, optional): The kept sensors, as a mask over the
            ``N`` sensors or a boolean vector of length ``N``. :obj:`None` draws every sensor
            as kept, e.g. to show an importance map of the whole network.
            (default: :obj:`None`)
        scores (Tensor, optional): Importance per sensor, shape ``[N]``, for the colour of
            the kept sensors. (default: the mask's ``scores`` if it has any, else none)
        edge_index (LongTensor, optional): Edges ``[2, E]`` to draw.
            (default: the edges of :obj:`dataset_or_pos`, none for a bare tensor)
        ax (matplotlib.axes.Axes, optional): Axes to draw on; a new figure is created
            when :obj:`None`. (default: :obj:`None`)
        title (str, optional): Axes title. (default: a summary such as
            ``"dynst-iterative: kept 104/207 (50% pruned)"``)
        cmap (str, optional): Colour map of the scores. (default: :obj:`"viridis"`)
        vmin (float, optional): Lower end of the colour scale. (default: min of the scores
            of the kept sensors)
        vmax (float, optional): Upper end of the colour scale. (default: max of the scores
            of the kept sensors)
        kept_size (float, optional): Marker area of kept sensors, pt^2. (default: :obj:`30.0`)
        pruned_size (float, optional): Marker area of pruned sensors, pt^2. (default: :obj:`16.0`)
        show_edges (bool, optional): Draw the road graph. (default: :obj:`True`)
        scale_bar (bool, optional): Draw a distance scale bar. (default: :obj:`True`)
        colorbar (bool, optional): Add a colour bar when there are scores. (default: :obj:`True`)
        legend (bool, optional): Add a legend. (default: :obj:`True`)
        geographic (bool, optional): Treat ``pos`` as (lon, lat) degrees (aspect
            correction, km scale bar); :obj:`False` draws planar ``(x, y)`` metres with a
            metric scale bar. (default: :obj:`None`: planar when the dataset's
            ``meta["coordinates"]`` is ``"xy"``, else degrees)
        score_label (str, optional): Colour bar label. (default: :obj:`"importance score"`)
        highlight (LongTensor, optional): Sensors to ring in red (e.g. the planted redundant
            sensors of the synthetic data). (default: :obj:`None`)
        highlight_label (str, optional): Legend label of :obj:`highlight`.
            (default: :obj:`"highlighted"`)
        color_by_score (bool, optional): Colour the kept sensors by score; :obj:`False` draws
            them in one colour even when scores exist (e.g. for a random selection, whose
            "scores" mean nothing). (default: :obj:`True`)
        figsize (tuple, optional): Size of a new figure in inches. (default: chosen from the
            map's shape, 7.5 inches wide)

    Returns:
        (Figure, Axes): The figure and the axes drawn on. The kept / pruned / edge artists
        carry the gids ``"dynst-kept"``, ``"dynst-pruned"`` and ``"dynst-edges"``.

    Raises:
        ValueError: if the network has no coordinates, or the mask / scores do not have
            one entry per sensor, or the mask's ``sensor_ids`` differ from the network's
            ``sensor_id`` (when both are known), or ``pos`` is not (lon, lat) degrees with
            ``geographic=True``.
        TypeError: on inputs of the wrong type.
    """
    net = _resolve_graph(dataset_or_pos, edge_index)
    pos, ei, ds_name = net.pos, net.edge_index, net.name
    n = pos.shape[0]
    kept, smask = _resolve_mask(mask, n)
    _check_same_network(smask, net)
    s = _resolve_scores(scores, smask, n)
    if geographic is None:  # planar x, y metres when the dataset says so, else (lon, lat) degrees
        geographic = net.meta.get("coordinates", "lonlat") != "xy"
    if geographic:
        _check_geographic(pos)
    if kept_size <= 0 or pruned_size <= 0:
        raise ValueError(f"'kept_size' and 'pruned_size' must be positive, got {kept_size} and {pruned_size}")

    import matplotlib.pyplot as plt

    if not color_by_score:
        s = None
    xmin, ymin = pos.min(axis=0)
    xmax, ymax = pos.max(axis=0)
    dx, dy = max(xmax - xmin, 1e-6), max(ymax - ymin, 1e-6)
    aspect = _aspect(pos, geographic)
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize or _auto_figsize(dx, dy, aspect, 7.5), layout="constrained")
    else:
        fig = ax.figure

    handles: List[Any] = []
    if show_edges and ei is not None:
        segs = _edge_segments(pos, ei)
        if len(segs):
            lc = LineCollection(segs, colors=EDGE_COLOR, linewidths=0.6, zorder=1, gid=GID_EDGES)
            ax.add_collection(lc)
            handles.append(Line2D([], [], color=EDGE_COLOR, linewidth=1.2, label=f"{_edge_label(net)} ({len(segs)})"))

    pruned = ~kept
    n_kept, n_pruned = int(kept.sum()), int(pruned.sum())
    kept_label = "sensor" if mask is None else "kept"
    ax.scatter(pos[pruned, 0], pos[pruned, 1], s=pruned_size, marker="x", c=PRUNED_COLOR, linewidths=1.0,
               zorder=2, gid=GID_PRUNED, label=f"pruned ({n_pruned})")
    norm = None
    if s is not None:
        # default colour range: the scores of the sensors drawn in colour (the kept ones)
        ref = s[kept] if n_kept else s
        lo = float(np.min(ref)) if vmin is None else float(vmin)
        hi = float(np.max(ref)) if vmax is None else float(vmax)
        if hi <= lo:
            hi = lo + max(abs(lo) * 1e-6, 1e-12)
        norm = mcolors.Normalize(vmin=lo, vmax=hi)
        # draw low scores first so that the important sensors are on top
        order = np.argsort(s[kept], kind="stable")
        ax.scatter(pos[kept, 0][order], pos[kept, 1][order], s=kept_size, c=s[kept][order], cmap=cmap,
                   norm=norm, marker="o", edgecolors="black", linewidths=0.4, zorder=3, gid=GID_KEPT,
                   label=f"{kept_label} ({n_kept})")
    else:
        ax.scatter(pos[kept, 0], pos[kept, 1], s=kept_size, c=KEPT_COLOR, marker="o", edgecolors="black",
                   linewidths=0.4, zorder=3, gid=GID_KEPT, label=f"{kept_label} ({n_kept})")
    handles.append(Line2D([], [], linestyle="none", marker="o", markersize=6.5,
                          markerfacecolor=(plt.get_cmap(cmap)(0.75) if s is not None else KEPT_COLOR),
                          markeredgecolor="black", markeredgewidth=0.5,
                          label=f"{kept_label} ({n_kept})" + (", colour = score" if s is not None else "")))
    if mask is not None:
        handles.append(Line2D([], [], linestyle="none", marker="x", markersize=6, color=PRUNED_COLOR,
                              markeredgewidth=1.2, label=f"pruned ({n_pruned})"))
    if highlight is not None:
        hi_idx = np.asarray(highlight.detach().cpu().numpy() if isinstance(highlight, Tensor) else highlight,
                            dtype=np.int64).reshape(-1)
        if hi_idx.size and (hi_idx.min() < 0 or hi_idx.max() >= n):
            raise ValueError(f"'highlight' holds indices outside 0..{n - 1} for the {n} sensors")
        ax.scatter(pos[hi_idx, 0], pos[hi_idx, 1], s=kept_size * 3.2, facecolors="none", edgecolors=HIGHLIGHT_COLOR,
                   linewidths=1.1, zorder=4, gid=GID_HIGHLIGHT)
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor=HIGHLIGHT_COLOR, markeredgewidth=1.1,
                              label=f"{highlight_label} ({hi_idx.size})"))

    # limits with a margin (extra room at the bottom for the scale bar), then the aspect ratio
    ax.set_xlim(xmin - 0.04 * dx, xmax + 0.04 * dx)
    ax.set_ylim(ymin - 0.10 * dy, ymax + 0.04 * dy)
    ax.set_aspect(aspect, adjustable="box")
    ax.set_xlabel("longitude (°)" if geographic else "x (m)")
    ax.set_ylabel("latitude (°)" if geographic else "y (m)")
    ax.tick_params(labelsize=8)
    ax.ticklabel_format(useOffset=False, style="plain")

    if title is None:
        if smask is not None:
            title = f"{smask.method}: kept {n_kept}/{n} ({smask.sparsity:.0%} pruned)"
        elif mask is not None:
            title = f"kept {n_kept}/{n} ({n_pruned / n:.0%} pruned)"
        else:
            title = f"{n} sensors"
        if ds_name:
            title = f"{ds_name} — {title}"
    ax.set_title(title, fontsize=10)

    if s is not None and colorbar:
        from matplotlib.cm import ScalarMappable

        # an inset axes follows the (aspect-adjusted) map box, so the bar is as tall as the map
        cax = ax.inset_axes([1.025, 0.0, 0.035, 1.0])
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        cb.set_label(score_label + (" of kept sensors" if mask is not None else ""), fontsize=9)
        cb.ax.tick_params(labelsize=8)
    if legend:
        # below the map, so that it never hides a sensor
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=min(3, len(handles)),
                  fontsize=8, frameon=False, handletextpad=0.4, columnspacing=1.5)
    if scale_bar:
        _add_scale_bar(ax, pos, geographic)
    return fig, ax


def _resolve_regions(regions: Any, smask: Optional[SensorMask], n: int) -> List[str]:
    from ..selection.constraints import SelectionConstraints

    if regions is None and smask is not None and smask.constraints is not None:
        regions = smask.constraints.regions
    if isinstance(regions, SelectionConstraints):
        regions = regions.regions
    if regions is None:
        raise ValueError("'regions' is required: one label per sensor, SelectionConstraints with regions, "
                         "or a mask whose meta['constraints'] has regions")
    if isinstance(regions, (str, bytes)) or not isinstance(regions, Iterable):
        raise TypeError(f"'regions' must be a sequence of labels, got {type(regions).__name__}")
    labels = [str(r) for r in regions]
    if len(labels) != n:
        raise ValueError(f"'regions' must have one label per sensor (N={n}), got {len(labels)}")
    return labels


def plot_region_map(
    dataset_or_pos: PosLike,
    mask: MaskLike = None,
    regions: Optional[Union[Sequence[str], Any]] = None,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
    **kwargs: Any,
) -> Tuple[Figure, Axes]:
    r"""Like :func:`plot_sensor_map`, with the kept sensors coloured by region.

    The legend lists every region with its kept / total count, so a region minimum can be
    checked at a glance; pruned sensors stay grey ``x`` markers.

    Args:
        dataset_or_pos, mask, ax, title: As in :func:`plot_sensor_map`.
        regions (sequence of str or SelectionConstraints, optional): One label per sensor, or
            constraints with regions. (default: the regions of ``mask.constraints``)
        **kwargs: Passed on to :func:`plot_sensor_map` (not ``color_by_score``, ``colorbar``
            or ``legend``, which this function sets).

    Returns:
        (Figure, Axes): As in :func:`plot_sensor_map`.
    """
    for key in ("color_by_score", "colorbar", "legend"):
        if key in kwargs:
            raise TypeError(f"plot_region_map() sets '{key}' itself")
    net = _resolve_graph(dataset_or_pos, kwargs.get("edge_index"))
    n = net.pos.shape[0]
    kept, smask = _resolve_mask(mask, n)
    _check_same_network(smask, net)
    labels = _resolve_regions(regions, smask, n)
    fig, ax = plot_sensor_map(dataset_or_pos, mask, ax=ax, title=title, color_by_score=False, colorbar=False,
                              legend=False, **kwargs)
    names = list(dict.fromkeys(labels))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    colour = {lab: cmap(i % cmap.N) for i, lab in enumerate(names)}
    kept_idx = np.flatnonzero(kept)  # plot_sensor_map draws uncoloured kept sensors in index order
    artist = next(a for a in ax.collections if a.get_gid() == GID_KEPT)
    artist.set_facecolors([colour[labels[i]] for i in kept_idx])
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=6.5, markerfacecolor=colour[lab],
                      markeredgecolor="black", markeredgewidth=0.5,
                      label=f"{lab} ({sum(1 for i in kept_idx if labels[i] == lab)}/{labels.count(lab)})")
               for lab in names]
    if mask is not None:
        handles.append(Line2D([], [], linestyle="none", marker="x", markersize=6, color=PRUNED_COLOR,
                              markeredgewidth=1.2, label=f"pruned ({n - kept_idx.size})"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=min(4, len(handles)),
              fontsize=8, frameon=False, handletextpad=0.4, columnspacing=1.5, title="region (kept/total)",
              title_fontsize=8)
    return fig, ax
