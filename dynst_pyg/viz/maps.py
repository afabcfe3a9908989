"""Maps of kept and pruned sensors, mask comparisons and accuracy-vs-sparsity plots.

Everything here draws with plain matplotlib and works offline: there are no map tiles.
Sensors are placed at their (lon, lat) coordinates on axes whose aspect ratio is
``1 / cos(mean latitude)``, so one kilometre is (approximately) as long east-west as
north-south, and a scale bar in kilometres is computed with the **equirectangular
approximation** (``dx = R * dlon * cos(lat0)``, ``R = 6371 km``), which is accurate to
well under 1 % over a city-sized network.

When no display is available (no ``DISPLAY`` / ``WAYLAND_DISPLAY`` on Linux), importing
this module switches matplotlib to the non-interactive ``Agg`` backend, unless a backend
was chosen explicitly (``MPLBACKEND`` or an earlier :func:`matplotlib.use`).

Example:
    >>> from dynst_pyg.viz import plot_sensor_map
    >>> fig, ax = plot_sensor_map(dataset, mask)        # kept = coloured by score, pruned = grey x
    >>> fig.savefig("map.png", dpi=150)
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import matplotlib

if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
        and not os.environ.get("MPLBACKEND") and "matplotlib.pyplot" not in sys.modules):
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from torch import Tensor  # noqa: E402

from ..selection.mask import SensorMask

if TYPE_CHECKING:  # pragma: no cover
    from ..data.dataset import SpatioTemporalDataset

__all__ = ["plot_sensor_map", "plot_region_map", "plot_masks", "plot_mask_comparison", "plot_tradeoff",
           "load_tradeoff_rows",
           "EARTH_RADIUS_KM", "km_per_degree"]

#: Mean Earth radius used by the equirectangular approximation.
EARTH_RADIUS_KM = 6371.0

#: gid of the artists drawn by :func:`plot_sensor_map` (useful to find them again).
GID_KEPT, GID_PRUNED, GID_EDGES, GID_SCALE = "dynst-kept", "dynst-pruned", "dynst-edges", "dynst-scalebar"
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


def _resolve_graph(dataset_or_pos: PosLike, edge_index: Any) -> Tuple[np.ndarray, Optional[np.ndarray], str]:
    """(pos [N, 2], edge_index [2, E] or None, a short name) from a dataset, Data or bare coordinates."""
    from ..data.dataset import SpatioTemporalDataset

    name = ""
    ei: Any = edge_index
    if isinstance(dataset_or_pos, SpatioTemporalDataset):
        name = dataset_or_pos.name
        if dataset_or_pos.pos is None:
            raise ValueError(f"'dataset_or_pos': the dataset {dataset_or_pos.name!r} has no sensor coordinates "
                             "(its 'pos' is None); build it with pos=[N, 2] (lon, lat) or pass the coordinates "
                             "directly as an [N, 2] tensor")
        pos = _as_numpy_2d(dataset_or_pos.pos, "dataset.pos")
        if ei is None:
            ei = dataset_or_pos.edge_index
    elif isinstance(dataset_or_pos, (Tensor, np.ndarray, list, tuple)):
        pos = _as_numpy_2d(dataset_or_pos, "dataset_or_pos")
    elif hasattr(dataset_or_pos, "pos") and hasattr(dataset_or_pos, "edge_index"):  # PyG Data-like
        if getattr(dataset_or_pos, "pos", None) is None:
            raise ValueError("'dataset_or_pos': the graph has no sensor coordinates (data.pos is None); set "
                             "data.pos to an [N, 2] (lon, lat) tensor")
        pos = _as_numpy_2d(dataset_or_pos.pos, "data.pos")
        if ei is None:
            ei = dataset_or_pos.edge_index
    else:
        raise TypeError("'dataset_or_pos' must be a SpatioTemporalDataset, a PyG Data with 'pos', or an [N, 2] "
                        f"(lon, lat) tensor/array, got {type(dataset_or_pos).__name__}")
    n = pos.shape[0]
    if ei is None:
        return pos, None, name
    if isinstance(ei, Tensor):
        ei_np = ei.detach().cpu().numpy()
    else:
        ei_np = np.asarray(ei)
    if ei_np.ndim != 2 or ei_np.shape[0] != 2:
        raise ValueError(f"'edge_index' must have shape [2, E], got {tuple(ei_np.shape)}")
    if ei_np.size and not np.issubdtype(ei_np.dtype, np.integer):
        raise TypeError(f"'edge_index' must hold integer node indices, got dtype {ei_np.dtype}")
    ei_np = ei_np.astype(np.int64)
    if ei_np.size and (ei_np.min() < 0 or ei_np.max() >= n):
        raise ValueError(f"'edge_index' refers to node {int(ei_np.max()) if ei_np.max() >= n else int(ei_np.min())}, "
                         f"outside 0..{n - 1} for the {n} sensors with coordinates")
    return pos, ei_np, name


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
    s = _float_array(scores, "scores", "a 1-D array of numbers, one per sensor")
    if s.ndim != 1 or s.shape[0] != n:
        raise ValueError(f"'scores' must have one value per sensor (length N={n}), got shape {tuple(s.shape)}")
    if not np.isfinite(s).all():
        raise ValueError("'scores' contains NaN or infinite values")
    return s


def _check_geographic(pos: np.ndarray) -> None:
    lon, lat = pos[:, 0], pos[:, 1]
    if np.abs(lat).max() > 90 or np.abs(lon).max() > 360:
        raise ValueError("'pos' does not look like (lon, lat) degrees (|lat| must be <= 90, |lon| <= 360; got lat in "
                         f"[{lat.min():.4g}, {lat.max():.4g}], lon in [{lon.min():.4g}, {lon.max():.4g}]); check "
                         "the column order or pass geographic=False for planar coordinates")


def km_per_degree(lat_deg: float) -> Tuple[float, float]:
    """Kilometres per degree of (longitude, latitude) at latitude ``lat_deg`` (equirectangular)."""
    k = math.pi / 180.0 * EARTH_RADIUS_KM
    return k * math.cos(math.radians(lat_deg)), k


def _nice_length(target: float) -> float:
    """The largest of 1, 2, 5 x 10^k that is <= target (target > 0)."""
    exp = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        v = m * 10 ** exp
        if v <= target * (1 + 1e-9):
            return v
    return 10 ** exp


def _format_km(km: float) -> str:
    if km >= 1:
        return f"{km:g} km"
    return f"{km * 1000:g} m"


def _add_scale_bar(ax: Axes, pos: np.ndarray, geographic: bool) -> None:
    """A horizontal bar in the lower-left corner, ~1/5 of the map width long."""
    from matplotlib.offsetbox import AnchoredOffsetbox, AuxTransformBox, TextArea, VPacker
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    width = abs(x1 - x0)
    if width <= 0:
        return
    if geographic:
        lat0 = float(np.mean(pos[:, 1]))
        kx, _ = km_per_degree(lat0)
        length_km = _nice_length(width * kx / 5.0)
        length = length_km / kx
        label = _format_km(length_km)
    else:
        length = _nice_length(width / 5.0)
        label = f"{length:g} units"
    y0, y1 = ax.get_ylim()
    bar_h = abs(y1 - y0) * 0.008
    box = AuxTransformBox(ax.transData)
    box.add_artist(Rectangle((0, 0), length, bar_h, facecolor="black", edgecolor="black", linewidth=0.5))
    box.add_artist(Rectangle((length / 2, 0), length / 2, bar_h, facecolor="white", edgecolor="black",
                             linewidth=0.5))
    text = TextArea(label, textprops=dict(fontsize=8))
    packed = VPacker(children=[box, text], align="center", pad=0, sep=2)
    anchored = AnchoredOffsetbox(loc="lower left", child=packed, pad=0.4, borderpad=0.6, frameon=True)
    anchored.patch.set_alpha(0.8)
    anchored.patch.set_edgecolor("none")
    anchored.set_gid(GID_SCALE)
    anchored.scale_km = float(length_km) if geographic else None  # type: ignore[attr-defined]
    ax.add_artist(anchored)


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
    geographic: bool = True,
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
            correction, km scale bar). Set to :obj:`False` for planar coordinates.
            (default: :obj:`True`)
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
            one entry per sensor, or ``pos`` is not (lon, lat) degrees with ``geographic=True``.
        TypeError: on inputs of the wrong type.
    """
    pos, ei, ds_name = _resolve_graph(dataset_or_pos, edge_index)
    n = pos.shape[0]
    kept, smask = _resolve_mask(mask, n)
    s = _resolve_scores(scores, smask, n)
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
    lat0 = float(np.mean(pos[:, 1]))
    aspect = 1.0 / max(math.cos(math.radians(lat0)), 1e-3) if geographic else 1.0
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
            handles.append(Line2D([], [], color=EDGE_COLOR, linewidth=1.2, label=f"road-graph edge ({len(segs)})"))

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
    ax.set_xlabel("longitude (°)" if geographic else "x")
    ax.set_ylabel("latitude (°)" if geographic else "y")
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
    fig, ax = plot_sensor_map(dataset_or_pos, mask, ax=ax, title=title, color_by_score=False, colorbar=False,
                              legend=False, **kwargs)
    n = len(_resolve_graph(dataset_or_pos, kwargs.get("edge_index"))[0])
    kept, smask = _resolve_mask(mask, n)
    labels = _resolve_regions(regions, smask, n)
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


