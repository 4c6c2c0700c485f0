"""One driver per run directory: a lock the search holds while it runs.

Why: two `trilevel-search --resume` of one run directory, started side by side, both trained the
same trials to the end (measured on main fd7828c), each overwriting the other's search.json. The
second driver now gets one line naming the holder and exits 2.

How: an advisory `fcntl.flock` on `RUN_DIR/driver.lock`, which holds the holder's host, pid and
start time for that message. The kernel releases the lock when its process dies, also after
`kill -9`, so a lock left by a dead driver is never in the way: the next driver takes it over
and says whose it was. `flock` works on local disks; on NFS it depends on the server (Linux maps
it to POSIX locks over NFS v4).

Written by hand: the standard library's `fcntl` is all it needs (no lock package is a dependency).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Callable

from trilevel.core.errors import UserError
from trilevel.store.run_store import LOCK_FILE

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; the search runs unguarded
    fcntl = None


class RunLock:
    """The driver's lock on a run directory (`acquire` / `release`, or a context manager)."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, say: Callable[[str], None] = lambda line: None) -> None:
        """Take the lock, or raise `UserError` naming the driver that holds it. A lock file left by
        a driver that died is taken over, with a note through `say`."""
        if self._fd is not None or fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = describe_holder(_read(fd))
            os.close(fd)
            raise UserError(f"{self.path.parent} is in use by another trilevel-search ({holder}); "
                            "wait for it to finish or stop it first") from None
        left = _read(fd)
        if left:  # written by a driver that is gone: the kernel released its lock when it died
            say(f"Took over the run from a driver that stopped without releasing it ({describe_holder(left)}).")
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Empty the file (nobody holds the run) and drop the lock."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    raw = os.pread(fd, 4096, 0)
    try:
        holder = json.loads(raw) if raw.strip() else {}
    except ValueError:
        holder = {}
    return holder if isinstance(holder, dict) else {}


def describe_holder(holder: dict) -> str:
    """'pid P on HOST, since START' for a lock's or lease's holder."""
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
