"""Atomic file writes and content fingerprints.

Every output is written to a temp file in the same folder and renamed into place, so a crash
never leaves a half-written file where a finished one is expected.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, data: Any) -> Path:
    """Write JSON (UTF-8, indented, non-ASCII kept) atomically."""
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def atomic_write_csv(path: Path, df: pd.DataFrame) -> Path:
    """Write a DataFrame as UTF-8 CSV without the index, atomically."""
    return atomic_write(path, lambda p: df.to_csv(p, index=False, encoding="utf-8"))


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's file names, sizes and mtimes (for checkpoints)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return "dir:" + h.hexdigest()[:16]
    if not path.exists():
        return "missing"
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def fingerprint(config_parts: dict[str, Any], inputs: Iterable[Path]) -> str:
    """One hash over a stage's config sections and the digests of the files it reads."""
    h = hashlib.sha256(json.dumps(config_parts, sort_keys=True, default=str).encode())
    for p in inputs:
        if p is not None:
            h.update(f"{Path(p).name}={file_digest(Path(p))}\n".encode())
    return h.hexdigest()[:16]
