"""The command line: run specifications, ``prune`` runs and their folders, reading runs back, and the parser."""

from .run_folder import RunFolderBusy, RunFolderLock, atomic_write, check_manifest, write_manifest
from .spec import SELECTOR_CHOICES, RunSpec, backbone_factory, load_run_dataset, load_splits, run_config
from .pipeline import run_prune
from .runs import LoadedRun, evaluate_run, load_run, rebuild_served_model
from .serve import Forecaster
from .main import COMMANDS, INPUT_ERRORS, build_parser, main

__all__ = [
    "RunFolderBusy", "RunFolderLock", "atomic_write", "check_manifest", "write_manifest", "SELECTOR_CHOICES", "RunSpec", "backbone_factory", "load_run_dataset", "load_splits", "run_config", "run_prune",
    "LoadedRun", "Forecaster", "evaluate_run", "load_run", "rebuild_served_model", "COMMANDS", "INPUT_ERRORS", "build_parser",
    "main",
]
