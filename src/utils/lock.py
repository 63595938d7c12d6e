"""A run lock: one process at a time writes a run folder (a second one would pay every API request twice).

The lock is a ``filelock.FileLock`` on ``<run>/.lock`` (``flock`` on POSIX, ``LockFileEx`` on Windows),
held for the life of the process. The operating system drops it when the holder dies (even by
SIGKILL), so a lock file left by a dead process is simply taken over. The holder's PID goes into
``<run>/.lock.pid``, beside the lock, only for the message a second process prints (filelock may
truncate the lock file itself when it tries to take it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from filelock import FileLock, Timeout

from src.utils.errors import UserError

LOCK_NAME = ".lock"
PID_NAME = ".lock.pid"
LOCK_FILES = (LOCK_NAME, PID_NAME)  # not outputs: a folder holding only these is still an empty run folder


class RunLock:
    """Exclusive, non-blocking lock on a run folder; ``acquire`` raises UserError naming the holder."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.pid_path = Path(folder) / PID_NAME
        self._lock: Optional[FileLock] = None

    def acquire(self) -> "RunLock":
        """Take the lock or raise UserError (exit 2) naming the PID that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            holder = self._holder()
            raise UserError(f"run folder {self.path.parent} is in use by process {holder} (lock {self.path}); "
                            "wait for it to finish, stop it, or choose another --run-name") from None
        self.pid_path.write_text(f"{os.getpid()}\n", encoding="utf-8")
        self._lock = lock
        return self

    def _holder(self) -> str:
        try:
            return self.pid_path.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        """Drop the lock (the operating system also drops it when the process exits)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