def _auto_figsize(dx: float, dy: float, aspect: float, width: float) -> Tuple[float, float]:
    """Figure size whose map area matches the data's (aspect-corrected) shape."""
    ratio = dy * 1.14 * aspect / (dx * 1.08)
    map_w = width - 2.4  # y label, tick labels, colour bar
    h = map_w * ratio + 1.9  # title, x label, legend
    return (width, float(min(max(h, 3.8), 11.0)))


def plot_masks(
    dataset: PosLike,
    masks: Sequence[SensorMask],
    labels: Optional[Sequence[str]] = None,
    *,
    suptitle: Optional[str] = None,
    color_by_score: Union[bool, Sequence[bool]] = True,
    panel_size: Optional[Tuple[float, float]] = None,
    **kwargs: Any,
) -> Tuple[Figure, np.ndarray]:
    r"""Draws several masks of the same network side by side (one :func:`plot_sensor_map` each).

    Args:
        dataset (SpatioTemporalDataset, Data or Tensor): The network (see :func:`plot_sensor_map`).
        masks (sequence of SensorMask): The selections, all over the same ``N`` sensors.
        labels (sequence of str, optional): One panel title prefix per mask.
            (default: each mask's ``method``)
        suptitle (str, optional): Figure title. (default: :obj:`None`)
        color_by_score (bool or sequence of bool, optional): Colour kept sensors by score,
            for all masks or per mask (e.g. ``[True, False]`` when the second mask is a
            random selection whose scores mean nothing). (default: :obj:`True`)
        panel_size (tuple, optional): Size of one panel in inches. (default: chosen from the
            map's shape, 6 inches wide)
        **kwargs: Passed on to :func:`plot_sensor_map` (e.g. ``cmap``, ``show_edges``).

    Returns:
        (Figure, ndarray of Axes)
    """
    masks = list(masks)
    if not masks:
        raise ValueError("'masks' is empty: give at least one SensorMask")
    for i, m in enumerate(masks):
        if not isinstance(m, SensorMask):
            raise TypeError(f"'masks[{i}]' must be a SensorMask, got {type(m).__name__}")
    if labels is None:
        labels = [m.method for m in masks]
    labels = list(labels)
    if len(labels) != len(masks):
        raise ValueError(f"'labels' must have one entry per mask ({len(masks)}), got {len(labels)}")
    for bad in ("ax", "title"):
        if bad in kwargs:
            raise TypeError(f"'{bad}' cannot be passed to plot_masks (one panel per mask is created)")

    k = len(masks)
    if isinstance(color_by_score, bool):
        by_score = [color_by_score] * k
    else:
        by_score = [bool(v) for v in color_by_score]
        if len(by_score) != k:
            raise ValueError(f"'color_by_score' must be a bool or one bool per mask ({k}), got {len(by_score)}")
    if panel_size is None:
        pos, _, _ = _resolve_graph(dataset, None)
        dx, dy = np.ptp(pos[:, 0]) or 1e-6, np.ptp(pos[:, 1]) or 1e-6
        geo = kwargs.get("geographic", True)
        aspect = 1.0 / max(math.cos(math.radians(float(np.mean(pos[:, 1])))), 1e-3) if geo else 1.0
        panel_size = _auto_figsize(float(dx), float(dy), aspect, 6.0)

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, k, figsize=(panel_size[0] * k, panel_size[1] + (0.4 if suptitle else 0.0)),
                             layout="constrained", squeeze=False)
    axes = axes[0]
    for ax, m, lab, col in zip(axes, masks, labels, by_score):
        plot_sensor_map(dataset, m, ax=ax, title=f"{lab}: kept {m.num_kept}/{m.num_nodes} ({m.sparsity:.0%} pruned)",
                        color_by_score=col, **kwargs)
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    return fig, axes


