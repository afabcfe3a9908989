"""What the finished phases of one run leave behind, and what a run returns."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

from torch import nn

from ..data.windows import ForecastSplits
from ..selection.mask import SensorMask

__all__ = ["RunRecord", "DynSTResult"]


@dataclass
class RunRecord:
    """The run so far: dense and searched states, the searched mask and the epoch history.

    Only its own methods change it; every checkpoint carries :meth:`state_dict`.

    Attributes:
        dense_state (dict, optional): Full-model state after the dense warm-up.
        search_state (dict, optional): Full-model state at the end of the mask search.
        search_mask (SensorMask, optional): The mask the search selected.
        search_key (str, optional): Which schedule the search state belongs to.
        history (list of dict): One record per finished epoch, every phase.
        samples_seen (int): Training windows visited so far.
    """

    dense_state: Optional[dict] = None
    search_state: Optional[dict] = None
    search_mask: Optional[SensorMask] = None
    search_key: Optional[str] = None
    history: list = field(default_factory=list)
    samples_seen: int = 0

    def log_epoch(self, rec: dict) -> None:
        """Appends one epoch record and counts its windows."""
        self.history.append(rec)
        self.samples_seen += rec["samples"]

    def finish_warmup(self, model: nn.Module) -> dict:
        """Keeps a copy of the warmed-up model's state and returns it."""
        self.dense_state = copy.deepcopy(model.state_dict())
        return self.dense_state

    def adopt_dense_state(self, state: dict) -> None:
        """Takes ``state`` (a full-model state trained elsewhere) as the dense warm-up's result."""
        self.dense_state = copy.deepcopy(state)

    def start_search(self, key: str) -> None:
        """Forgets any earlier search: the search of schedule ``key`` begins."""
        self.search_key, self.search_mask, self.search_state = key, None, None

    def finish_search(self, model: nn.Module, mask: SensorMask) -> None:
        """Keeps a copy of the searched model's state and its mask."""
        self.search_state = copy.deepcopy(model.state_dict())
        self.search_mask = mask

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "samples_seen": self.samples_seen, "dense_state": self.dense_state,
                "search_state": self.search_state,
                "search_mask": None if self.search_mask is None else self.search_mask.to_dict(),
                "search_key": self.search_key}

    def load_state_dict(self, ck: dict) -> None:
        """Takes what finished phases left in a checkpoint."""
        self.dense_state = ck["dense_state"]
        self.search_state = ck["search_state"]
        self.search_mask = None if ck["search_mask"] is None else SensorMask.from_dict(ck["search_mask"])
        self.search_key = ck["search_key"]
        self.history, self.samples_seen = list(ck["history"]), int(ck["samples_seen"])


@dataclass
class DynSTResult:
    """What a run returns: the mask, the model as served on ``K`` nodes, history and metrics."""

    mask: SensorMask
    model: nn.Module
    history: list
    val_metrics: dict
    test_metrics: dict
    config: dict
    train_seconds: float = 0.0
    samples_seen: int = 0
    sub_splits: Optional[ForecastSplits] = None

    def summary(self) -> str:
        """One line: the selection, the target and the test MAE per horizon."""
        m = self.test_metrics
        hs = ", ".join(f"{k[4:]} {v:.3f}" for k, v in m.items() if k.startswith("mae_h"))
        return (f"{self.mask.method}: kept {self.mask.num_kept}/{self.mask.num_nodes} "
                f"(sparsity {self.mask.sparsity:.2f}), target={self.config['target']}: "
                f"test MAE {m['mae']:.3f} ({hs})")
