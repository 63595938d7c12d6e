"""User-facing errors: one line each, exit code 2, no traceback."""
from __future__ import annotations

from typing import Any, Optional


class StageSkipped(Exception):
    """A stage that could not do its work, for a reason the user may remove (no API key): its outputs are
    written, the manifest records it ``skipped`` with ``reason`` (never ``done``), so ``--resume`` runs it again."""

    def __init__(self, reason: str, fields: Optional[dict[str, Any]] = None) -> None:
        self.reason = reason
        self.fields = fields or {}
        super().__init__(reason)


class UserError(Exception):
    """A problem the user can fix (bad config, bad data, missing file).

    ``problems`` holds one line per problem; each names the culprit (file, row, column or
    config key) and says what to do.
    """

    def __init__(self, *problems: str) -> None:
        self.problems = [p for p in problems if p]
        super().__init__("\n".join(self.problems))


_CONTROL = "".join(map(chr, [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F]))  # tab and newline stay
_ESCAPES = {ord(c): f"\\x{ord(c):02x}" for c in _CONTROL}


def printable(line: str) -> str:
    """``line`` safe to print: a NUL, escape code or carriage return from a user's file becomes ``\\xNN``."""
    return line.translate(_ESCAPES)


def shown(name: str) -> str:
    """A name from a user's file (an fname, a column) as an error line shows it: quoted with its escapes when it
    holds a control character or spaces at either end, else as it is."""
    return repr(name) if name != name.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name) else name
