"""Reading a CSV strictly: a file that parses into the wrong rows is refused, naming the line and the column.

Every reader of a user's CSV goes through here: the data splits (``src.data.loading``), the rule tables
(``src.data.tables``), predictions and references (``src.evaluation.files``), the tune stage's tables
(``src.inference.tuning_run``, ``src.inference.mbr``).

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

from src.utils.errors import UserError, shown

MAX_LISTED = 20


def decode_utf8(path: Path) -> str:
    """The file's text (a BOM dropped); UserError naming the line of the first byte that is not UTF-8."""
    raw = Path(path).read_bytes()
    # strip the BOM first so error offsets and line numbers count from the file's first byte after it
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        "re-save the file as UTF-8") from None


def read_csv_file(path: Path, label: str) -> pd.DataFrame:
    """A user's CSV file read strictly (``read_csv_strict``): every cell text, empty cells missing. A missing,
    empty or undecodable file is a UserError naming ``label`` (the flag or key that named the file) and the path."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{label} file not found: {path}")
    if not path.is_file():
        raise UserError(f"{label} path is not a file: {path}")
    text = decode_utf8(path)
    if not text.strip():
        raise UserError(f"{label} file {path} is empty: expected a CSV with a header row")
    return read_csv_strict(path, text)


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
        if "\x00" in name:
            problems.append(f"{path}: line 1: the header holds a NUL byte (an Excel lock file ~$..., or not a CSV); "
                            "pass the CSV itself, saved as plain text")
            break
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
                problems.append(f"{path}: line {line}: column {shown(name)} holds a NUL byte; re-save the file as plain text")
            elif row_start is not None and "\n" in cell and row_start.search(cell):
                found = row_start.search(cell)
                assert found is not None
                problems.append(f"{path}: line {line}: column {shown(name)} holds what looks like the start of another row "
                                f"({found.group(1)!r}): a stray quote (\") merged rows; remove it or write it as \"\"")
        if len(problems) >= MAX_LISTED:
            break
    return problems


def checked_records(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(first line, fields)]) of a CSV that passed every structural check; UserError listing the rest."""
    header, records = _records(path, text)
    problems = _header_problems(path, header) + _row_problems(path, header, records)
    if problems:
        raise UserError(*problems)
    return header, records


def read_csv_strict(path: Path, text: str) -> pd.DataFrame:
    """The CSV's rows as text columns (empty cells missing); UserError listing every structural problem."""
    header, records = checked_records(path, text)
    rows = [fields for _, fields in records if fields]
    df = pd.DataFrame(rows, columns=header, dtype=object) if header else pd.DataFrame()
    return df.mask(df == "")  # as pandas' na_values=[""]: an empty cell is missing

