"""Classical sensor selectors (random, degree, PageRank, betweenness, pivoted QR, ridge backward elimination), each returning a SensorMask."""

from .elimination import elimination_order, training_moments
from .selectors import Selector, NotFittedError, RandomSelector, DegreeSelector, PageRankSelector, BetweennessSelector, QRSelector, BackwardEliminationSelector, SELECTORS, make_selector, select_sensors, training_snapshots

__all__ = [
    "Selector",
    "NotFittedError",
    "RandomSelector",
    "DegreeSelector",
    "PageRankSelector",
    "BetweennessSelector",
    "QRSelector",
    "BackwardEliminationSelector",
    "SELECTORS",
    "make_selector",
    "select_sensors",
    "training_snapshots",
    "elimination_order",
    "training_moments",
]
