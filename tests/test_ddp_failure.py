"""Two gloo processes on this machine: one is killed, or freezes; the run stops with one line of ours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynst_pyg.cli.launch import failure_line, strip_nproc

pytestmark = pytest.mark.slow


def _worker_pid(root: int, rank: int) -> int | None:
    """The pid of the descendant of ``root`` that torchrun started as ``rank``."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if f"RANK={rank}".encode() not in env or b"TORCHELASTIC_RUN_ID" not in b"".join(env):
            continue
        pid = int(d.name)
        while pid > 1:  # walk up to root
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                break
            if pid == root:
                return int(d.name)
    return None


def _run_and_hurt(tmp_path: Path, sig: int) -> tuple[int, list[str], Path]:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dynst_pyg", "prune", "--nproc", "2", "--nodes", "20", "--steps", "400",
           "--warmup-epochs", "200", "--search-epochs", "1", "--epochs", "1", "--batch-size", "16",
           "--max-batches", "2", "--no-dense", "--device", "cpu", "--ddp-timeout", "5", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines, victim = [], None
    try:
        for line in p.stderr:
            lines.append(line.rstrip("\n"))
            if victim is None and line.startswith("[dynst] warmup epoch 2/"):
                victim = _worker_pid(p.pid, 1)
                assert victim is not None, "rank 1 not found among the launcher's descendants"
                os.kill(victim, sig)
        p.wait(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
        if victim is not None:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert victim is not None, "the run ended before a worker could be stopped:\n" + "\n".join(lines)
    return p.returncode, lines, out


def test_a_killed_worker_stops_the_run_with_one_line_naming_its_rank(tmp_path):
    code, lines, out = _run_and_hurt(tmp_path, signal.SIGKILL)
    ours = [ln for ln in lines if ln.startswith("dynst-pyg prune: error:")]
    assert code == 3 and len(ours) == 1, lines
    assert "process rank 1 of 2 was killed (SIGKILL)" in ours[0] and "can be resumed" in ours[0]
    assert not any("Traceback" in ln for ln in lines)
    assert (out / "ddp.log").is_file()


def test_a_frozen_worker_stops_the_run_after_the_collective_timeout(tmp_path):
    t0 = time.monotonic()
    code, lines, out = _run_and_hurt(tmp_path, signal.SIGSTOP)
    ours = [ln for ln in lines if ln.startswith("dynst-pyg prune: error:")]
    assert code == 3 and len(ours) == 1, lines
    assert "lost the other processes" in ours[0] and "collective timeout 5 s" in ours[0]
    assert "can be resumed" in ours[0]
    assert not any("Traceback" in ln for ln in lines)
    assert time.monotonic() - t0 < 170


def test_failure_line_reads_torchruns_root_cause():
    log = ("...\nRoot Cause (first observed failure):\n[0]:\n  time      : 2026-12-07_11:00:00\n"
           "  host      : h\n  rank      : 1 (local_rank: 1)\n  exitcode  : -9 (pid: 42)\n")
    line = failure_line(log, 2, "runs/x", [])
    assert line.startswith("dynst-pyg prune: error: process rank 1 of 2 was killed (SIGKILL)")
    assert "runs/x/checkpoint" in line and "runs/x/ddp.log" in line
    assert "exited with code 3 (rank 0 of 2 lost" in failure_line(
        log.replace("-9", "3").replace(": 1 (", ": 0 ("), 2, "o",
        ["dynst-pyg prune: error: rank 0 of 2 lost the other processes (x)"])


def test_strip_nproc():
    assert strip_nproc(["prune", "--nproc", "2", "--out", "x"]) == ["prune", "--out", "x"]
    assert strip_nproc(["prune", "--nproc=4"]) == ["prune"]
