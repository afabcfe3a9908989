"""The dynst-pyg command: every subcommand end to end on tiny settings, and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dynst_pyg.cli.main import build_parser, main

TINY = ["--nodes", "20", "--steps", "400", "--epochs", "1", "--warmup-epochs", "1", "--search-epochs", "1",
        "--max-batches", "2", "--batch-size", "16", "--quiet"]


def test_datasets_lists_every_dataset(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("synthetic", "los-loop", "metr-la", "pems-bay", "pems04", "pems08"):
        assert name in out
    assert "checksums" in out


@pytest.mark.parametrize("cmd", ["prune", "evaluate", "map", "datasets"])
def test_help_shows_defaults(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: dynst-pyg " + cmd in out
    if cmd == "prune":
        assert "(0.5 unless" in out and "(default: dynst-iterative)" in out
        assert "--costs FILE" in out and "--min-per-region" in out


def test_prune_writes_run_and_evaluate_reproduces_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["prune", *TINY, "--selector", "dynst-oneshot", "--sparsity", "0.4", "--out", str(out)]) == 0
    for f in ("mask.json", "model.pt", "report.md", "metrics.json", "map.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    report = (out / "report.md").read_text()
    assert "persistence" in report and "dense" in report and "speedup" in report
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_kept"] == 12 and m["spec"]["selector"] == "dynst-oneshot"
    # the synthetic series has timestamps, so the time inputs are on by default, and the run records it
    assert m["spec"]["time_features"] is True
    assert "Inputs: the readings plus time of day and day of week." in report
    mask = json.loads((out / "mask.json").read_text())
    assert len(mask["kept_sensor_ids"]) == 12
    capsys.readouterr()
    assert main(["evaluate", "--run", str(out)]) == 0
    line = capsys.readouterr().out
    assert f"mae {m['test']['mae']:.3f}" in line
    png = tmp_path / "m.png"
    assert main(["map", "--mask", str(out / "mask.json"), "--dataset", "synthetic", "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_prune_with_a_baseline_and_target_kept(tmp_path):
    out = tmp_path / "qr"
    assert main(["prune", *TINY, "--selector", "qr", "--target", "kept", "--no-dense", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["spec"]["target"] == "kept" and m["num_kept"] == 10


@pytest.mark.parametrize("args, msg", [
    (["prune", "--dataset", "atlantis"], "unknown dataset"),
    (["prune", "--sparsity", "1.5"], "--sparsity must lie in [0, 1)"),
    (["evaluate", "--run", "/nonexistent/run"], "not found"),
    (["prune", "--dataset", "metr-la", "--root", "/nonexistent"], "metr-la.h5"),
    (["prune", "--finetune-lr", "-1"], "--finetune-lr must be > 0"),
])
def test_errors_are_one_line_and_nonzero(args, msg, tmp_path):
    r = subprocess.run([sys.executable, "-m", "dynst_pyg", *args, "--out", str(tmp_path / "x")]
                       if args[0] == "prune" else [sys.executable, "-m", "dynst_pyg", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and msg in err[0], r.stderr


def test_parser_rejects_unknown_selector():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prune", "--selector", "oracle"])


def test_prune_never_reuses_a_checkpoint_of_another_run(tmp_path, capsys):
    """Same --out, another --sparsity: refused with the differing field, then --restart starts afresh."""
    out = tmp_path / "R"
    base = ["prune", *TINY, "--selector", "dynst-oneshot", "--no-dense", "--out", str(out)]
    assert main([*base, "--sparsity", "0.5"]) == 0
    assert json.loads((out / "metrics.json").read_text())["num_kept"] == 10
    capsys.readouterr()
    assert main([*base, "--sparsity", "0.8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.sparsity: 0.5 -> 0.8" in err[0] and "--restart" in err[0]
    assert json.loads((out / "metrics.json").read_text())["num_kept"] == 10      # nothing was overwritten
    assert main([*base, "--sparsity", "0.8", "--restart"]) == 0
    assert json.loads((out / "metrics.json").read_text())["num_kept"] == 4


def test_finetune_flags_reach_the_run_and_key_its_checkpoint(tmp_path, capsys):
    """--finetune-lr and --finetune-validate-start are recorded, and a checkpoint of another value is refused."""
    out = tmp_path / "F"
    base = ["prune", *TINY, "--selector", "qr", "--no-dense", "--out", str(out)]
    assert main([*base, "--finetune-lr", "1e-4", "--finetune-validate-start"]) == 0
    spec = json.loads((out / "metrics.json").read_text())["spec"]
    assert spec["finetune_lr"] == 1e-4 and spec["finetune_validate_start"] is True
    capsys.readouterr()
    assert main([*base, "--finetune-lr", "2e-4", "--finetune-validate-start"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.finetune_lr: 0.0001 -> 0.0002" in err[0]
    assert main([*base]) == 2
    assert "config.finetune_validate_start: True -> False" in capsys.readouterr().err


def test_bad_output_and_model_files_are_one_line_errors(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["prune", *TINY, "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file; expected a directory" in err[0]
    run = tmp_path / "run"
    run.mkdir()
    (run / "mask.json").write_text(json.dumps({"num_nodes": 3}))
    (run / "model.pt").write_bytes(b"garbage")
    assert main(["evaluate", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.pt is not a model file written by `dynst-pyg prune`" in err[0]


def test_module_entry_point_and_nproc_flag():
    r = subprocess.run([sys.executable, "-m", "dynst_pyg", "prune", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "--nproc" in r.stdout and "--device" in r.stdout and "--precision" in r.stdout


@pytest.mark.slow
def test_prune_with_two_processes(tmp_path):
    """`--nproc 2` re-launches through torch.distributed.run (gloo on CPU); rank 0 alone writes."""
    out = tmp_path / "ddp"
    r = subprocess.run([sys.executable, "-m", "dynst_pyg", "prune", *TINY, "--batch-size", "8", "--selector",
                        "dynst-oneshot", "--no-dense", "--device", "cpu", "--nproc", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("wrote ") == 1 and "2 process(es) on cpu" in r.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["processes"] == 2 and m["num_kept"] == 10


def test_prune_on_your_own_data_folder(tmp_path, capsys):
    """`--data DIR` with the example folder of the README: readings.csv, edges.csv, locations.csv, dataset.json."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "datasets" / "example"
    assert main(["datasets", "--data", str(example)]) == 0
    assert "observed share" in capsys.readouterr().out
    out = tmp_path / "own"
    assert main(["prune", "--data", str(example), "--epochs", "1", "--warmup-epochs", "1", "--search-epochs", "1",
                 "--max-batches", "2", "--batch-size", "8", "--quiet", "--no-dense", "--selector", "dynst-oneshot",
                 "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["spec"]["data"] == str(example) and m["num_kept"] == m["num_nodes"] // 2
    png = tmp_path / "own.png"
    assert main(["map", "--mask", str(out / "mask.json"), "--data", str(example), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000
    capsys.readouterr()
    assert main(["prune", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


@pytest.mark.parametrize("selector", ["qr", "dynst-oneshot"])
def test_prune_under_costs_and_regions(tmp_path, selector):
    """--costs/--cost-budget/--regions/--min-per-region reach the selector; report.md states them."""
    costs, regions = tmp_path / "costs.csv", tmp_path / "regions.csv"
    costs.write_text("sensor_id,cost\n" + "".join(f"syn{i:05d},{1 + (i % 3)}\n" for i in range(20)))
    regions.write_text("sensor_id,region\n" + "".join(f"syn{i:05d},{'north' if i < 8 else 'south'}\n" for i in range(20)))
    out = tmp_path / selector
    assert main(["prune", *TINY, "--selector", selector, "--no-dense", "--costs", str(costs), "--cost-budget", "20",
                 "--regions", str(regions), "--min-per-region", "3", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "## Constraints" in report and "satisfied: yes" in report and "(budget 20)" in report
    mask = json.loads((out / "mask.json").read_text())
    kept = [int(i[3:]) for i in mask["kept_sensor_ids"]]
    assert sum(1 + (i % 3) for i in kept) <= 20
    assert sum(i < 8 for i in kept) >= 3 and sum(i >= 8 for i in kept) >= 3
    assert (out / "map.png").stat().st_size > 1000


def test_infeasible_constraints_fail_before_training(tmp_path, capsys):
    regions = tmp_path / "regions.csv"
    regions.write_text("sensor_id,region\n" + "".join(f"syn{i:05d},{'tiny' if i == 0 else 'big'}\n" for i in range(20)))
    assert main(["prune", *TINY, "--regions", str(regions), "--min-per-region", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "min_per_region=2 is impossible in region 'tiny' with 1 sensor" in err[0]
    assert not (tmp_path / "x" / "checkpoint").exists()
