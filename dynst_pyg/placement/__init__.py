"""Classical sensor selectors (random, degree, PageRank, betweenness, pivoted QR), each returning a SensorMask."""

from .selectors import Selector, NotFittedError, RandomSelector, DegreeSelector, PageRankSelector, BetweennessSelector, QRSelector, SELECTORS, make_selector, select_sensors, training_snapshots

__all__ = [
    "Selector",
    "NotFittedError",
    "RandomSelector",
    "DegreeSelector",
    "PageRankSelector",
    "BetweennessSelector",
    "QRSelector",
    "SELECTORS",
    "make_selector",
    "select_sensors",
    "training_snapshots",
]
