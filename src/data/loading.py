"""Reading and checking the competition files (fname, dialogue, summary).

Every problem is collected and reported together, each naming file, row (fname) and column.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd

from src.errors import UserError

log = logging.getLogger(__name__)

REQUIRED = {"train": ("fname", "dialogue", "summary"), "dev": ("fname", "dialogue", "summary"),
            "test": ("fname", "dialogue")}


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        "re-save the file as UTF-8") from None


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV, JSON, JSONL or Parquet by extension, all columns as strings (NaN kept)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check data.*_file and paths.data_dir")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path).astype("string").astype(object)
        text = _decode(path)
        if suffix == ".jsonl":
            return pd.read_json(io.StringIO(text), lines=True, dtype=False).astype("string").astype(object)
        if suffix == ".json":
            return pd.read_json(io.StringIO(text), dtype=False).astype("string").astype(object)
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except UserError:
        raise
    except (ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: cannot be parsed as {suffix or 'csv'} ({str(exc).splitlines()[0]}); fix the file") from None


def check_frame(df: pd.DataFrame, path: Path, role: str) -> list[str]:
    """Problems with one split: required columns, unique fnames, non-empty text."""
    problems = []
    missing = [c for c in REQUIRED[role] if c not in df.columns]
    if missing:
        return [f"{path}: missing column(s) {', '.join(missing)} (the {role} split needs "
                f"{', '.join(REQUIRED[role])}; found {', '.join(map(str, df.columns))})"]
    if len(df) == 0:
        return [f"{path}: no rows; the {role} split must not be empty"]
    fnames = df["fname"].fillna("").astype(str).str.strip()
    for i in df.index[fnames == ""][:20]:
        problems.append(f"{path}: row {i + 2}: column fname is empty; give every row a unique id")
    dup = fnames[fnames.duplicated(keep="first") & (fnames != "")]
    for i, name in list(dup.items())[:20]:
        problems.append(f"{path}: row {i + 2} (fname {name}): duplicate fname; ids must be unique")
    for col in REQUIRED[role][1:]:
        empty = df[col].fillna("").astype(str).str.strip() == ""
        for i in df.index[empty][:20]:
            problems.append(f"{path}: row {i + 2} (fname {fnames[i]}): column {col} is empty; fill it or drop the row")
        if empty.sum() > 20:
            problems.append(f"{path}: ... {int(empty.sum()) - 20} more rows with an empty {col}")
    return problems


def load_split(path: Path, role: str) -> pd.DataFrame:
    """Read and check one split; raise UserError listing every problem."""
    df = read_table(path)
    problems = check_frame(df, path, role)
    if problems:
        raise UserError(*problems)
    df["fname"] = df["fname"].astype(str).str.strip()
    return df


def check_files(files: dict[str, tuple[Path, str]]) -> list[str]:
    """Check several splits ({name: (path, role)}); return every problem found."""
    problems: list[str] = []
    for path, role in files.values():
        try:
            problems += check_frame(read_table(path), path, role)
        except UserError as exc:
            problems += exc.problems
    return problems
