"""Series in memory: the dataset record, windows and splits, time features, the scaler, the missing-reading mask and fill, resampling."""

from .dataset import SpatioTemporalDataset
from .scaler import StandardScaler
from .missing import forward_fill, check_observed
from .windows import SPLIT_RATIOS, num_windows, WindowDataset, ForecastSplits, time_feature_channels, prepare
from .resample import resample_mean

__all__ = [
    "SpatioTemporalDataset",
    "StandardScaler",
    "forward_fill",
    "check_observed",
    "SPLIT_RATIOS",
    "num_windows",
    "WindowDataset",
    "ForecastSplits",
    "time_feature_channels",
    "prepare",
    "resample_mean",
]
