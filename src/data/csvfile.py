"""Reading a CSV strictly: a file that parses into the wrong rows is refused, naming the line and the column.

pandas reads a stray quote as the start of a quoted field that runs on to the next quote, silently
merging the rows in between (a test row vanishes), and renames duplicate headers (``summary.1``).
Here the csv module parses in strict mode; then every record must have the header's number of
fields, the header no repeated name, no cell a NUL byte, and no multi-line cell a line that starts
like another row of the file (its id shape followed by a comma), which is what a merge looks like.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
import pandas as pd

from src.errors import UserError

MAX_LISTED = 20


def id_shape(cell: str) -> str:
    """An id with its digits generalised: ``test_12`` -> ``test_\\d+`` (a regex)."""
    return re.escape(re.sub(r"\d+", "0", cell)).replace("0", r"\d+")


def _records(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(first line, fields)]) parsed in strict mode; a parse error names its line."""
    csv.field_size_limit(1 << 30)  # the 128 KiB default would hide an over-long cell; data.max_dialogue_chars names it
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
        records, start = [], reader.line_num + 1
        for fields in reader:
            records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise UserError(f"{path}: line {reader.line_num}: not valid CSV ({exc}); a stray quote (\") there probably "
                        "opens a field that swallows the rows after it: remove it or write it as \"\"") from None
    return header, records


def _header_problems(path: Path, header: list[str]) -> list[str]:
    seen, problems = set(), []
    for name in header:
        if name in seen:
            problems.append(f"{path}: line 1: column {name!r} appears more than once in the header; rename or drop "
                            "the duplicate (it would be read as another column silently)")
        seen.add(name)
    return problems


def _row_problems(path: Path, header: list[str], records: list[tuple[int, list[str]]]) -> list[str]:
    shapes = {id_shape(f[0]) for _, f in records if f and f[0].strip()}
    row_start = re.compile(r"\n(" + "|".join(sorted(shapes)) + r"),") if 0 < len(shapes) <= 5 else None
    problems = []
    for line, fields in records:
        if fields and len(fields) != len(header):
            problems.append(f"{path}: line {line}: {len(fields)} fields where the header has {len(header)}; "
                            "quote cells that contain commas (or fix a stray quote)")
            continue
        for name, cell in zip(header, fields):
            if "\x00" in cell:
                problems.append(f"{path}: line {line}: column {name} holds a NUL byte; re-save the file as plain text")
            elif row_start is not None and "\n" in cell and row_start.search(cell):
                found = row_start.search(cell)
                assert found is not None
                problems.append(f"{path}: line {line}: column {name} holds what looks like the start of another row "
                                f"({found.group(1)!r}): a stray quote (\") merged rows; remove it or write it as \"\"")
        if len(problems) >= MAX_LISTED:
            break
    return problems


def read_csv_strict(path: Path, text: str) -> pd.DataFrame:
    """The CSV's rows as text columns (empty cells missing); UserError listing every structural problem."""
    header, records = _records(path, text)
    problems = _header_problems(path, header) + _row_problems(path, header, records)
    if problems:
        raise UserError(*problems)
    rows = [fields for _, fields in records if fields]
    df = pd.DataFrame(rows, columns=header, dtype=object) if header else pd.DataFrame()
    return df.mask(df == "")  # as pandas' na_values=[""]: an empty cell is missing

