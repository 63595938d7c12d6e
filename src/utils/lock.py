"""A run lock: one process at a time writes a run folder (a second one would pay every API request twice).

The lock is an ``fcntl`` lock on ``<run>/.lock``, held for the life of the process. The kernel drops
it when the holder dies (even by SIGKILL), so a lock file left by a dead process is simply taken
over; the PID written into the file only serves the message the second process prints.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Optional

from src.errors import UserError

LOCK_NAME = ".lock"


class RunLock:
    """Exclusive, non-blocking lock on a run folder; ``acquire`` raises UserError naming the holder."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fh: Optional[IO[str]] = None

    def acquire(self) -> "RunLock":
        """Take the lock or raise UserError (exit 2) naming the PID that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"run folder {self.path.parent} is in use by process {holder} (lock {self.path}); "
                            "wait for it to finish, stop it, or choose another --run-name") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Drop the lock (the kernel also drops it when the process exits)."""
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
