"""Shared loader for the small CSV rule tables kept under ``docs/`` (denoise, typo rules), read strictly."""
from __future__ import annotations

from pathlib import Path

from src.data.csvfile import checked_records, decode_utf8
from src.utils.errors import UserError


def read_rule_table(
    path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[tuple[int, dict[str, str]]]:
    """Read a CSV rule table and return ``(line_number, row)`` pairs.

    The file goes through the strict reader (``src.data.csvfile``): a stray quote that would merge
    rows, a row with the wrong number of fields or a repeated header is refused, naming the line.
    ``line_number`` is the 1-based line in the file (the header is line 1), so error messages
    can point the user at the exact row. Cells are returned as written (not stripped), because a
    leading or trailing space can be part of a regex or a replacement. Missing optional cells
    come back as ``""``. Raises ``UserError`` for a missing file, a missing required column or
    an unknown column.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: rule table not found; check the path in the config.")
    header, records = checked_records(path, decode_utf8(path))  # a BOM from a spreadsheet program is dropped
    header = [h.strip() for h in header]
    _check_header(path, header, required, optional)
    rows = []
    for line, fields in records:
        row = dict(zip(header, fields))
        if not any(v.strip() for v in row.values()):
            continue  # blank line
        rows.append((line, {col: row.get(col) or "" for col in (*required, *optional)}))
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
