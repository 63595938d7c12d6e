"""What the infer stage does: predict dev and test with one predictor, journaled, and write the files.

Each finished batch goes to a journal next to its output; a rerun under the same settings reuses
those rows and predicts only the rest. The journals are removed once every output is written.
When MBR or ``inference.ensemble_from`` changes the dev predictions, this run's main decode of dev (candidate 0,
before MBR and the ensemble) is written too (``dev_predictions_single``), so the evaluate stage can say whether the
change helped; under MBR it comes from the journal's ``single`` field.
Everything here takes the resolved ``InferenceSettings`` (``src.inference.settings``) and plain paths; the
stage (``src.stages.infer``) reads the run's context and calls ``predict_splits``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config
from src.config.deciding import MANIFEST_KEYS, inference_values
from src.data.loading import load_split
from src.inference.backends import engine_record
from src.inference.batching import BatchProgress, GenerationStats
from src.inference.factory import load_predictor
from src.inference.journal import PredictionJournal, journal_path, prediction_key
from src.inference.mbr import MbrPredictor, candidate_runs
from src.inference.settings import InferenceSettings
from src.inference.submission import write_submission
from src.utils.io import atomic_write_csv

log = logging.getLogger(__name__)


def predict_journaled(predictor: Any, df: pd.DataFrame, journal: PredictionJournal) -> pd.DataFrame:
    """``fname,summary`` for ``df`` in its order: journaled rows reused, the rest predicted and journaled per batch."""
    todo = df[~df["fname"].isin(journal.done)]
    if len(todo) < len(df):
        log.info("%s: %d of %d summaries taken from the journal; predicting %d", journal.path.name,
                 len(df) - len(todo), len(df), len(todo))
    if len(todo):
        progress = BatchProgress(len(todo), f"infer {journal.path.name.split('.')[0]}")

        def finished(fnames: list[str], summaries: list[str]) -> None:
            journal.append(fnames, summaries, predictor.last_main if isinstance(predictor, MbrPredictor) else None)
            progress.update(len(fnames))

        predictor.predict_dataframe(todo, on_batch=finished)
    return pd.DataFrame({"fname": df["fname"].tolist(), "summary": [journal.done[f] for f in df["fname"]]})


def _predict_split(settings: InferenceSettings, predictor: Any, df: pd.DataFrame, split_file: Path,
                   output: Path) -> tuple[pd.DataFrame, PredictionJournal, dict[str, Any]]:
    """Predict one split under a fresh stats counter; return predictions, its journal and its figures."""
    runs = getattr(predictor, "runs", None)  # MBR: the candidate runs decide the summaries too
    assert settings.checkpoint is not None
    journal = PredictionJournal(journal_path(output), prediction_key(settings.cfg, settings.checkpoint, split_file,
                                                                    settings.pool, runs))
    reused = int(df["fname"].isin(journal.done).sum())
    predictor.stats = GenerationStats()
    pred = predict_journaled(predictor, df, journal)
    return pred, journal, {**predictor.stats.as_dict(), "rows": len(df), "reused_from_journal": reused}


def _has_summaries(df: pd.DataFrame) -> bool:
    return "summary" in df.columns and bool(df["summary"].fillna("").astype(str).str.strip().ne("").any())


def read_splits(dev_path: Optional[Path], test_path: Path, predict_dev: bool) -> dict[str, pd.DataFrame]:
    """The splits to predict, read and checked before any model loads: dev (when asked and scoreable), test."""
    splits = {}
    if predict_dev and dev_path is not None:
        dev = load_split(dev_path, "test")  # the test role: a dev set without summaries is not an error here
        if _has_summaries(dev):
            splits["dev"] = dev
        else:
            log.info("dev set %s has no summaries: not predicted (nothing to score)", dev_path)
    splits["test"] = load_split(test_path, "test")
    return splits


def predict_splits(settings: InferenceSettings, frames: dict[str, pd.DataFrame], files: dict[str, Path],
                   outputs: dict[str, Path], tuning_csv: Optional[Path]) -> dict[str, Any]:
    """Predict each split of ``frames`` (dev, test) from its ``files`` entry into ``outputs`` (dev_predictions,
    submission) with the resolved ``settings``; return settings, engine and throughput for the manifest."""
    cfg, pool_path = settings.cfg, settings.pool
    pool = load_split(pool_path, "train") if pool_path is not None and cfg.prompt.num_fewshot else None
    base = load_predictor(settings, pool)
    predictor = with_mbr(cfg, base, tuning_csv)
    targets = {"dev": "dev_predictions", "test": "submission"}
    stats: dict[str, dict[str, Any]] = {}
    journals: list[PredictionJournal] = []
    single: dict[str, Any] = {}
    for split, df in frames.items():
        output = outputs[targets[split]]
        pred, journal, stats[split] = _predict_split(settings, predictor, df, files[split], output)
        if split == "test":
            write_submission(pred, df, output)
        else:
            atomic_write_csv(output, pred, for_spreadsheets=True)  # read back by evaluate (sheet_unsafe)
            single = write_single(cfg, predictor, pred, journal, outputs.get("dev_predictions_single"))
        journals.append(journal)
    for j in journals:
        j.remove()
    assert settings.checkpoint is not None
    report = _report(cfg, settings.checkpoint, stats)
    if single:
        report["single_decode"] = single
    report["engine"] = engine_record(base.choice, base.engine or base)
    if isinstance(predictor, MbrPredictor):
        report["mbr"] = predictor.summary()
    return report


def changed_by(cfg: Config, predictor: Any) -> str:
    """What changes this run's dev predictions after its main decode: "mbr", "ensemble", both ("mbr+ensemble") or
    "" (nothing: no single decode to write)."""
    return "+".join(what for what, on in (("mbr", isinstance(predictor, MbrPredictor)),
                                          ("ensemble", bool(cfg.inference.ensemble_from))) if on)


def write_single(cfg: Config, predictor: Any, pred: pd.DataFrame, journal: PredictionJournal,
                 output: Optional[Path]) -> dict[str, Any]:
    """Write the dev rows' main decode before MBR and the ensemble to ``output``; {} when nothing changes them (or
    no ``output`` is asked for), else what changes them and the file, or why it was not written."""
    what = changed_by(cfg, predictor)
    if not what or output is None:
        return {}
    fnames = pred["fname"].tolist()
    if not isinstance(predictor, MbrPredictor):
        main = pred  # the ensemble runs after: these are the main decode
    elif all(f in journal.singles for f in fnames):
        main = pd.DataFrame({"fname": fnames, "summary": [journal.singles[f] for f in fnames]})
    else:
        missing = sum(f not in journal.singles for f in fnames)
        reason = (f"{missing} of {len(fnames)} dev rows were journaled without their main decode (by an older "
                  f"version): {output.name} not written, so evaluate cannot compare {what} with the single decode; "
                  "delete the dev journal and rerun infer to get it")
        log.warning("%s", reason)
        return {"what": what, "written": False, "reason": reason}
    atomic_write_csv(output, main, for_spreadsheets=True)
    log.info("%s: the main decode of dev before %s", output.name, what)
    return {"what": what, "written": True, "file": str(output)}


def with_mbr(cfg: Config, predictor: Any, tuning_csv: Optional[Path]) -> Any:
    """``predictor`` wrapped for MBR selection when ``inference.mbr.num_candidates`` > 1."""
    mbr = cfg.inference.mbr
    if mbr.num_candidates <= 1:
        return predictor
    runs = candidate_runs(cfg, tuning_csv)
    log.info("MBR: %d candidates per dialogue (%s), selected by %s ROUGE", len(runs), runs, cfg.evaluation.tokenizer)
    return MbrPredictor(predictor, runs, cfg.evaluation.tokenizer, mbr.weights, mbr.chunk)


def _report(cfg: Config, checkpoint: Path, splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Manifest fields: totals over the splits, per-split figures, settings; warnings for what needs a look."""
    total = GenerationStats(**{k: sum(s.get(k, 0) for s in splits.values()) for k in
                               ("dialogues", "generated_tokens", "hit_max_new_tokens", "empty_outputs",
                                "trimmed_prompts", "batches", "seconds", "vocab_checks", "vocab_escapes",
                                "prefill_seconds", "decode_seconds")})
    total.kept_vocab = max((int(s.get("kept_vocab", 0)) for s in splits.values()), default=0)
    stats = total.as_dict()
    if stats["vocab_escapes"]:
        log.warning("%d of %d checked decode rows would have taken an id the trimmed output layer dropped: set "
                    "inference.output_vocab=full for exact outputs", stats["vocab_escapes"], stats["vocab_checks"])
    if stats["hit_max_new_tokens"]:
        log.warning("%d of %d outputs reached inference.max_new_tokens=%s: the model may not have learnt its stop "
                    "token, or the cap is too low", stats["hit_max_new_tokens"], stats["dialogues"],
                    cfg.inference.max_new_tokens)
    if stats["empty_outputs"]:
        log.warning("%d empty outputs replaced per inference.empty_fallback=%s", stats["empty_outputs"],
                    cfg.inference.empty_fallback)
    log.info("inference: %d dialogues generated in %.1fs (%.2f dialogues/s, %.1f generated tokens/s)",
             stats["dialogues"], stats["seconds"], stats["dialogues_per_s"], stats["generated_tokens_per_s"])
    return {"checkpoint": str(checkpoint), "throughput": stats, "splits": splits,
            "hit_max_new_tokens": stats["hit_max_new_tokens"], "empty_outputs": stats["empty_outputs"],
            "settings": inference_values(cfg.inference, MANIFEST_KEYS),
            "prompt": {"num_fewshot": cfg.prompt.num_fewshot, "fewshot_selection": cfg.prompt.fewshot_selection,
                       "max_prompt_tokens": cfg.prompt.max_prompt_tokens}}
