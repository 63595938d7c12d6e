"""Score a predictions CSV against a references CSV, optionally writing the report files."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Collection, Optional, Union

import pandas as pd

from src.data.csvfile import read_csv_file
from src.utils.errors import UserError
from src.evaluation.morphemes import DEFAULT_TOKENIZER, TOKENIZERS
from src.utils.io import sheet_unsafe
from src.evaluation.report import write_report
from src.evaluation.scoring import score_frames

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


def _missing_file(path: Path, label: str) -> Optional[str]:
    if not path.exists():
        return f"{label} file not found: {path}"
    if not path.is_file():
        return f"{label} path is not a file: {path}"
    return None


def read_scored_csv(path: PathLike, label: str) -> pd.DataFrame:
    """A predictions or references CSV, read strictly (``src.data.csvfile``: one line per problem naming the
    file, line and column), every cell text.

    Empty cells read as ``""``; strings such as ``NA`` or ``None`` stay text (they could be a model's
    output); a leading ``'`` that report files put before a formula-like cell is taken off again.
    """
    return read_csv_file(Path(path), label).fillna("").map(sheet_unsafe)


def evaluate_files(
    pred_path: PathLike, ref_path: PathLike, tokenizer: str = DEFAULT_TOKENIZER, out_dir: Optional[PathLike] = None,
    exclude: Collection[str] = (), extra: Optional[dict] = None,
) -> dict:
    """Score ``pred_path`` (fname,summary) against ``ref_path``, matched by fname.

    ``exclude`` names fnames left out of both (the tune stage's tuning rows). With ``out_dir``,
    also writes scores.csv, metrics.json, report.md and score_hist.png there (``extra`` joins the
    provenance lines of metrics.json and the report: the checkpoint, the rl stage's SFT-vs-RL scores).
    Returns ``{"rouge1", "rouge2", "rougeL", "final", "n"}``.
    """
    problems = [_missing_file(Path(p), label) for p, label in ((pred_path, "predictions"), (ref_path, "references"))]
    if tokenizer not in TOKENIZERS:
        problems.append(f"unknown tokenizer {tokenizer!r}: choose one of {', '.join(TOKENIZERS)}")
    if any(problems):
        raise UserError(*[p for p in problems if p])
    pred = read_scored_csv(pred_path, "predictions")
    ref = read_scored_csv(ref_path, "references")
    if exclude:
        pred, ref = (df[~df["fname"].str.strip().isin(set(exclude))] for df in (pred, ref))
    metrics, per_row = score_frames(pred, ref, tokenizer, pred_name=str(pred_path), ref_name=str(ref_path))
    log.info("scored %d dialogue(s) with %s tokens: final %.4f", metrics["n"], tokenizer, metrics["final"])
    if out_dir is not None:
        provenance = {"tokenizer": tokenizer, "predictions": str(pred_path), "references": str(ref_path),
                      **({"excluded_tuning_rows": len(set(exclude))} if exclude else {}), **(extra or {})}
        written = write_report(out_dir, {**metrics, **provenance}, per_row)
        log.info("wrote %s", ", ".join(written.values()))
    return metrics
