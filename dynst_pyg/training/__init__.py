"""Training runs: the epoch engine, distributed context, checkpoints, configuration, the three
phases, the DynST trainer, evaluation loops and reference forecasters."""

from .engine import PRECISIONS, DistContext, EpochEngine, LoopState, Phase, epoch_seed, init_distributed, resolve_device
from .checkpoint import CheckpointMismatchError, Checkpointer, run_fingerprint, tensor_checksum
from .config import DynSTConfig
from .references import REFERENCE_NAMES, TimeOfDayAverage, persistence_forecast, reference_metrics, shortfalls
from .evaluation import SpeedupMeasurement, evaluate_full, evaluate_served, measure_inference_speedup, measure_speedup
from .record import DynSTResult, RunRecord
from .context import RunContext
from .phases import dense_warmup, mask_search, sparse_finetune
from .trainer import DynSTTrainer
from ..models.served import ServedModel

__all__ = [
    "PRECISIONS", "DistContext", "EpochEngine", "LoopState", "Phase", "epoch_seed", "init_distributed",
    "resolve_device", "CheckpointMismatchError", "Checkpointer", "run_fingerprint", "tensor_checksum",
    "DynSTConfig", "persistence_forecast", "TimeOfDayAverage", "reference_metrics", "REFERENCE_NAMES", "shortfalls", "evaluate_full",
    "evaluate_served", "measure_inference_speedup", "SpeedupMeasurement", "measure_speedup", "DynSTResult", "RunRecord", "RunContext", "dense_warmup",
    "mask_search", "sparse_finetune", "DynSTTrainer", "ServedModel",
]
