"""Map geometry without tiles: kilometres per degree, the aspect ratio, the scale bar and the figure size.

Sensors are placed at their (lon, lat) coordinates on axes whose aspect ratio is
``1 / cos(mean latitude)``, so one kilometre is (approximately) as long east-west as
north-south, and a scale bar in kilometres is computed with the **equirectangular
approximation** (``dx = R * dlon * cos(lat0)``, ``R = 6371 km``), which is accurate to
well under 1 % over a city-sized network.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np
from matplotlib.axes import Axes

__all__ = ["EARTH_RADIUS_KM", "km_per_degree"]

#: Mean Earth radius used by the equirectangular approximation.
EARTH_RADIUS_KM = 6371.0

#: gid of the scale bar drawn by :func:`~dynst_pyg.viz.plot_sensor_map`.
GID_SCALE = "dynst-scalebar"


def km_per_degree(lat_deg: float) -> Tuple[float, float]:
    """Kilometres per degree of (longitude, latitude) at latitude ``lat_deg`` (equirectangular)."""
    k = math.pi / 180.0 * EARTH_RADIUS_KM
    return k * math.cos(math.radians(lat_deg)), k


def _check_geographic(pos: np.ndarray) -> None:
    lon, lat = pos[:, 0], pos[:, 1]
    if np.abs(lat).max() > 90 or np.abs(lon).max() > 360:
        raise ValueError("'pos' does not look like (lon, lat) degrees (|lat| must be <= 90, |lon| <= 360; got lat in "
                         f"[{lat.min():.4g}, {lat.max():.4g}], lon in [{lon.min():.4g}, {lon.max():.4g}]); check "
                         "the column order or pass geographic=False for planar coordinates")


def _aspect(pos: np.ndarray, geographic: bool) -> float:
    """Axes aspect ratio: ``1 / cos(mean latitude)`` for (lon, lat) degrees, 1 for planar coordinates."""
    if not geographic:
        return 1.0
    return 1.0 / max(math.cos(math.radians(float(np.mean(pos[:, 1])))), 1e-3)


def _auto_figsize(dx: float, dy: float, aspect: float, width: float) -> Tuple[float, float]:
    """Figure size whose map area matches the data's (aspect-corrected) shape."""
    ratio = dy * 1.14 * aspect / (dx * 1.08)
    map_w = width - 2.4  # y label, tick labels, colour bar
    h = map_w * ratio + 1.9  # title, x label, legend
    return (width, float(min(max(h, 3.8), 11.0)))


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
    else:  # planar coordinates in metres
        length = _nice_length(width / 5.0)
        label = _format_km(length / 1000.0)
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
    anchored.scale_km = float(length_km) if geographic else float(length) / 1000.0  # type: ignore[attr-defined]
    ax.add_artist(anchored)
