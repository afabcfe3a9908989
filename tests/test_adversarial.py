"""Regression cases from the reliability issue (bad or adversarial input as a user would give it).

Other cases of the same issue live next to their code: one run per folder, atomic files and the
manifest in ``test_run_folder.py``; a killed or frozen DDP worker in ``test_ddp_failure.py``.
"""

from __future__ import annotations

import pytest
import torch

from dynst_pyg import DynSTConfig, DynSTTrainer, prepare
from dynst_pyg.cli.main import main
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.models import GraphWaveNet
from dynst_pyg.selection import SensorMask

TINY = ["--nodes", "20", "--steps", "300", "--epochs", "1", "--warmup-epochs", "1", "--search-epochs", "1",
        "--max-batches", "2", "--batch-size", "16", "--quiet", "--no-dense"]


@pytest.mark.parametrize("selector", ["dynst-oneshot", "degree"])
def test_protected_file_on_the_cli_keeps_those_sensors(tmp_path, selector):
    (tmp_path / "keep.txt").write_text("sensor_id\nsyn00003\nsyn00017\n")
    out = tmp_path / "run"
    assert main(["prune", *TINY, "--selector", selector, "--sparsity", "0.8", "--protected",
                 str(tmp_path / "keep.txt"), "--out", str(out)]) == 0
    mask = SensorMask.load(out / "mask.json")
    assert {3, 17} <= set(mask.keep.tolist())


def test_protected_file_errors_name_the_file_and_row(tmp_path, capsys):
    (tmp_path / "bad.txt").write_text("3\n4,5\n")
    assert main(["prune", *TINY, "--protected", str(tmp_path / "bad.txt"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.txt, row 2" in err[0]
    (tmp_path / "unknown.txt").write_text("nope\n")
    assert main(["prune", *TINY, "--protected", str(tmp_path / "unknown.txt"), "--out", str(tmp_path / "r")]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_sparsity_that_removes_no_sensor_is_refused():
    with pytest.raises(ValueError, match=r"`sparsity` 0.5 of 1 sensor removes none \(it keeps 1 of 1\)"):
        DynSTConfig(sparsity=0.5).validate(1)
    with pytest.raises(ValueError, match="removes none"):
        DynSTConfig(sparsity=0.01).validate(20)
    DynSTConfig(sparsity=0.0).validate(1)  # asking for no pruning is allowed
    DynSTConfig(sparsity=0.5).validate(2)


def test_a_trainer_with_a_sparsity_that_removes_nothing_stops_before_training():
    sp = prepare(synthetic_road_network(num_nodes=20, num_steps=300, seed=0))
    with pytest.raises(ValueError, match="removes none"):
        DynSTTrainer(lambda: GraphWaveNet(20, profile="small"), sp, DynSTConfig(sparsity=0.02, progress=False))
