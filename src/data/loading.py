"""Reading and checking one table of dialogues (fname, dialogue, summary).

``read_table`` reads CSV, JSON, JSONL or Parquet by extension; ``check_frame`` lists every problem
with a split, each naming file, row (and fname) and column. Where the rows come from (lists,
folders, hub datasets, column mapping) is ``src.data.sources``.
"""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Optional

import pandas as pd

from src.data.csvfile import decode_utf8, read_csv_strict
from src.utils.errors import UserError

log = logging.getLogger(__name__)

REQUIRED = {"train": ("fname", "dialogue", "summary"), "dev": ("fname", "dialogue", "summary"),
            "test": ("fname", "dialogue")}
SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")
MAX_LISTED = 20


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as Python strings, missing values kept missing (JSON numbers become text; lists and mappings,
    such as conversational turns, become JSON text)."""
    return df.map(_json_if_nested).astype("string").astype(object)


def _json_if_nested(value: object) -> object:
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays from parquet and datasets
        value = value.tolist()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    return value


def first_row_number(path: Path) -> int:
    """How messages number a file's first record: CSV by line (header is line 1), others from 1."""
    return 2 if Path(path).suffix.lower() not in (".json", ".jsonl", ".parquet") else 1


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV, JSON, JSONL or Parquet by extension (anything else as CSV), all columns as text."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check data.*_file and paths.data_dir")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return as_text(pd.read_parquet(path))
        text = decode_utf8(path)
        if suffix in (".jsonl", ".json"):
            return as_text(pd.read_json(io.StringIO(text), lines=suffix == ".jsonl", dtype=False))
        return read_csv_strict(path, text)
    except UserError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        # pyarrow's errors derive from ValueError/OSError; the first line says what is wrong
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: cannot be parsed as {suffix or 'csv'} ({first}); fix the file") from None


def check_frame(df: pd.DataFrame, path: Path | str, role: str, first_row: int = 2,
                names: Optional[dict[str, str]] = None, max_chars: int = 0) -> list[str]:
    """Problems with one split: required columns, unique fnames, non-empty text, dialogues within ``max_chars``.

    Rows are numbered from ``first_row`` (2 for CSV, whose line 1 is the header; 1 for records).
    ``names`` gives the source column behind a canonical one, so a mapped column is reported
    under the name the user sees in the file.
    """
    names = names or {}
    missing = [c for c in REQUIRED[role] if c not in df.columns]
    if missing:
        return [f"{path}: missing column(s) {', '.join(missing)} (the {role} split needs "
                f"{', '.join(REQUIRED[role])}; found {', '.join(map(str, df.columns))})"]
    if len(df) == 0:
        return [f"{path}: no rows; the {role} split must not be empty"]
    problems = []
    fnames = df["fname"].fillna("").astype(str).str.strip().reset_index(drop=True)
    fname_col = names.get("fname", "fname")
    for i in fnames.index[fnames == ""][:MAX_LISTED]:
        problems.append(f"{path}: row {i + first_row}: column {fname_col} is empty; give every row a unique id")
    dup = fnames[fnames.duplicated(keep="first") & (fnames != "")]
    for i, name in list(dup.items())[:MAX_LISTED]:
        problems.append(f"{path}: row {i + first_row} ({fname_col} {name}): duplicate fname; ids must be unique")
    for col in REQUIRED[role][1:]:
        empty = (df[col].fillna("").astype(str).str.strip() == "").reset_index(drop=True)
        for i in empty.index[empty][:MAX_LISTED]:
            problems.append(f"{path}: row {i + first_row} (fname {fnames[i]}): column {names.get(col, col)} "
                            "is empty; fill it or drop the row")
        if empty.sum() > MAX_LISTED:
            problems.append(f"{path}: ... {int(empty.sum()) - MAX_LISTED} more rows with an empty {names.get(col, col)}")
    return problems + _too_long(df, path, first_row, fnames, names.get("dialogue", "dialogue"), max_chars)


def _too_long(df: pd.DataFrame, path: Path | str, first_row: int, fnames: pd.Series, column: str,
              max_chars: int) -> list[str]:
    """Dialogues over ``data.max_dialogue_chars``: in dev or test a row cannot be dropped, so it is an error."""
    if not max_chars:
        return []
    lengths = df["dialogue"].fillna("").astype(str).str.len().reset_index(drop=True)
    return [f"{path}: row {i + first_row} (fname {fnames[i]}): column {column} has {lengths[i]:,} characters, more "
            f"than data.max_dialogue_chars={max_chars:,}; check the row (a broken export?) or raise that key"
            for i in lengths.index[lengths > max_chars][:MAX_LISTED]]


def load_split(path: Path, role: str) -> pd.DataFrame:
    """Read and check one canonical split file; raise UserError listing every problem."""
    df = read_table(path)
    problems = check_frame(df, path, role, first_row_number(path))
    if problems:
        raise UserError(*problems)
    df["fname"] = df["fname"].astype(str).str.strip()
    return df

