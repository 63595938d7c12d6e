"""The run lock is filelock's: exclusive across processes, the holder's PID in the message, importable without fcntl."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from src.utils.errors import UserError
from src.utils.lock import LOCK_FILES, RunLock
from tests.conftest import REPO


def test_a_second_lock_on_the_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    import os

    first = RunLock(tmp_path).acquire()
    try:
        with pytest.raises(UserError, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path).acquire()
    finally:
        first.release()
    RunLock(tmp_path).acquire().release()  # free again once released
    assert {p.name for p in tmp_path.iterdir()} <= set(LOCK_FILES)


def test_the_entry_points_import_where_there_is_no_fcntl() -> None:
    """Windows has no fcntl: src.main, src.run and the lock must import all the same."""
    code = ("import sys; sys.modules['fcntl'] = None; import src.main, src.run, src.utils.lock; "
            "import filelock; print(filelock.FileLock.__name__)")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_every_folder_is_locked_or_none(tmp_path: Path) -> None:
    import os

    held = RunLock(tmp_path / "model" / "R").acquire()
    try:
        with pytest.raises(UserError, match=f"model/R is in use by process {os.getpid()}.*same --run-name"):
            RunLock(tmp_path / "output" / "R", tmp_path / "model" / "R").acquire()
        RunLock(tmp_path / "output" / "R").acquire().release()  # the first folder's lock was let go again
    finally:
        held.release()
    both = RunLock(tmp_path / "a", tmp_path / "a", tmp_path / "b").acquire()  # a folder named twice is locked once
    assert [f.name for f in both.folders] == ["a", "b"]
    both.release()
