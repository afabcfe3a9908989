"""The notebooks run top to bottom (nbclient, small settings) and write their figures.

The notebooks read ``DYNST_NB_FAST=1`` (tiny epochs, few batches) and write figures to
``DYNST_NB_FIGURES``; the kernel is this interpreter (``sys.executable``) through a kernel
spec written to a temporary folder, so the test never depends on globally installed
kernels.

The committed copies carry the outputs of a run at their documented (non-fast) settings, so
that a reader sees the maps without running anything; the fast checks below read those
copies without executing them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = ("quickstart.ipynb", "pruned_sensor_maps.ipynb", "aarhus_sensor_map.ipynb")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_COMMITTED_BYTES = 600_000  # the embedded figures use a modest inline dpi
CELL_TIMEOUT_S = 600  # per cell; a fast run takes seconds, but the CI machine may be shared


def _nb_modules():
    try:
        import nbformat
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager
        from nbclient import NotebookClient
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.fail(f"executing the notebooks needs the test extra (nbclient, nbformat, ipykernel): {exc}; "
                    "install with `pip install -e '.[test]'`", pytrace=False)
    try:
        import ipykernel  # noqa: F401
    except ImportError:  # pragma: no cover
        pytest.fail("executing the notebooks needs ipykernel in this interpreter; install with "
                    "`pip install -e '.[test]'`", pytrace=False)
    return nbformat, KernelSpecManager, KernelManager, NotebookClient


def _run_notebook(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra_env: dict | None = None):
    """Executes notebooks/<name> in notebooks/ with the fast settings; returns the executed notebook."""
    nbformat, KernelSpecManager, KernelManager, NotebookClient = _nb_modules()
    kernels = tmp_path / "kernels"
    (kernels / "dynst-test").mkdir(parents=True)
    (kernels / "dynst-test" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dynst_pyg test kernel", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    km = KernelManager(kernel_name="dynst-test", kernel_spec_manager=ksm)

    # the kernel inherits this environment
    monkeypatch.setenv("DYNST_NB_FAST", "1")
    monkeypatch.setenv("DYNST_NB_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook's inline backend, as a user gets it
    for key, value in (extra_env or {}).items():
        monkeypatch.setenv(key, value)

    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()
    return nb


def _text_outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out:
                parts.append(out["data"].get("text/plain", "") + out["data"].get("text/markdown", ""))
    return "\n".join(parts)


def _assert_pngs(folder: Path, names):
    for n in names:
        p = folder / n
        assert p.is_file(), f"the notebook did not write {n} (found {sorted(x.name for x in folder.glob('*'))})"
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, f"{n} is not a plausible PNG ({len(data)} bytes)"


# ----------------------------------------------------------------------------------------
def _committed(name: str) -> dict:
    path = NB_DIR / name
    size = path.stat().st_size
    assert size < MAX_COMMITTED_BYTES, \
        f"{name} is {size} bytes (limit {MAX_COMMITTED_BYTES}); lower the inline figure dpi or show fewer figures"
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    return nb


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_carry_their_executed_outputs(name):
    nb = _committed(name)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{name} has no code cells"
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{name}: code cell {counts.index(None)} was not executed; commit the executed copy"
    assert counts == list(range(1, len(code) + 1)), \
        f"{name}: execution counts {counts} are not one top-to-bottom run in a fresh kernel"
    outputs = [o for c in code for o in c.get("outputs", [])]
    errors = [o.get("ename") for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{name}: the committed run raised {errors}"
    pngs = [o["data"]["image/png"] for o in outputs
            if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert pngs, f"{name}: no image/png output; execute it with its figures before committing"
    for png in pngs:
        data = base64.b64decode(png if isinstance(png, str) else "".join(png))
        assert data[:8] == PNG_MAGIC and len(data) > 5_000, f"{name}: an embedded figure is not a plausible PNG"
    # outputs of the documented settings, not of the fast mode the test suite uses
    text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    assert "FAST=False" in text, f"{name}: the committed outputs come from a DYNST_NB_FAST=1 run"


def test_committed_quickstart_shows_the_pyg_batch_path():
    nb = _committed("quickstart.ipynb")
    source = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "DataLoader(" in source and "model(batch)" in source, \
        "quickstart.ipynb must feed a PyG DataLoader batch of transformed windows to the model"
    assert "[:, :, keep]" not in source and "node_index=" not in source, \
        "quickstart.ipynb slices the inputs by hand; the Batch carries the kept nodes (n_id)"


@pytest.mark.slow
def test_quickstart_runs_and_writes_figures(tmp_path, monkeypatch):
    nb = _run_notebook("quickstart.ipynb", tmp_path, monkeypatch)
    text = _text_outputs(nb)
    # the transformed window carries n_id and has K < N nodes; the model ran on it; speedup measured
    assert "n_id=[70]" in text and "x=[70, 12, 1]" in text
    # a PyG DataLoader batch of 16 transformed windows went through the model, forecast node-first
    assert "DataBatch(x=[1120, 12, 1]" in text and "n_id=[1120]" in text
    assert "-> forecast: (1120, 12, 1) aligned with batch.y (1120, 12, 1)" in text
    assert "speedup" in text and "test MAE" in text
    _assert_pngs(tmp_path / "figures", ["quickstart_map.png", "quickstart_speedup.png"])
    # figures were also rendered inline (the inline backend of the kernel)
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.data
def test_pruned_sensor_maps_runs_and_writes_figures(tmp_path, monkeypatch, los_loop):
    # a small benchmark file, so the MAE-vs-sparsity branch runs too
    rows = [dict(dataset="los-loop", model="gwnet", selector=sel, schedule=sch, sparsity=sp, target="all", seed=s,
                 mae=4.0 + k * sp + 0.05 * s)
            for sel, sch, k in (("dynst", "iterative", 1.0), ("random", None, 2.5), ("qr", None, 1.8))
            for sp in (0.3, 0.5, 0.7) for s in (0, 1)]
    tradeoff = tmp_path / "sparsity_tradeoff.json"
    tradeoff.write_text(json.dumps(rows))
    nb = _run_notebook("pruned_sensor_maps.ipynb", tmp_path, monkeypatch,
                       extra_env={"DYNST_NB_TRADEOFF_JSON": str(tradeoff)})
    figures = tmp_path / "figures"
    _assert_pngs(figures, ["los_loop_importance.png", "los_loop_masks_50.png", "los_loop_dynst_vs_random.png",
                           "los_loop_dynst_vs_qr.png", "los_loop_tradeoff.png"])
    # the mask was produced in the notebook itself and saved next to the figures
    from dynst_pyg.selection.mask import SensorMask

    mask = SensorMask.load(figures / "los_loop_dynst_mask.json")
    assert mask.num_nodes == los_loop.num_nodes and mask.method.startswith("dynst")
    assert mask.num_kept == los_loop.num_nodes - int(0.5 * los_loop.num_nodes)
    assert mask.scores is not None and mask.sensor_ids == list(los_loop.sensor_id)
    assert "Jaccard overlap" in _text_outputs(nb)


@pytest.mark.slow
@pytest.mark.data
def test_aarhus_sensor_map_runs_and_writes_figures(tmp_path, monkeypatch):
    from conftest import require_data

    require_data("aarhus/aarhus_traffic_aug_sep_2014.tar.gz")
    require_data("aarhus/trafficMetaData.csv")
    nb = _run_notebook("aarhus_sensor_map.ipynb", tmp_path, monkeypatch)
    text = _text_outputs(nb)
    figures = tmp_path / "figures"
    _assert_pngs(figures, ["aarhus_observed.png", "aarhus_dynst_vs_qr.png"])
    # fast mode: the first two weeks, minus the segments without a reading in their training part
    dropped = re.search(r"FAST: first 4032 steps, (\d+) segment\(s\) without training readings dropped", text)
    assert dropped, "the fast run did not slice the dataset to two weeks"
    n = 449 - int(dropped.group(1))
    assert f"4032 steps x {n} segments x 1 feature (speed)" in text and "observed share:" in text
    from dynst_pyg.selection.mask import SensorMask

    # the DynST mask was produced in the notebook itself and saved next to the figures
    mask = SensorMask.load(figures / "aarhus_dynst_mask.json")
    assert mask.num_nodes == n and mask.num_kept == n - int(0.5 * n) and mask.method == "dynst-oneshot"
    assert mask.scores is not None
    assert "Jaccard overlap of the kept sets" in text and "pivoted QR: kept" in text
