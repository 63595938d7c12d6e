"""Competition score: ROUGE-1/2/L F1 averaged over references, final = 100 x their mean."""
from __future__ import annotations

import logging
import re
from typing import Any, Sequence, Union

import pandas as pd

from src.utils.errors import UserError, shown
from src.evaluation.morphemes import DEFAULT_TOKENIZER, TOKENIZERS, as_text, prepare_texts
from src.evaluation.rouge_compat import ZERO, Scores, rouge_f1

log = logging.getLogger(__name__)

METRIC_KEYS = ("rouge1", "rouge2", "rougeL")
PREDICTION_COLUMN = "summary"  # the submission format: fname,summary
LISTED_AT_MOST = 20  # fnames named in one error line before "(+N more)"


def _usable_references(row: Sequence[Any]) -> list[str]:
    # A blank reference among several is a missing one, not a reference to match.
    texts = [as_text(text) for text in row]
    return [text for text in texts if text.strip()] or texts[:1]


def score_rows(
    predictions: Sequence[Any], references: Sequence[Union[str, Sequence[Any]]], tokenizer: str = DEFAULT_TOKENIZER
) -> list[Scores]:
    """Per-row (ROUGE-1, ROUGE-2, ROUGE-L) F1, each averaged over that row's references.

    A blank or NaN prediction scores 0; so does a row whose references are all blank.
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference rows")
    preds = [as_text(text) for text in predictions]
    refs = [_usable_references([row] if isinstance(row, str) else row) for row in references]
    flat = preds + [text for row in refs for text in row]
    prepared = iter(prepare_texts(flat, tokenizer))
    prepared_preds = [next(prepared) for _ in preds]
    scores = []
    for raw, hyp, row in zip(preds, prepared_preds, refs):
        pairs = [rouge_f1(hyp, next(prepared)) for _ in row]
        blank = not raw.strip() or not any(text.strip() for text in row)
        mean = [sum(p[k] for p in pairs) / len(pairs) for k in range(3)]
        scores.append(ZERO if blank else (mean[0], mean[1], mean[2]))
    return scores


def summarize(rows: Sequence[Scores]) -> dict:
    """Mean of each metric over rows, ``final`` = 100 x mean of the three, and ``n``."""
    n = len(rows)
    means = [sum(row[k] for row in rows) / n if n else 0.0 for k in range(3)]
    metrics: dict[str, Any] = dict(zip(METRIC_KEYS, means))
    metrics["final"] = 100.0 * sum(means) / 3
    metrics["n"] = n
    return metrics


def score_texts(
    predictions: list[str], references: list[list[str]], tokenizer: str = DEFAULT_TOKENIZER
) -> dict:
    """Score predictions against 1..N references per row (lists aligned by position).

    Returns ``{"rouge1", "rouge2", "rougeL", "final", "n"}``: F1 values in [0, 1], ``final``
    = 100 x their mean. Used by training-time evaluation, where rows are already aligned.
    """
    return summarize(score_rows(predictions, references, tokenizer))


def reference_columns(frame: pd.DataFrame) -> list[str]:
    """``summary1..summaryN`` in numeric order when present, else ``summary``, else none."""
    numbered = [c for c in frame.columns if re.fullmatch(r"summary\d+", str(c))]
    if numbered:
        return sorted(numbered, key=lambda c: int(str(c)[len("summary"):]))
    return ["summary"] if "summary" in frame.columns else []


def _listing(names: Sequence[str]) -> str:
    listed = ", ".join(map(shown, names[:LISTED_AT_MOST]))
    hidden = len(names) - LISTED_AT_MOST
    return f"{listed} (+{hidden} more)" if hidden > 0 else listed


def _column_problems(pred: pd.DataFrame, ref: pd.DataFrame, pred_name: str, ref_name: str) -> list[str]:
    problems = []
    if "fname" not in pred.columns or PREDICTION_COLUMN not in pred.columns:
        problems.append(
            f"{pred_name}: needs columns 'fname' and '{PREDICTION_COLUMN}' (the submission format); "
            f"found {list(pred.columns)}"
        )
    if "fname" not in ref.columns or not reference_columns(ref):
        problems.append(
            f"{ref_name}: needs columns 'fname' and 'summary' (or 'summary1..summaryN'); "
            f"found {list(ref.columns)}"
        )
    return problems


def _fname_problems(pred_ids: pd.Series, ref_ids: pd.Series, pred_name: str, ref_name: str) -> list[str]:
    problems = []
    for ids, name in ((pred_ids, pred_name), (ref_ids, ref_name)):
        duplicated = ids[ids.duplicated()].unique().tolist()
        if duplicated:
            problems.append(f"{name}: {len(duplicated)} fname(s) appear more than once: {_listing(duplicated)}")
    pred_set, ref_set = set(pred_ids), set(ref_ids)
    missing = [f for f in ref_ids.drop_duplicates() if f not in pred_set]
    extra = [f for f in pred_ids.drop_duplicates() if f not in ref_set]
    if missing:
        problems.append(f"{pred_name}: no prediction for {len(missing)} fname(s) of {ref_name}: {_listing(missing)}")
    if extra:
        problems.append(f"{pred_name}: {len(extra)} fname(s) not in {ref_name}: {_listing(extra)}")
    if ref_ids.empty:
        problems.append(f"{ref_name}: no rows to score")
    return problems


def _fnames(frame: pd.DataFrame, name: str = "") -> pd.Series:
    # Stray spaces around an id are a formatting accident, not a different dialogue: matched without them, with a
    # warning, since the leaderboard matches fnames exactly
    raw = frame["fname"].map(as_text).reset_index(drop=True)
    ids = raw.str.strip()
    padded = raw[raw != ids].tolist()
    if padded:
        log.warning("%s: %d fname(s) have spaces at either end (%s); matched without them here, but the leaderboard "
                    "matches fnames exactly: remove the spaces in the file", name or "fname column", len(padded),
                    _listing(padded))
    return ids


def per_row_frame(ids: pd.Series, scores: list[Scores], texts: dict[str, list[str]]) -> pd.DataFrame:
    """One row per dialogue: fname, the three F1s, final (0-100) and the texts, worst first."""
    frame = pd.DataFrame({"fname": ids})
    for k, key in enumerate(METRIC_KEYS):
        frame[key] = [row[k] for row in scores]
    frame["final"] = 100.0 * frame[list(METRIC_KEYS)].mean(axis=1)
    for column, values in texts.items():
        frame[column] = values
    return frame.sort_values(["final", "fname"], kind="mergesort").reset_index(drop=True)


def _warn_blanks(predictions: list[str], references: list[list[str]], pred_name: str, ref_name: str) -> None:
    blank_preds = sum(not text.strip() for text in predictions)
    blank_refs = sum(not any(text.strip() for text in row) for row in references)
    if blank_preds:
        log.warning("%s: %d blank prediction(s) scored 0", pred_name, blank_preds)
    if blank_refs:
        log.warning("%s: %d row(s) with no non-blank reference scored 0", ref_name, blank_refs)


def score_frames(
    pred: pd.DataFrame,
    ref: pd.DataFrame,
    tokenizer: str = DEFAULT_TOKENIZER,
    pred_name: str = "predictions",
    ref_name: str = "references",
) -> tuple[dict, pd.DataFrame]:
    """Match predictions to references by ``fname`` and score them.

    ``pred`` needs ``fname,summary``; ``ref`` needs ``fname`` and ``summary`` or
    ``summary1..summaryN``. Every problem (missing column, missing, extra or duplicated fname)
    is collected into one ``UserError`` naming ``pred_name``/``ref_name``. Returns the metrics
    and the per-row frame sorted worst first.
    """
    if tokenizer not in TOKENIZERS:
        raise UserError(f"unknown tokenizer {tokenizer!r}: choose one of {', '.join(TOKENIZERS)}")
    problems = _column_problems(pred, ref, pred_name, ref_name)
    if problems:
        raise UserError(*problems)
    pred_ids, ref_ids = _fnames(pred, pred_name), _fnames(ref, ref_name)
    problems = _fname_problems(pred_ids, ref_ids, pred_name, ref_name)
    if problems:
        raise UserError(*problems)
    by_fname = dict(zip(pred_ids, pred[PREDICTION_COLUMN].map(as_text)))
    predictions = [by_fname[f] for f in ref_ids]
    columns = reference_columns(ref)
    references = ref[columns].map(as_text).values.tolist()
    scores = score_rows(predictions, references, tokenizer)
    names = ["reference"] if len(columns) == 1 else [f"reference{i}" for i in range(1, len(columns) + 1)]
    texts = {"prediction": predictions, **{n: ref[c].map(as_text).tolist() for n, c in zip(names, columns)}}
    if "dialogue" in ref.columns:
        texts["dialogue"] = ref["dialogue"].map(as_text).tolist()
    _warn_blanks(predictions, references, pred_name, ref_name)
    return summarize(scores), per_row_frame(ref_ids, scores, texts)
