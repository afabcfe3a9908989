"""Pictures of a selection: sensor maps and trade-off plots."""

from .maps import plot_sensor_map, plot_region_map, plot_masks, plot_mask_comparison, plot_tradeoff, load_tradeoff_rows, EARTH_RADIUS_KM, km_per_degree

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
