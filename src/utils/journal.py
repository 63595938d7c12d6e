"""The one append-only JSONL journal, used by augmentation (paid API responses) and inference (summaries).

Each record is one line, flushed and fsynced before ``append`` returns: after a crash, Ctrl-C or
SIGKILL the file holds every record that was appended, plus at most one torn last line, which
``read`` skips (and counts) and the next ``append`` starts after on a fresh line.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from src.utils.io import atomic_write_text


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


class JsonlJournal:
    """Records of one JSONL file: read them, append durably, rewrite atomically, remove."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> tuple[list[dict[str, Any]], int]:
        """(records in file order, number of unreadable lines); a missing file has none."""
        if not self.path.is_file():
            return [], 0
        records, torn = [], 0
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    torn += 1  # a line cut short by a kill mid-write
                    continue
                if isinstance(record, dict):
                    records.append(record)
                else:
                    torn += 1
        return records, torn

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Write ``records`` at the end of the file and make them durable before returning."""
        text = "".join(_line(r) for r in records)
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                if self._ends_torn():
                    fh.write("\n")  # a killed writer may have left a last line without "\n"
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            exc.filename = exc.filename or str(self.path)  # a full disk names the journal, not "a file"
            raise

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        """Replace the file with exactly ``records`` (atomically); no records removes it."""
        text = "".join(_line(r) for r in records)
        if text:
            atomic_write_text(self.path, text)
        else:
            self.remove()

    def remove(self) -> None:
        """Delete the file (nothing happens when it does not exist)."""
        self.path.unlink(missing_ok=True)

    def _ends_torn(self) -> bool:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return False
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
