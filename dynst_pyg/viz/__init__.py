"""Pictures of a selection: sensor maps, masks side by side and accuracy-vs-sparsity trade-off plots."""

from .compare import plot_mask_comparison, plot_masks
from .geo import EARTH_RADIUS_KM, km_per_degree
from .maps import plot_region_map, plot_sensor_map
from .tradeoff import load_tradeoff_rows, plot_tradeoff

__all__ = [
    "plot_sensor_map",
    "plot_region_map",
    "plot_masks",
    "plot_mask_comparison",
    "plot_tradeoff",
    "load_tradeoff_rows",
    "EARTH_RADIUS_KM",
    "km_per_degree",
]
