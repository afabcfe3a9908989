"""One run per output folder, atomic files, and a manifest that ties a run's files together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from dynst_pyg.cli.main import main
from dynst_pyg.cli.run_folder import (MANIFEST, RunFolderBusy, RunFolderLock, atomic_write, check_manifest,
                                      write_manifest, _process_start)
from dynst_pyg.training.checkpoint import Checkpointer

TINY = ["--nodes", "20", "--steps", "300", "--epochs", "1", "--warmup-epochs", "1", "--search-epochs", "1",
        "--max-batches", "2", "--batch-size", "16", "--quiet", "--no-dense"]


def _fake_holder(folder: Path, pid: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".lock").write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "started": "earlier",
                                              "proc_start": _process_start(pid)}))


def test_a_live_holder_refuses_a_second_run_and_names_it(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _fake_holder(tmp_path / "run", other.pid)
        with pytest.raises(RunFolderBusy, match=f"in use by another run \\(pid {other.pid} on"):
            RunFolderLock(tmp_path / "run").acquire()
        assert json.loads((tmp_path / "run" / ".lock").read_text())["pid"] == other.pid  # left as it was
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_of_a_dead_run_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_holder(tmp_path / "run", dead.pid)
    with RunFolderLock(tmp_path / "run") as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "run" / ".lock").exists()


def test_the_cli_refuses_a_folder_in_use_in_one_line(tmp_path, capsys):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _fake_holder(tmp_path / "run", other.pid)
        assert main(["prune", *TINY, "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"pid {other.pid}" in err[0] and "choose another --out" in err[0]
        assert not (tmp_path / "run" / "mask.json").exists()
    finally:
        other.kill()
        other.wait()


def test_atomic_write_leaves_no_temporary_files_and_plain_permissions(tmp_path):
    atomic_write(tmp_path / "a.txt", "one")
    atomic_write(tmp_path / "a.txt", b"two")
    assert (tmp_path / "a.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_manifest_refuses_a_file_of_another_run(tmp_path):
    (tmp_path / "mask.json").write_text("{}")
    (tmp_path / "model.pt").write_bytes(b"weights")
    write_manifest(tmp_path, "run-1", ["mask.json", "model.pt"])
    assert check_manifest(tmp_path, ["mask.json", "model.pt"]) == "run-1"
    (tmp_path / "mask.json").write_text('{"other": 1}')
    with pytest.raises(ValueError, match="mask.json is not the file run run-1 wrote"):
        check_manifest(tmp_path, ["mask.json", "model.pt"])
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(ValueError, match="run.json not found"):
        check_manifest(tmp_path, ["mask.json"])


def test_prune_writes_one_set_with_a_manifest(tmp_path):
    out = tmp_path / "run"
    assert main(["prune", *TINY, "--out", str(out)]) == 0
    entry = json.loads((out / MANIFEST).read_text())
    assert set(entry["files"]) >= {"mask.json", "model.pt", "metrics.json", "report.md"}
    assert json.loads((out / "metrics.json").read_text())["run_id"] == entry["run_id"]
    assert entry["run_id"] in (out / "report.md").read_text()
    assert not (out / ".lock").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_checkpoint_saves_never_collide_on_a_temporary_file(tmp_path):
    errors = []

    def save(tag):
        ck = Checkpointer(tmp_path, {"run": tag})
        try:
            for i in range(15):
                ck.save({"i": i, "w": torch.zeros(200)})
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(t,)) for t in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
