"""The one atomic writer used by every stage and report, content digests and the one hashing primitive.

Every output is written to a temp file in the same folder, fsynced, and renamed into place, so a
crash never leaves a half-written file where a finished one is expected. The temp file is created
with ``open(..., "x")`` rather than ``mkstemp``, so the result has the permissions the umask gives
any other file the user creates (0644 under the usual 022), not mkstemp's owner-only 0600.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

if TYPE_CHECKING:  # pandas is imported only by the function that writes a frame
    import pandas as pd


TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # what temp_path names: .NAME.<12 hex>.tmp


def temp_path(path: Path) -> Path:
    """A fresh hidden name next to ``path`` (same folder, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def remove_stale_temps(folders: Iterable[Path]) -> list[Path]:
    """Delete the temp files (and temp folders) of ``temp_path`` that killed writes left under ``folders``; the
    paths removed. Call it only while holding the lock of every one of them, so no live write loses its file."""
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).rglob(".*.tmp"), key=lambda p: len(p.parts)):
            if not TEMP_NAME.match(path.name) or not os.path.lexists(path):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:  # makes the rename itself durable; some file systems refuse fsync on a folder
        _fsync(folder)
    except OSError:
        pass


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, fsync the result and rename it to ``path``; a failure leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "x"):  # created here with umask permissions; the writer reopens it
            pass
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):
            exc.filename = str(path)  # the file the user knows (a write error carries no name at all)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return atomic_write(path, write)


def atomic_write_json(path: Path, data: Any) -> Path:
    """Write JSON (UTF-8, indented, non-ASCII kept) atomically."""
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def atomic_write_csv(path: Path, df: "pd.DataFrame", for_spreadsheets: bool = False) -> Path:
    """Write a DataFrame as UTF-8 CSV without the index, atomically.

    ``for_spreadsheets`` neutralises text cells a spreadsheet would run as a formula (``sheet_safe``):
    for report files people open in Excel or Sheets, never for the submission, whose text must be exact.
    """
    out = spreadsheet_safe(df) if for_spreadsheets else df
    return atomic_write(path, lambda p: out.to_csv(p, index=False, encoding="utf-8"))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what Excel, LibreOffice and Sheets read as a formula


def sheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when it would start a formula (``=HYPERLINK(...)``); else unchanged."""
    return "'" + text if text.startswith(FORMULA_START) else text


def sheet_unsafe(text: str) -> str:
    """The original of a ``sheet_safe`` cell (reading a report file back)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def spreadsheet_safe(df: "pd.DataFrame") -> "pd.DataFrame":
    """A copy of ``df`` with every text cell passed through ``sheet_safe``."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    out = df.copy()
    for col in out.columns:
        if is_object_dtype(out[col]) or is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: sheet_safe(v) if isinstance(v, str) else v)
    return out


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(folder: Path) -> None:
    """Give every file under ``folder`` the permissions the umask gives new files (0644 under 022).

    Libraries that write through their own temp files (safetensors weights, for one) leave them
    owner-only (0600); checkpoints and models are outputs like any other, readable as the user expects.
    """
    mode = 0o666 & ~current_umask()
    for f in Path(folder).rglob("*"):
        if f.is_file() and not f.is_symlink() and (f.stat().st_mode & 0o777) != mode:
            f.chmod(mode)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    return sha256_file(path)[:16]


def json_digest(data: Any, length: Optional[int] = 16, compact: bool = False) -> str:
    """sha256 hex of ``data`` as canonical JSON (sorted keys; non-JSON values as str), cut to ``length``.

    The one hashing primitive of the pipeline. ``compact`` (no spaces, non-ASCII kept) is the form the
    augmentation journal has always keyed paid responses by; it must stay byte-stable.
    """
    if compact:
        text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    else:
        text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def stage_fingerprint(config_parts: dict[str, Any], inputs: Iterable[Path],
                      digest: Callable[[Path], str] = file_digest) -> str:
    """A stage's fingerprint: its config sections and the ``digest`` of each file or folder it reads (the manifest's
    ``fingerprint``; a rerun skips a stage whose fingerprint matches)."""
    digests = "".join(f"{Path(p).name}={digest(Path(p))}\n" for p in inputs if p is not None)
    h = hashlib.sha256(json.dumps(config_parts, sort_keys=True, default=str).encode())
    h.update(digests.encode())
    return h.hexdigest()[:16]