def plot_mask_comparison(
    dataset: PosLike,
    mask_a: SensorMask,
    mask_b: SensorMask,
    labels: Tuple[str, str] = ("DynST", "random"),
    **kwargs: Any,
) -> Tuple[Figure, np.ndarray]:
    r"""Two masks of the same network side by side, with their Jaccard overlap in the title.

    The Jaccard overlap is ``|kept_a ∩ kept_b| / |kept_a ∪ kept_b|`` (1 = same selection).

    Args:
        dataset (SpatioTemporalDataset, Data or Tensor): The network (see :func:`plot_sensor_map`).
        mask_a (SensorMask): Left panel.
        mask_b (SensorMask): Right panel; must cover the same ``N`` sensors.
        labels (tuple of str, optional): Names of the two masks.
            (default: :obj:`("DynST", "random")`)
        **kwargs: Passed on to :func:`plot_masks` / :func:`plot_sensor_map`.

    Returns:
        (Figure, ndarray of two Axes)
    """
    for name, m in (("mask_a", mask_a), ("mask_b", mask_b)):
        if not isinstance(m, SensorMask):
            raise TypeError(f"'{name}' must be a SensorMask, got {type(m).__name__}")
    if mask_a.num_nodes != mask_b.num_nodes:
        raise ValueError(f"'mask_a' covers {mask_a.num_nodes} sensors but 'mask_b' covers {mask_b.num_nodes}; "
                         "compare masks of the same network")
    labels = tuple(labels)
    if len(labels) != 2 or not all(isinstance(v, str) for v in labels):
        raise ValueError(f"'labels' must be two strings, got {labels!r}")
    jac = mask_a.jaccard(mask_b)
    both = int((mask_a.bool_mask & mask_b.bool_mask).sum())
    sup = (f"{labels[0]} vs {labels[1]}: Jaccard overlap of the kept sets = {jac:.2f} "
           f"({both} sensors kept by both)")
    return plot_masks(dataset, [mask_a, mask_b], labels=list(labels), suptitle=sup, **kwargs)


