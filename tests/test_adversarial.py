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


# ---------------------------------------------------------------- map: which network, which coordinates
def test_map_without_a_network_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["prune", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["map", "--mask", str(out / "mask.json"), "--out", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --data DIR or --dataset NAME" in err[0]
    assert not (tmp_path / "m.png").exists()


def test_map_of_a_mask_of_another_network_names_the_file(tmp_path, capsys):
    ids = [f"a{i}" for i in range(20)]
    SensorMask.from_bool(torch.arange(20) % 2 == 0, sensor_ids=ids).save(tmp_path / "other.json")
    assert main(["map", "--mask", str(tmp_path / "other.json"), "--dataset", "synthetic",
                 "--out", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other.json" in err[0] and "belongs to another network" in err[0]


def test_a_planar_network_is_drawn_in_metres_with_its_graph_named():
    import matplotlib

    matplotlib.use("Agg")
    from dynst_pyg.data import SpatioTemporalDataset
    from dynst_pyg.viz import plot_sensor_map
    from dynst_pyg.viz.geo import GID_SCALE

    xy = torch.tensor([[500000.0, 6200000.0], [501000.0, 6200000.0], [500000.0, 6201500.0], [502000.0, 6202000.0]])
    ds = SpatioTemporalDataset(torch.rand(50, 4), torch.tensor([[0, 1, 2], [1, 2, 3]]), pos=xy,
                               meta={"coordinates": "xy", "graph_source": "2 nearest neighbours (built from "
                                                                          "locations.csv)"})
    fig, ax = plot_sensor_map(ds, SensorMask.from_bool(torch.tensor([True, False, True, True])))
    assert ax.get_xlabel() == "x (m)" and ax.get_ylabel() == "y (m)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("graph edge: 2 nearest neighbours") for t in labels), labels
    bar = [a for a in ax.artists if a.get_gid() == GID_SCALE][0]
    assert 0.1 <= bar.scale_km <= 1.0  # a fifth of a 2 km wide map, in km
