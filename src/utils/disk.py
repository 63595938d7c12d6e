"""A full disk, whichever library hit it: one line that names the folder or file, the free space and the space needed.

Python raises ``OSError(ENOSPC)``; the tokenizers library (Rust) raises a plain
``Exception("No space left on device (os error 28)")``, so the message is checked too, along the
exception's chain.
"""
from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Optional

from src.utils.io import TEMP_NAME

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
DISK_FULL_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122")


def is_disk_full(exc: Optional[BaseException]) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk or the quota is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(exc) for text in DISK_FULL_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def written_file(exc: Optional[BaseException]) -> Optional[Path]:
    """The file an OSError along ``exc``'s chain names (a temp file of an atomic write as the file it stands for)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.filename:
            path = Path(str(exc.filename))
            if TEMP_NAME.match(path.name):  # .NAME.<12 hex>.tmp -> NAME
                path = path.with_name(path.name[1:].rsplit(".", 2)[0])
            return path
        exc = exc.__cause__ or exc.__context__
    return None


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def human(n: int) -> str:
    """Bytes as a short figure (``1.5 GB``)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def free_bytes(path: Path) -> int:
    """Free bytes on the device of ``path`` (its nearest existing folder)."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def disk_full_line(stage: str, where: Path, needed: Optional[int], key: str) -> str:
    """The one line a full disk gives: what could not be written, free (and needed) space, the fix."""
    need = f", and a checkpoint there takes about {human(needed)}" if needed else ""
    return (f"stage {stage}: cannot write {where}: No space left on device ({human(free_bytes(where))} free{need}); "
            f"free space there (or set {key} to a folder on a larger disk), then rerun with --resume (finished stages "
            "and complete checkpoints are kept)")
