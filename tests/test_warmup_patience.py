"""The dense warm-up's early stopping (``warmup_patience``) and a dense state shared between runs."""

from __future__ import annotations

import pytest
import torch

from dynst_pyg import DynSTConfig, DynSTTrainer, prepare
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.models import GraphWaveNet
from dynst_pyg.selection.mask import SensorMask


@pytest.fixture(scope="module")
def splits():
    return prepare(synthetic_road_network(num_nodes=24, num_steps=500, redundant_fraction=0.3, seed=1))


def _factory():
    return GraphWaveNet(24, profile="small", residual_channels=8, dilation_channels=8, skip_channels=16,
                        end_channels=16)


def _config(**kw):
    return DynSTConfig(**{**dict(sparsity=0.5, warmup_epochs=6, search_epochs=1, finetune_epochs=1, max_batches=3,
                                 batch_size=16, progress=False, seed=0, lr=0.05), **kw})


def test_warmup_patience_stops_early_and_keeps_the_best_validated_state(splits):
    torch.set_num_threads(1)
    t = DynSTTrainer(_factory, splits, _config(warmup_patience=1))
    state = t.warmup()
    vals = [h["val_mae"] for h in t.history if h["phase"] == "warmup"]
    best = min(vals)
    # it stopped one epoch after the last improvement (or ran out of epochs)
    assert len(vals) == 6 or (vals[-1] >= best and vals.index(best) == len(vals) - 2)
    model = t.full_model(state)
    assert t.evaluate_full(model, t.windows.val)["mae"] == pytest.approx(best, rel=1e-5)


def test_without_warmup_patience_every_epoch_runs(splits):
    t = DynSTTrainer(_factory, splits, _config(warmup_epochs=3))
    t.warmup()
    assert [h["phase"] for h in t.history] == ["warmup"] * 3


def test_warmup_patience_is_checked(splits):
    with pytest.raises(ValueError, match="warmup_patience"):
        DynSTTrainer(_factory, splits, _config(warmup_patience=0))


def test_a_loaded_dense_state_replaces_the_warmup(splits):
    a = DynSTTrainer(_factory, splits, _config(warmup_epochs=1))
    state = a.warmup()
    b = DynSTTrainer(_factory, splits, _config(warmup_epochs=5, target="kept"))
    b.load_dense_state(state)
    assert b.warmup() is not state and all(torch.equal(b.warmup()[k], v) for k, v in state.items())
    mask = SensorMask.from_bool(torch.arange(24) % 2 == 0)
    b.finetune(mask, start="dense", checkpoint=False)
    assert [h["phase"] for h in b.history] == ["finetune"]  # no warm-up epoch ran in b


def test_a_dense_state_of_another_network_is_refused(splits):
    other = prepare(synthetic_road_network(num_nodes=20, num_steps=500, seed=1))
    state = DynSTTrainer(lambda: GraphWaveNet(20, profile="small", residual_channels=8, dilation_channels=8,
                                              skip_channels=16, end_channels=16), other,
                         _config(warmup_epochs=1)).warmup()
    with pytest.raises(RuntimeError):
        DynSTTrainer(_factory, splits, _config()).load_dense_state(state)
