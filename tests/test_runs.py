"""A run folder read back: model.pt holds tensors and JSON only, and evaluate checks what it evaluates."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from dynst_pyg.cli.main import main
from dynst_pyg.cli.runs import MODEL_FORMAT, load_run, read_run_model

EXAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "example"
TINY = ["--epochs", "1", "--warmup-epochs", "1", "--search-epochs", "1", "--max-batches", "2", "--batch-size", "8",
        "--quiet", "--no-dense", "--selector", "dynst-oneshot"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run on a copy of the example folder, given to prune as a relative path."""
    base = tmp_path_factory.mktemp("runs")
    shutil.copytree(EXAMPLE, base / "own")
    here = os.getcwd()
    os.chdir(base)
    try:
        assert main(["prune", "--data", "own", *TINY, "--out", "run"]) == 0
    finally:
        os.chdir(here)
    return base / "run"


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_model_file_is_tensors_and_json_with_absolute_data_path(run):
    ck = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    assert set(ck) == {"meta", "state_dict", "scaler"}
    meta = json.loads(ck["meta"])
    assert meta["format"] == MODEL_FORMAT
    assert meta["spec"]["data"] == str((run.parent / "own").resolve())
    assert len(meta["data_checksum"]) == 16
    assert meta["mask"] == json.loads((run / "mask.json").read_text())
    assert all(isinstance(v, torch.Tensor) for v in ck["state_dict"].values())


class _Marker:
    """Unpickling this runs ``open(path, 'w')``: the marker file appears if the loader runs code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_crafted_pickle_is_refused_and_its_code_never_runs(run, tmp_path, capsys):
    d = _copy(run, tmp_path)
    marker = tmp_path / "pwned"
    meta, state, _ = read_run_model(d / "model.pt")
    torch.save({"meta": json.dumps(meta), "state_dict": state, "scaler": {"mean": _Marker(str(marker))}},
               d / "model.pt")
    capsys.readouterr()
    assert main(["evaluate", "--run", str(d)]) == 2
    line = _one_line_error(capsys)
    assert "model.pt is not a model file written by `dynst-pyg prune`" in line
    assert not marker.exists()


def test_a_swapped_mask_is_refused(run, tmp_path, capsys):
    d = _copy(run, tmp_path)
    m = json.loads((d / "mask.json").read_text())
    kept, n = set(m["keep"]), m["num_nodes"]
    other = [i for i in range(n) if i not in kept][:1] + sorted(kept)[1:]  # same size, one sensor swapped
    from dynst_pyg.selection import SensorMask

    SensorMask.from_indices(torch.tensor(sorted(other)), n, sensor_ids=m["sensor_ids"]).save(d / "mask.json")
    capsys.readouterr()
    assert main(["evaluate", "--run", str(d)]) == 2
    assert "mask.json differs from the mask the model was trained on" in _one_line_error(capsys)


def test_a_mask_file_not_in_the_manifest_is_refused(run, tmp_path, capsys):
    d = _copy(run, tmp_path)
    m = json.loads((d / "mask.json").read_text())
    (d / "mask.json").write_text(json.dumps(m))  # same mask, other bytes than run.json recorded
    capsys.readouterr()
    assert main(["evaluate", "--run", str(d)]) == 2
    assert "mask.json is not the file run" in _one_line_error(capsys)


def test_other_data_are_refused_unless_allowed(run, capsys):
    readings = run.parent / "own" / "readings.csv"
    original = readings.read_text()
    try:
        lines = original.splitlines()
        cells = lines[5].split(",")
        cells[1] = str(float(cells[1]) + 7.0)
        readings.write_text("\n".join(lines[:5] + [",".join(cells)] + lines[6:]) + "\n")
        capsys.readouterr()
        assert main(["evaluate", "--run", str(run)]) == 2
        line = _one_line_error(capsys)
        assert "differ from the data run" in line and "--allow-other-data" in line
        assert main(["evaluate", "--run", str(run), "--allow-other-data"]) == 0
        out = capsys.readouterr().out
        assert "test metrics of" in out and "differ from the data run" in out
        assert not load_run(run, allow_other_data=True).data_matches
    finally:
        readings.write_text(original)
    assert load_run(run).data_matches


def test_evaluate_works_from_another_working_directory(run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    mae = json.loads((run / "metrics.json").read_text())["test"]["mae"]
    assert f"mae {mae:.3f}" in out and "differ" not in out
