"""Shared loader for the small CSV rule tables kept under ``docs/`` (denoise, typo rules)."""
from __future__ import annotations

import csv
from pathlib import Path

from src.errors import UserError


def read_rule_table(
    path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[tuple[int, dict[str, str]]]:
    """Read a CSV rule table and return ``(line_number, row)`` pairs.

    ``line_number`` is the 1-based line in the file (the header is line 1), so error messages
    can point the user at the exact row. Cells are returned as written (not stripped), because a
    leading or trailing space can be part of a regex or a replacement. Missing optional cells
    come back as ``""``. Raises ``UserError`` for a missing file, a missing required column or
    an unknown column.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: rule table not found; check the path in the config.")
    # utf-8-sig: tables edited in spreadsheet programs often gain a BOM.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        _check_header(path, header, required, optional)
        reader.fieldnames = header
        rows = []
        for row in reader:
            if not any((v or "").strip() for k, v in row.items() if k is not None):
                continue  # blank line
            clean = {col: row.get(col) or "" for col in (*required, *optional)}
            rows.append((reader.line_num, clean))
    return rows


def _check_header(
    path: Path, header: list[str], required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    """Raise one ``UserError`` listing every missing or unknown column."""
    problems = [
        f"{path}: missing column '{col}' (expected columns: {', '.join(required + optional)})."
        for col in required
        if col not in header
    ]
    problems += [
        f"{path}: unknown column '{col}'; allowed: {', '.join(required + optional)}."
        for col in header
        if col not in required and col not in optional
    ]
    if problems:
        raise UserError(*problems)
