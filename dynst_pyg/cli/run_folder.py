"""A run folder (``--out``): one run at a time, files written atomically, one set that belongs together.

* :class:`RunFolderLock` holds ``OUT/.lock`` (pid, host, start time) while a run writes there;
  a second run is refused with one line naming the holder, and a lock left by a run that
  died (its process is gone) is taken over.
* :func:`atomic_write` writes every file under a unique temporary name in the same folder
  and renames it into place, so a reader sees the old file or the new one, never half a file.
* :func:`write_manifest` writes ``run.json`` last: the run id and the SHA-256 of each file of
  the set; :func:`check_manifest` refuses a folder whose files do not all belong to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["RunFolderBusy", "RunFolderLock", "atomic_write", "write_manifest", "check_manifest", "new_run_id",
           "MANIFEST"]

#: Name of the manifest that ties the files of one run together.
MANIFEST = "run.json"
_LOCK = ".lock"


class RunFolderBusy(RuntimeError):
    """Another live run holds the output folder."""


def _process_start(pid: int) -> Optional[str]:
    """The kernel's start time of ``pid`` (Linux ``/proc``; :obj:`None` elsewhere or when gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: Optional[str]) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = _process_start(pid)
    return start is None or now is None or now == start  # a reused pid has another start time


class RunFolderLock:
    """Exclusive use of a run folder while a run writes it (a context manager).

    Args:
        folder (str or Path): The run folder; created if missing.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / _LOCK
        self._held = False

    def _holder(self) -> Optional[dict]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Takes the lock, or raises :class:`RunFolderBusy` naming the live run that holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "proc_start": _process_start(os.getpid())}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = self._holder()
                if held is not None and (held.get("host") != me["host"]
                                         or _alive(int(held.get("pid", -1)), held.get("proc_start"))):
                    raise RunFolderBusy(
                        f"{self.folder} is in use by another run (pid {held.get('pid')} on {held.get('host')}, "
                        f"started {held.get('started')}); wait for it to finish or choose another --out") from None
                # the holder is gone (killed run) or the lock is unreadable: take it over
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._held = True
            return
        raise RunFolderBusy(f"{self.folder}: could not take {self.path} (another run is starting there)")

    def release(self) -> None:
        if self._held:
            held = self._holder()
            if held is not None and held.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> "RunFolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Writes ``data`` to ``path`` through a unique temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions of a plainly written file, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(folder: str | os.PathLike, run_id: str, files: Iterable[str]) -> None:
    """Writes ``run.json``: the run id and the checksum of each of ``files`` (names inside ``folder``)."""
    folder = Path(folder)
    entry = {"run_id": run_id, "files": {name: _sha256(folder / name) for name in files if (folder / name).is_file()}}
    atomic_write(folder / MANIFEST, json.dumps(entry, indent=2))


def check_manifest(folder: str | os.PathLike, needed: Iterable[str]) -> str:
    """The run id of ``folder``; raises :class:`ValueError` when one of ``needed`` is not the file that
    run wrote (a file of another run, or one changed since)."""
    folder = Path(folder)
    try:
        entry = json.loads((folder / MANIFEST).read_text())
        files, run_id = dict(entry["files"]), str(entry["run_id"])
    except FileNotFoundError:
        raise ValueError(f"{folder / MANIFEST} not found: {folder} was not written (completely) by "
                         f"`dynst-pyg prune`; run prune again") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{folder / MANIFEST} is not a run manifest ({exc}); run prune again") from None
    for name in needed:
        if name not in files:
            raise ValueError(f"{folder / name} is not part of run {run_id} (not in {MANIFEST}); run prune again")
        if not (folder / name).is_file() or _sha256(folder / name) != files[name]:
            raise ValueError(f"{folder / name} is not the file run {run_id} wrote (changed or from another run); "
                             f"run prune again")
    return run_id
