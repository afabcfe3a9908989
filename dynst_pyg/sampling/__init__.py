"""Which training windows an epoch visits: the seeded PruningSampler and its policies (full data, random, InfoBatch, ST-Prune)."""

from .policies import PruningSampler, FullData, RandomPrune, InfoBatch, STPrune, iter_batches, epoch_skip_ratio, rank_normalize, window_complexity, window_nonstationarity, make_sampler, POLICIES

__all__ = [
    "PruningSampler",
    "FullData",
    "RandomPrune",
    "InfoBatch",
    "STPrune",
    "iter_batches",
    "epoch_skip_ratio",
    "rank_normalize",
    "window_complexity",
    "window_nonstationarity",
    "make_sampler",
    "POLICIES",
]
