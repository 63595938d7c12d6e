"""A full disk is recognised whoever raised it, and its one line names the file or folder."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from src.pipeline import disk_full_error
from src.utils.disk import is_disk_full, written_file
from src.utils.io import atomic_write
from src.utils.journal import JsonlJournal


def _full(*_: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_recognised_in_an_oserror_a_plain_exception_or_a_chain() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(Exception("No space left on device (os error 28)"))  # the tokenizers library
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.ENOENT, "No such file")) and not is_disk_full(ValueError("x"))


def test_an_atomic_write_that_fills_the_disk_names_the_file_not_its_temp(tmp_path: Path) -> None:
    target = tmp_path / "tuning.csv"
    with pytest.raises(OSError) as err:
        atomic_write(target, _full)
    assert err.value.filename == str(target) and written_file(err.value) == target


def test_a_journal_append_that_fills_the_disk_names_the_journal(tmp_path: Path, monkeypatch) -> None:
    journal = JsonlJournal(tmp_path / "tuning.journal.jsonl")
    monkeypatch.setattr(os, "fsync", _full)
    with pytest.raises(OSError) as err:
        journal.append([{"setting": "a", "fname": "dev_0", "summary": "요약"}])
    assert err.value.filename == str(journal.path)


def test_the_tune_stages_disk_full_line_names_the_file(tmp_path: Path) -> None:
    ctx = SimpleNamespace(run_dir=tmp_path / "output" / "R", model_dir=tmp_path / "model" / "R", is_main=True,
                          clean_dir=tmp_path / "clean" / "R", aug_dir=tmp_path / "augmented" / "R")
    exc = OSError(errno.ENOSPC, "No space left on device", str(ctx.run_dir / ".tuning.csv.0123456789ab.tmp"))
    (line,) = disk_full_error(ctx, "tune", exc).problems  # type: ignore[arg-type]
    assert line.startswith(f"stage tune: cannot write {ctx.run_dir / 'tuning.csv'}: No space left on device (")
    assert "free" in line and "paths.output_dir" in line and "--resume" in line
