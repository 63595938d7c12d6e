"""Two prediction files scored on the same dialogues and paired by fname: the core of ``python -m src.compare``
and of the evaluate stage's comparison with the single decode (MBR or an ensemble against this run's main decode).

Both are scored exactly as ``python -m src.evaluate`` scores them (``score_frames``: same scorer, tokenizer and
reference averaging); the difference A - B is the mean of the per-dialogue differences with a percentile bootstrap
interval over dialogues (``src.evaluation.paired``).
"""
from __future__ import annotations

import math
from typing import Any, Collection

import pandas as pd

from src.evaluation.files import PathLike, read_scored_csv
from src.evaluation.paired import intervals, split_agreement, verdict
from src.evaluation.scoring import score_frames
from src.utils.errors import UserError

METRICS = ("final", "rouge1", "rouge2", "rougeL")


def _read(path: PathLike, label: str) -> tuple[Any, list[str]]:
    try:
        return read_scored_csv(path, label), []
    except UserError as err:
        return None, err.problems


def score_pair(pred_a: PathLike, pred_b: PathLike, ref: PathLike, tokenizer: str,
               exclude: Collection[str] = ()) -> tuple[dict, dict, Any]:
    """Score both files as src.evaluate does; (metrics A, metrics B, per-dialogue frame in the references' order
    with ``<metric>_a``, ``<metric>_b``, ``<metric>_diff`` and the texts). Every problem of both files at once."""
    (a, pa), (b, pb), (r, pr) = _read(pred_a, "predictions A"), _read(pred_b, "predictions B"), _read(ref, "references")
    problems = pa + pb + pr
    if problems:
        raise UserError(*problems)
    if exclude:
        a, b, r = (df[~df["fname"].astype(str).str.strip().isin(set(exclude))] for df in (a, b, r))
    scored = []
    for frame, name in ((a, pred_a), (b, pred_b)):
        try:
            scored.append(score_frames(frame, r, tokenizer, pred_name=str(name), ref_name=str(ref)))
        except UserError as err:
            problems += err.problems
    if problems:
        raise UserError(*dict.fromkeys(problems))  # a references problem is found twice: say it once
    (metrics_a, rows_a), (metrics_b, rows_b) = scored
    order = pd.DataFrame({"fname": r["fname"].astype(str).str.strip().tolist()})
    texts = [c for c in rows_a.columns if c not in METRICS and c not in ("fname", "prediction")]
    rows = order.merge(rows_a[["fname", *METRICS, "prediction", *texts]], on="fname", how="left")
    rows = rows.merge(rows_b[["fname", *METRICS, "prediction"]], on="fname", how="left", suffixes=("_a", "_b"))
    for metric in METRICS:
        rows[f"{metric}_diff"] = rows[f"{metric}_a"] - rows[f"{metric}_b"]
    return metrics_a, metrics_b, rows


def summarize_pair(metrics_a: dict, metrics_b: dict, rows: Any, resamples: int, seed: int) -> dict:
    """The JSON object: n, final_a, final_b, diff, ci_low, ci_high, p_a_better, split_agreement, verdict, and the
    same per ROUGE metric (F1 in [0, 1]) under ``metrics``."""
    found = intervals(rows[[f"{m}_diff" for m in METRICS]].to_numpy(), resamples, seed)
    by_metric = dict(zip(METRICS, found))
    final = by_metric["final"]
    agreement = split_agreement(rows["final_diff"].to_numpy(), resamples, seed)
    result = {"n": int(len(rows)), "final_a": metrics_a["final"], "final_b": metrics_b["final"], "diff": final.mean,
              "ci_low": final.low, "ci_high": final.high, "p_a_better": final.p_above,
              "split_agreement": None if math.isnan(agreement) else agreement,
              "not_sure": final.contains_zero, "verdict": verdict(final), "resamples": resamples, "seed": seed,
              "metrics": {m: {"a": metrics_a[m], "b": metrics_b[m], "diff": i.mean, "ci_low": i.low,
                              "ci_high": i.high, "p_a_better": i.p_above}
                          for m, i in by_metric.items() if m != "final"}}
    return result
