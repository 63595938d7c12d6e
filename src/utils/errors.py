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
