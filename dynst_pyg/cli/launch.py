"""``prune --nproc P``: several processes on this machine through ``torch.distributed.run``, failing cleanly.

The launcher passes the workers' standard output through, forwards their progress lines
(``[dynst] ...``) from standard error, and keeps everything else (tracebacks, the launcher's
own report) in ``OUT/ddp.log``. When a process fails, it prints one line: which rank failed
and how, what the workers said, and that the run resumes from its checkpoint.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["launch", "failure_line", "strip_nproc", "WORKER_ERROR_PREFIX"]

#: How a worker's own one-line error starts (see :func:`dynst_pyg.cli.main.cmd_prune`).
WORKER_ERROR_PREFIX = "dynst-pyg prune: error:"


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (the workers run one process each)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def _how(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed ({name})"
    return f"exited with code {code}"


def failure_line(log: str, nproc: int, out: str, worker_errors: Sequence[str]) -> str:
    """The one line a failed multi-process run ends with, from the launcher's log and the workers' errors."""
    root = log.split("Root Cause", 1)[-1]
    rank = re.search(r"rank\s*:\s*(\d+)", root)
    code = re.search(r"exitcode\s*:\s*(-?\d+)", root)
    who = f"process rank {rank.group(1)} of {nproc}" if rank else f"one of the {nproc} processes"
    how = _how(int(code.group(1))) if code else "failed"
    said = "; ".join(e[len(WORKER_ERROR_PREFIX):].strip() for e in worker_errors)
    return (f"{WORKER_ERROR_PREFIX} {who} {how}" + (f" ({said})" if said else "")
            + f"; the run can be resumed: run the same command again (the last finished epoch is checkpointed in "
              f"{out}/checkpoint); full log: {out}/ddp.log")


def launch(nproc: int, argv: Sequence[str], out: str, python: Optional[str] = None) -> int:
    """Re-runs ``argv`` (a ``prune`` command line) under ``torch.distributed.run`` with ``nproc`` processes.

    Returns ``0`` on success; on failure prints :func:`failure_line` and returns ``3``.
    """
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "dynst_pyg", *strip_nproc(argv)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, bufsize=1)
    kept: list[str] = []
    worker_errors: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("[dynst]"):
            sys.stderr.write(line)
            sys.stderr.flush()
        elif line.startswith(WORKER_ERROR_PREFIX):
            worker_errors.append(line.strip())
        kept.append(line)
    code = proc.wait()
    log = "".join(kept)
    if code == 0:
        return 0
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "ddp.log").write_text(log)
    except OSError:
        pass
    print(failure_line(log, nproc, out, worker_errors), file=sys.stderr)
    return 3
