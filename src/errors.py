"""User-facing errors: one line each, exit code 2, no traceback."""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad config, bad data, missing file).

    ``problems`` holds one line per problem; each names the culprit (file, row, column or
    config key) and says what to do.
    """

    def __init__(self, *problems: str) -> None:
        self.problems = [p for p in problems if p]
        super().__init__("\n".join(self.problems))
