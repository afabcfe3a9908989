"""The record of which sensors stay (SensorMask), the constraints a selection obeys, the rules every selector follows, and the pruning schedules."""

from .constraints import SelectionConstraints, CONSTRAINTS_FORMAT_VERSION
from .rules import GreedySelection, constrained_top_k, merge_protected, num_to_keep, top_k_mask
from .mask import SensorMask, MASK_FORMAT_VERSION
from .schedules import Schedule, OneShot, Iterative, DropRegrow, make_schedule

__all__ = [
    "SelectionConstraints",
    "GreedySelection",
    "constrained_top_k",
    "merge_protected",
    "top_k_mask",
    "CONSTRAINTS_FORMAT_VERSION",
    "SensorMask",
    "MASK_FORMAT_VERSION",
    "num_to_keep",
    "Schedule",
    "OneShot",
    "Iterative",
    "DropRegrow",
    "make_schedule",
]
