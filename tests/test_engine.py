"""The epoch engine: device resolution, the progress grid, early stopping, precision, quiet logs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dynst_pyg.training.engine import DistContext, EpochEngine, LoopState, Phase, epoch_seed, resolve_device
from dynst_pyg.sampling.policies import RandomPrune


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="`device`"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:1")


def test_epoch_seeds_differ_by_phase_and_epoch():
    seeds = {epoch_seed(0, p, e) for p in ("warmup", "search", "finetune", "train") for e in range(5)}
    assert len(seeds) == 20


def _linear_phase(name="train", epochs=3, n=40, **kw):
    torch.manual_seed(0)
    x = torch.randn(n, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loss(module, idx):
        return (module(x[idx]).squeeze(-1) - y[idx]).abs()

    return Phase(name, model, opt, epochs, n, loss, **kw), model


def test_progress_grid_covers_every_step_once_even_when_a_sampler_skips():
    """A schedule keyed on the step sees every grid step 0 .. total-1 once, in order (issue: pruned
    epochs ran fewer steps, so late schedule rounds never fired)."""
    calls = []
    sampler = RandomPrune(40, 4, prune_ratio=0.5, seed=0, num_replicas=1, rank=0)
    phase, _ = _linear_phase(epochs=4, sampler=sampler, after_step=lambda a, b, total: calls.append((a, b, total)))
    engine = EpochEngine(batch_size=8, progress=False, dist=DistContext())
    engine.run(phase)
    total = calls[0][2]
    assert total == 4 * 5
    covered = [t for a, b, _ in calls for t in range(a, b + 1)]
    assert covered == list(range(total))
    assert len(calls) < total  # the pruned epochs ran fewer steps than the grid has


def test_early_stopping_restores_the_best_state():
    vals = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    states = []
    phase, model = _linear_phase(epochs=6, patience=2, validate=lambda: {"mae": next(vals)},
                                 on_epoch_end=lambda rec, st: states.append(
                                     {k: v.clone() for k, v in model.state_dict().items()}))
    st = EpochEngine(batch_size=8, progress=False, dist=DistContext()).run(phase, LoopState())
    assert st.next_epoch == 4 and st.best == 2.0 and st.bad == 2      # epochs 3 and 4 did not improve
    assert all(torch.equal(model.state_dict()[k], states[1][k]) for k in states[1])


@pytest.mark.parametrize("precision", ["bf16", "16"])
def test_mixed_precision_trains(precision):
    phase, model = _linear_phase(epochs=5, validate=lambda: {"mae": 0.0})
    before = model.weight.detach().clone()
    EpochEngine(batch_size=8, precision=precision, progress=False, dist=DistContext()).run(phase)
    assert torch.isfinite(model.weight).all() and not torch.equal(before, model.weight)


def test_bad_precision_and_batch():
    with pytest.raises(ValueError, match="`precision` must be one of 32, bf16, 16"):
        EpochEngine(precision="8")
    with pytest.raises(ValueError, match="at least the number of processes"):
        EpochEngine(batch_size=1, dist=DistContext(0, 2))
    phase, _ = _linear_phase(patience=1)
    with pytest.raises(ValueError, match="needs `validate`"):
        EpochEngine(progress=False, dist=DistContext()).run(phase)


def test_no_carriage_returns_in_a_log(capsys):
    """stderr that is not a terminal gets one line per epoch, no bar updates."""
    phase, _ = _linear_phase(epochs=2, validate=lambda: {"mae": 1.0})
    EpochEngine(batch_size=4, progress=True, dist=DistContext()).run(phase)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("[dynst] train epoch") == 2


def test_shards_of_a_global_batch():
    two = EpochEngine(batch_size=4, dist=DistContext(1, 2))
    assert two.shard(torch.tensor([5, 6, 7, 8])).tolist() == [6, 8]
    assert EpochEngine(batch_size=4, dist=DistContext()).steps_per_epoch(10) == math.ceil(10 / 4)
    assert EpochEngine(batch_size=4, max_batches=2, dist=DistContext()).steps_per_epoch(10) == 2
