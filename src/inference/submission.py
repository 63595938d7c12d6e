"""The submission file: ``fname,summary`` in test order, validated before it replaces anything."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from src.utils.io import atomic_write_csv


def check_submission(pred: pd.DataFrame, test_df: pd.DataFrame) -> list[str]:
    """Problems that would make the file unusable: ids, order, row count, empty summaries."""
    if list(pred.columns) != ["fname", "summary"]:
        return [f"columns are {list(pred.columns)}, expected ['fname', 'summary']"]
    problems = []
    if len(pred) != len(test_df):
        problems.append(f"{len(pred)} rows for {len(test_df)} test dialogues")
    elif pred["fname"].astype(str).tolist() != test_df["fname"].astype(str).tolist():
        problems.append("fnames differ from the test file or are out of order")
    empty = pred["summary"].fillna("").astype(str).str.strip() == ""
    if empty.any():
        problems.append(f"{int(empty.sum())} empty summaries (first fname {pred.loc[empty, 'fname'].iloc[0]})")
    return problems


def write_submission(pred: pd.DataFrame, test_df: pd.DataFrame, path: Path) -> Path:
    """Validate, then write atomically; an invalid frame raises and leaves any old file in place."""
    problems = check_submission(pred, test_df)
    if problems:
        raise RuntimeError("submission not written: " + "; ".join(problems))
    return atomic_write_csv(Path(path), pred[["fname", "summary"]])
