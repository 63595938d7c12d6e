"""A run lock: one process at a time writes a run's folders (a second one would pay every API request twice, or
train into the checkpoints another run is scoring).

Each folder's lock is a ``filelock.FileLock`` on ``<folder>/.lock`` (``flock`` on POSIX, ``LockFileEx`` on
Windows), held for the life of the process. The operating system drops it when the holder dies (even by
SIGKILL), so a lock file left by a dead process is simply taken over. The holder's PID goes into
``<folder>/.lock.pid``, beside the lock, only for the message a second process prints (filelock may
truncate the lock file itself when it tries to take it).

A run writes more than its output folder: ``model/<run>``, ``data/clean/<run>`` and ``data/augmented/<run>``
are named by the run name alone, so two runs of one name with different ``paths.output_dir`` would share
them. ``RunLock`` takes every folder it is given, or none.
"""
from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from src.utils.errors import UserError

LOCK_NAME = ".lock"
PID_NAME = ".lock.pid"
LOCK_FILES = (LOCK_NAME, PID_NAME)  # not outputs: a folder holding only these is still an empty run folder


class RunLock:
    """Exclusive, non-blocking lock on a run folder and the other folders the run writes; ``acquire`` raises
    UserError naming the folder in use and the process that holds it."""

    def __init__(self, folder: Path, *others: Path) -> None:
        seen: dict[str, Path] = {}
        for f in (folder, *others):
            seen.setdefault(os.path.realpath(f), Path(f))  # one folder named twice is locked once
        self.folders = list(seen.values())
        self.path = self.folders[0] / LOCK_NAME
        self.pid_path = self.folders[0] / PID_NAME
        self._locks: list[FileLock] = []

    def acquire(self) -> "RunLock":
        """Take every folder's lock or none; UserError (exit 2) naming the folder in use and its holder's PID."""
        try:
            for i, folder in enumerate(self.folders):
                folder.mkdir(parents=True, exist_ok=True)
                lock = FileLock(str(folder / LOCK_NAME), timeout=0)
                try:
                    lock.acquire()
                except Timeout:
                    raise UserError(self._in_use(folder, first=i == 0)) from None
                self._locks.append(lock)
                (folder / PID_NAME).write_text(f"{os.getpid()}\n", encoding="utf-8")
        except BaseException:
            self.release()
            raise
        return self

    def _in_use(self, folder: Path, first: bool) -> str:
        holder = _holder(folder / PID_NAME)
        if first:
            return (f"run folder {folder} is in use by process {holder} (lock {folder / LOCK_NAME}); "
                    "wait for it to finish, stop it, or choose another --run-name")
        return (f"{folder} is in use by process {holder} (lock {folder / LOCK_NAME}): another run of the same "
                "--run-name, perhaps with another paths.output_dir, writes there; wait for it to finish, stop it, "
                "or choose another --run-name")

    def release(self) -> None:
        """Drop every lock held (the operating system also drops them when the process exits)."""
        while self._locks:
            self._locks.pop().release()


def _holder(pid_path: Path) -> str:
    try:
        return pid_path.read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"
