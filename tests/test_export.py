"""`dynst-pyg export`: the program runs in a Python that never imports dynst_pyg and matches the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dynst_pyg.cli import Forecaster
from dynst_pyg.cli.export import export_served
from dynst_pyg.cli.main import main
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.models import DCRNN, ServedModel, make_backbone
from dynst_pyg.scoring import SensorGate
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.transforms import DynSTMask

QUICK = ["--nodes", "20", "--steps", "400", "--epochs", "1", "--warmup-epochs", "0", "--max-batches", "1",
         "--batch-size", "16", "--quiet", "--no-dense", "--selector", "random"]

#: Runs in a fresh interpreter: loads the program with torch alone and writes its original-scale forecast.
FRESH = r"""
import json, sys
import torch
d = sys.argv[1]
c = json.load(open(d + "/contract.json"))
x = torch.load(d + "/x.pt", weights_only=True)
if len(sys.argv) > 2 and sys.argv[2] == "aoti":
    m = torch._inductor.aoti_load_package(d + "/" + c["aoti_program"])
elif c["kind"] == "export":
    m = torch.export.load(d + "/" + c["program"]).module()
else:
    m = torch.jit.load(d + "/" + c["program"])
with torch.no_grad():
    out = m(x)
mean, std = torch.tensor(c["scaler"]["mean"]), torch.tensor(c["scaler"]["std"])
torch.save(out[..., 0] * std[0] + mean[0], d + "/y.pt")
assert "dynst_pyg" not in sys.modules and "torch_geometric" not in sys.modules, sorted(sys.modules)
print("fresh ok", tuple(out.shape))
"""


def _fresh(d: Path, *how: str) -> torch.Tensor:
    r = subprocess.run([sys.executable, "-c", FRESH, str(d), *how], capture_output=True, text=True, timeout=300,
                       cwd=d)
    assert r.returncode == 0 and "fresh ok" in r.stdout, r.stderr[-2000:]
    return torch.load(d / "y.pt", weights_only=True)


def test_exported_run_with_a_lift_head_matches_the_forecaster(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["prune", *QUICK, "--backbone", "gwnet", "--target", "all", "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "exported"
    assert main(["export", "--run", str(run), "--out", str(out)]) == 0
    assert "contract.json" in capsys.readouterr().out
    c = json.loads((out / "contract.json").read_text())
    assert (c["kind"], c["program"]) == ("export", "model.pt2"), c["export_fallback_reason"]
    assert c["graph"] == "supports baked in"
    fc = Forecaster.load(run, device="cpu")
    assert c["kept_sensor_ids"] == fc.kept_ids and c["output_sensor_ids"] == fc.sensor_ids
    assert (c["t_in"], c["t_out"], c["interval_minutes"], c["target"]) == (12, 12, fc.interval_minutes, "all")
    x = fc.run.sub.test.batch(torch.arange(3))[0].cpu()
    torch.save(x, out / "x.pt")
    want = fc.forecast_tensor(x)
    got = _fresh(out)
    assert got.shape == want.shape == (3, 12, 20)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backbone, in_features", [("gwnet", 1), ("dcrnn", 1), ("stid", 3)])
def test_exported_backbones_run_without_the_library(tmp_path, backbone, in_features):
    """Each backbone on a sub-graph (target="kept"), written as `export` writes it, in a fresh process."""
    torch.manual_seed(0)
    ds = synthetic_road_network(num_nodes=20, num_steps=50, seed=0)
    keep = torch.arange(0, 20, 2)
    sub = DynSTMask(SensorMask.from_indices(keep, 20))(ds)
    # a one-layer DCRNN with a short decoder: the exported graph unrolls every recurrent step
    bb = (DCRNN(20, 1, 1, 12, 4, hidden=8, num_layers=1) if backbone == "dcrnn"
          else make_backbone(backbone, 20, in_features, 1, 12, 12))
    served = ServedModel(SensorGate(20), bb, keep,
                         sub.edge_index, sub.edge_weight).eval()
    x = torch.randn(4, 12, 10, in_features)
    if in_features == 3:
        x[..., 1:] = torch.rand(4, 12, 10, 2)
    program, kind = export_served(served, x[:2])
    assert kind == "export", getattr(program, "export_reason", "")  # torch.export traces every backbone
    assert program.graph_constants == ("supports rebuilt per call" if backbone == "stid" else "supports baked in")
    if kind == "export":
        torch.export.save(program, str(tmp_path / "model.pt2"))
    else:
        torch.jit.save(program, str(tmp_path / "model.ts"))
    (tmp_path / "contract.json").write_text(json.dumps({"kind": kind, "program": "model.pt2" if kind == "export"
                                                        else "model.ts", "scaler": {"mean": [0.0], "std": [1.0]}}))
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        want = served(x)[..., 0]
    torch.testing.assert_close(_fresh(tmp_path), want, atol=1e-5, rtol=0)


@pytest.mark.expensive
def test_aot_package_runs_without_the_library(tmp_path, capsys):
    """`export --aot`: the AOTInductor package (compiled C++, minutes) matches the forecaster in a fresh process."""
    run = tmp_path / "run"
    assert main(["prune", *QUICK, "--backbone", "gwnet", "--target", "kept", "--out", str(run)]) == 0
    out = tmp_path / "exported"
    assert main(["export", "--run", str(run), "--out", str(out), "--aot"]) == 0
    assert "model.aoti.pt2 (AOTInductor)" in capsys.readouterr().out
    c = json.loads((out / "contract.json").read_text())
    assert c["aoti_program"] == "model.aoti.pt2" and (out / "model.aoti.pt2").is_file()
    fc = Forecaster.load(run, device="cpu")
    x = fc.run.sub.test.batch(torch.arange(3))[0].cpu()
    torch.save(x, out / "x.pt")
    torch.testing.assert_close(_fresh(out, "aoti"), fc.forecast_tensor(x), atol=1e-5, rtol=0)
    assert main(["export", "--run", str(run), "--out", str(out)]) == 0  # without --aot: the package is removed
    assert not (out / "model.aoti.pt2").exists() and json.loads((out / "contract.json").read_text())["aoti_program"] is None
