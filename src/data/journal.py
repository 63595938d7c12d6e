"""An append-only JSONL journal of completed LLM responses, so no request is ever paid twice.

Each line is one completed response, keyed by a hash of model + messages + generation params.
Lines are flushed and fsynced as they are written: after a crash, Ctrl-C or SIGKILL the journal
holds every response that had arrived, plus at most one torn last line, which is skipped on load.
Failed requests are never written, so a rerun retries them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

logger = logging.getLogger(__name__)


def request_key(model: str, messages: list[dict], params: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of what determines a response (not the endpoint or key)."""
    blob = json.dumps({"model": model, "messages": messages, "params": params},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Journal:
    """Completed responses by request key, backed by an append-only JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}
        self._file: Optional[Any] = None
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        torn = 0
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    self.entries[record["key"]] = record
                except (json.JSONDecodeError, KeyError, TypeError):
                    torn += 1  # a line cut short by a kill mid-write
        if torn:
            logger.warning("journal %s: skipped %d unreadable line(s); those requests will be re-sent",
                           self.path, torn)

    def get(self, key: str) -> Optional[dict[str, Any]]:
        """The completed record for ``key``, or None."""
        return self.entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, record: dict[str, Any]) -> None:
        """Write one completed response (must hold ``key``) and make it durable before returning."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
            self._terminate_torn_line()
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.entries[record["key"]] = record

    def _terminate_torn_line(self) -> None:
        # A killed writer may leave a last line without "\n"; start ours on a fresh line.
        assert self._file is not None
        if self.path.stat().st_size == 0:
            return
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                self._file.write("\n")

    def close(self) -> None:
        """Close the file handle (appending again reopens it)."""
        if self._file is not None:
            self._file.close()
            self._file = None
