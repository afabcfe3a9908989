"""What makes a sensor important: the learnable SensorGate, the paired-dropout marginal value and the reconstruction value."""

from .reconstruction import ReconstructionValue, elimination_order, graph_clusters, training_moments
from .gate import SensorGate
from .marginal import PairedDropoutScorer, greedy_independent_set

__all__ = [
    "ReconstructionValue",
    "elimination_order",
    "graph_clusters",
    "training_moments",
    "SensorGate",
    "PairedDropoutScorer",
    "greedy_independent_set",
]
