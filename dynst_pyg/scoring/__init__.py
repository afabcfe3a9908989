"""What makes a sensor important: the learnable SensorGate, the paired-dropout marginal value and the reconstruction value."""

from .reconstruction import ReconstructionValue
from .gate import SensorGate
from .marginal import PairedDropoutScorer, greedy_independent_set

__all__ = [
    "ReconstructionValue",
    "SensorGate",
    "PairedDropoutScorer",
    "greedy_independent_set",
]
