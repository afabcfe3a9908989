"""Checkpoints belong to their run: fingerprints, refusal with the differing fields, atomic saves."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dynst_pyg.data import prepare
from dynst_pyg.training.checkpoint import CheckpointMismatchError, Checkpointer, run_fingerprint, tensor_checksum
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.training import DynSTConfig


@pytest.fixture(scope="module")
def splits():
    return prepare(synthetic_road_network(num_nodes=20, num_steps=300, seed=0))


def test_fingerprint_names_what_determines_the_result(splits):
    fp = run_fingerprint(DynSTConfig(sparsity=0.5), splits, nn.Linear(2, 3))
    assert fp["config.sparsity"] == 0.5 and fp["dataset.shape"] == [300, 20, 1]
    assert fp["backbone.class"] == "Linear" and fp["backbone.parameters"] == 9
    assert "config.progress" not in fp and "config.checkpoint_dir" not in fp and "config.device" not in fp
    assert run_fingerprint(DynSTConfig(sparsity=0.5, progress=False, device="cpu"), splits, nn.Linear(2, 3)) == fp
    other = splits.reprepare(splits.dataset.replace(series=splits.dataset.series * 1.01))
    assert run_fingerprint(DynSTConfig(), other, nn.Linear(2, 3))["dataset.checksum"] != fp["dataset.checksum"]
    assert tensor_checksum(torch.zeros(3)) != tensor_checksum(torch.zeros(3, dtype=torch.float64))


def test_a_checkpoint_of_another_run_is_refused(tmp_path, splits):
    a = Checkpointer(tmp_path, run_fingerprint(DynSTConfig(sparsity=0.5), splits, nn.Linear(2, 3)))
    a.save({"phase": "warmup", "x": 1})
    assert a.load()["x"] == 1
    b = Checkpointer(tmp_path, run_fingerprint(DynSTConfig(sparsity=0.8), splits, nn.Linear(2, 3)))
    with pytest.raises(CheckpointMismatchError, match=r"config.sparsity: 0.5 -> 0.8.*--restart"):
        b.load()
    c = Checkpointer(tmp_path, run_fingerprint(DynSTConfig(sparsity=0.5), splits, nn.Linear(2, 4)))
    with pytest.raises(CheckpointMismatchError, match="backbone"):
        c.load()
    b.clear()
    assert not tmp_path.exists() and b.load() is None


def test_unreadable_and_old_checkpoints_fail_clearly(tmp_path):
    ck = Checkpointer(tmp_path, {"a": 1})
    tmp_path.mkdir(exist_ok=True)
    ck.path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="cannot be read"):
        ck.load()
    torch.save({"phase": "warmup"}, ck.path)
    with pytest.raises(CheckpointMismatchError, match="older dynst_pyg"):
        ck.load()
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        Checkpointer(f)


def test_load_into_names_the_part(tmp_path):
    ck = Checkpointer(tmp_path, {})
    with pytest.raises(CheckpointMismatchError, match="this run's backbone"):
        ck.load_into(nn.Linear(2, 3), nn.Linear(3, 3).state_dict(), "backbone")
