"""What a finished run hands its trackers (``src.tracking``): the final dev metrics and the run's tables.

Read from the run's own files, so a resumed run that reused every stage logs the same things:
``metrics.json`` and the interval of its final over ``scores.csv`` (the evaluate stage), ``tuning.csv`` and the
choice against the baseline (tune), the augment stage's ledger and counts (manifest) and ``dev_predictions.csv``
joined with the dev references.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.context import RunContext
from src.data.loading import read_table
from src.evaluation.files import read_scored_csv
from src.utils.errors import UserError

log = logging.getLogger(__name__)

METRICS = ("rouge1", "rouge2", "rougeL", "final")


def interval_scalars(run_dir: Path, tune: dict[str, Any]) -> dict[str, float]:
    """The dev final's 95% bootstrap interval over the rows of ``scores.csv`` (``dev/final_ci_low``,
    ``dev/final_ci_high``) and the tune stage's choice against its baseline (``tune/diff``, ``tune/ci_low``,
    ``tune/ci_high``, ``tune/chose_baseline``); {} for what the run did not write."""
    from src.evaluation import read_scored_csv
    from src.evaluation.paired import mean_interval

    found: dict[str, float] = {}
    scores = run_dir / "scores.csv"
    if scores.is_file():
        try:
            finals = [float(v) for v in read_scored_csv(scores, "scores")["final"]]
        except (UserError, KeyError, ValueError):
            finals = []
        if finals:
            interval = mean_interval(finals)
            found.update({"dev/final_ci_low": interval.low, "dev/final_ci_high": interval.high})
    if "chosen_is_baseline" in tune:
        found["tune/chose_baseline"] = float(bool(tune["chosen_is_baseline"]))
        found.update({f"tune/{k}": float(tune[k]) for k in ("diff", "ci_low", "ci_high") if k in tune})
    return found


def final_metrics(run_dir: Path) -> dict[str, float]:
    """``dev/rouge1`` ... ``dev/final`` from ``metrics.json`` ({} when the evaluate stage wrote none)."""
    path = run_dir / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {f"dev/{k}": float(data[k]) for k in METRICS if isinstance(data.get(k), (int, float))}


def ledger_table(entry: dict[str, Any]) -> Optional[pd.DataFrame]:
    """The augment stage's counts and API ledger as (key, value) rows, or None when it did not run."""
    stats = entry.get("stats")
    if not isinstance(stats, dict):
        return None
    flat = {k: v for k, v in stats.items() if k != "ledger"}
    for key, value in (stats.get("ledger") or {}).items():
        flat[f"ledger.{key}"] = value
    return pd.DataFrame({"key": list(flat), "value": [json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list))
                                                      else str(v) for v in flat.values()]})


def predictions_table(predictions: Path, references: Optional[Path], n: int) -> Optional[pd.DataFrame]:
    """The first ``n`` dev predictions beside their dialogue and reference summary, or None without predictions."""
    if not predictions.is_file():
        return None
    try:
        pred = read_scored_csv(predictions, "dev predictions").head(n)
        refs = read_scored_csv(references, "dev references") if references is not None and references.is_file() else None
    except UserError as err:
        log.warning("tracking: predictions table left out (%s)", err.problems[0])
        return None
    pred = pred.rename(columns={"summary": "prediction"})[["fname", "prediction"]]
    if refs is None or "summary" not in refs.columns:
        return pred
    refs = refs.rename(columns={"summary": "reference"})[["fname", "dialogue", "reference"]]
    return pred.merge(refs, on="fname", how="left")[["fname", "dialogue", "prediction", "reference"]]


def final_records(ctx: RunContext, samples: int) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """(final dev metrics, tables by name: tuning, augmentation_ledger, predictions) of a finished run."""
    tables: dict[str, pd.DataFrame] = {}
    tuning = ctx.run_dir / "tuning.csv"
    if tuning.is_file():
        try:
            tables["tuning"] = read_table(tuning).fillna("")
        except UserError as err:
            log.warning("tracking: tuning table left out (%s)", err.problems[0])
    ledger = ledger_table(ctx.manifest.entry("augment"))
    if ledger is not None:
        tables["augmentation_ledger"] = ledger
    predictions = predictions_table(ctx.run_dir / "dev_predictions.csv", ctx.upstream("preprocess", "dev"), samples)
    if predictions is not None:
        tables["predictions"] = predictions
    return {**final_metrics(ctx.run_dir), **interval_scalars(ctx.run_dir, ctx.manifest.entry("tune"))}, tables