# ----------------------------------------------------------------------------------------
# accuracy vs sparsity
# ----------------------------------------------------------------------------------------
def load_tradeoff_rows(json_path_or_rows: Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]],
                                                Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Benchmark rows as a list of dicts.

    Args:
        json_path_or_rows (str, Path, list of dict or dict): A JSON file holding a list of
            rows or an object with the rows under ``"rows"``; or such a list / object.

    Returns:
        list of dict: New dicts (the caller's rows are not modified).

    Raises:
        FileNotFoundError: if the path does not exist (the message says how to produce it).
        ValueError, TypeError: if the content is not a list of rows.
    """
    obj: Any = json_path_or_rows
    if isinstance(obj, (str, os.PathLike)):
        p = Path(obj)
        if not p.is_file():
            raise FileNotFoundError(f"'json_path_or_rows': no such file {str(p)!r} (run "
                                    "`python benchmarks/sparsity_tradeoff.py --out FILE.json` to produce it)")
        with open(p) as fh:
            obj = json.load(fh)
    if isinstance(obj, Mapping):
        if "rows" not in obj:
            raise ValueError("'json_path_or_rows': a JSON object must hold the benchmark rows under the key "
                             f"'rows'; found keys {sorted(obj)[:10]}")
        obj = obj["rows"]
    try:
        rows = [dict(r) for r in obj]
    except (TypeError, ValueError):
        raise TypeError("'json_path_or_rows' must be a JSON path, a list of row dicts, or a dict with 'rows'") \
            from None
    return rows


def _row_label(row: Mapping[str, Any]) -> str:
    sel = str(row.get("selector", "?"))
    sched = row.get("schedule")
    if sched in (None, "", "-", "none", "None") or str(sched) in sel:
        return sel
    return f"{sel}-{sched}"


def plot_tradeoff(
    json_path_or_rows: Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]], Mapping[str, Any]],
    metric: str = "mae",
    *,
    dataset: Optional[str] = None,
    model: Optional[str] = None,
    target: Optional[str] = None,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
    figsize: Tuple[float, float] = (6.5, 4.5),
) -> Tuple[Figure, np.ndarray]:
    r"""Forecast error vs sparsity, one line per selector, mean ± standard deviation over seeds.

    Rows are those written by ``benchmarks/sparsity_tradeoff.py``: dicts with the keys
    ``dataset``, ``model``, ``selector``, ``schedule``, ``sparsity``, ``target``, ``seed``
    and the metric (``mae``, ...). A selector's label is ``selector`` or
    ``selector-schedule`` when a schedule is given. Rows of a ``"dense"`` selector, if
    present, are drawn as a dashed horizontal reference line. Rows for several
    (dataset, model, target) combinations give one panel each; the filters below select one.

    Args:
        json_path_or_rows (str, Path, list of dict or dict): A JSON file (a list of rows or
            ``{"rows": [...]}``) or the rows themselves.
        metric (str, optional): Row key to plot on the y axis. (default: :obj:`"mae"`)
        dataset (str, optional): Keep only rows of this dataset. (default: all)
        model (str, optional): Keep only rows of this model. (default: all)
        target (str, optional): Keep only rows of this output mode (``"all"``/``"kept"``).
            (default: all)
        ax (Axes, optional): Axes to draw on (only when a single panel results).
            (default: a new figure)
        title (str, optional): Title of a single panel. (default: ``"dataset, model, target=..."``)
        figsize (tuple, optional): Size of one panel in inches. (default: :obj:`(6.5, 4.5)`)

    Returns:
        (Figure, ndarray of Axes): one axes per (dataset, model, target) combination.

    Raises:
        ValueError: if no row is left after filtering, or rows lack the needed keys.
    """
    rows = load_tradeoff_rows(json_path_or_rows)
    if not isinstance(metric, str) or not metric:
        raise TypeError(f"'metric' must be a row key such as 'mae', got {metric!r}")
    need = ("selector", "sparsity", metric)
    for i, r in enumerate(rows):
        missing = [k for k in need if k not in r]
        if missing:
            raise ValueError(f"'json_path_or_rows': row {i} lacks the key(s) {missing} (has {sorted(r)})")
    sel = [r for r in rows
           if (dataset is None or r.get("dataset") == dataset)
           and (model is None or r.get("model") == model)
           and (target is None or r.get("target") == target)]
    if not sel:
        combos = sorted({(str(r.get("dataset")), str(r.get("model")), str(r.get("target"))) for r in rows})
        raise ValueError(f"no rows left after filtering dataset={dataset!r}, model={model!r}, target={target!r}; "
                         f"the rows hold (dataset, model, target) = {combos}")
    panels: Dict[Tuple[str, str, str], List[Dict[str, Any]]] = defaultdict(list)
    for r in sel:
        panels[(str(r.get("dataset", "?")), str(r.get("model", "?")), str(r.get("target", "?")))].append(r)
    keys = sorted(panels)

    import matplotlib.pyplot as plt

    if ax is not None:
        if len(keys) > 1:
            raise ValueError(f"'ax' given but the rows hold {len(keys)} (dataset, model, target) combinations "
                             f"{keys}; filter with dataset=/model=/target= or leave ax=None")
        fig, axes = ax.figure, np.array([ax])
    else:
        fig, axes_ = plt.subplots(1, len(keys), figsize=(figsize[0] * len(keys), figsize[1]), layout="constrained",
                                  squeeze=False)
        axes = axes_[0]
    any_seeds = False
    for a, key in zip(axes, keys):
        groups: Dict[str, Dict[float, List[float]]] = defaultdict(lambda: defaultdict(list))
        dense_vals: List[float] = []
        for r in panels[key]:
            v = r[metric]
            if v is None or not np.isfinite(float(v)):
                continue
            if str(r.get("selector")) == "dense":
                dense_vals.append(float(v))
                continue
            groups[_row_label(r)][float(r["sparsity"])].append(float(v))
        markers = "osD^vP*Xh<>"
        any_seeds = any_seeds or any(len(v) > 1 for g in groups.values() for v in g.values())
        for i, lab in enumerate(sorted(groups, key=lambda t: (not t.startswith("dynst"), t))):
            xs = sorted(groups[lab])
            mean = np.array([np.mean(groups[lab][x]) for x in xs])
            std = np.array([np.std(groups[lab][x]) if len(groups[lab][x]) > 1 else 0.0 for x in xs])
            nseeds = max(len(groups[lab][x]) for x in xs)
            a.errorbar(np.array(xs) * 100, mean, yerr=std, marker=markers[i % len(markers)], markersize=5,
                       capsize=3, linewidth=1.5 if lab.startswith("dynst") else 1.1,
                       label=f"{lab} ({nseeds} seeds)" if nseeds > 1 else lab)
        if dense_vals:
            a.axhline(float(np.mean(dense_vals)), color="black", linestyle="--", linewidth=1.0,
                      label="dense (all sensors)")
        a.set_xlabel("sparsity (% of sensors removed)")
        a.set_ylabel(f"test {metric.upper()}")
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
        ds_name, mdl, tgt = key
        a.set_title(title if (title is not None and len(keys) == 1) else f"{ds_name}, {mdl}, target={tgt}",
                    fontsize=10)
    if any_seeds:
        fig.text(0.01, 0.005, "error bars: ± 1 std over seeds", fontsize=7, color="#555555")
    return fig, axes
