"""What the infer stage does: predict dev and test with one predictor, journaled, and write the files.

Each finished batch goes to a journal next to its output; a rerun under the same settings reuses
those rows and predicts only the rest. The journals are removed once every output is written.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config
from src.context import present
from src.data.loading import load_split
from src.inference.batching import BatchProgress, GenerationStats
from src.inference.journal import PredictionJournal, journal_path, prediction_key
from src.inference.factory import load_predictor
from src.inference.submission import write_submission
from src.utils.io import atomic_write_csv

log = logging.getLogger(__name__)

SETTINGS = ("backend", "output_vocab", "slots", "batch_size", "max_batch_tokens", "max_new_tokens", "num_beams", "no_repeat_ngram_size",
            "length_penalty", "repetition_penalty", "do_sample", "temperature", "top_p", "quantize", "merge_lora",
            "empty_fallback")


def predict_journaled(predictor: Any, df: pd.DataFrame, journal: PredictionJournal) -> pd.DataFrame:
    """``fname,summary`` for ``df`` in its order: journaled rows reused, the rest predicted and journaled per batch."""
    todo = df[~df["fname"].isin(journal.done)]
    if len(todo) < len(df):
        log.info("%s: %d of %d summaries taken from the journal; predicting %d", journal.path.name,
                 len(df) - len(todo), len(df), len(todo))
    if len(todo):
        progress = BatchProgress(len(todo), f"infer {journal.path.name.split('.')[0]}")

        def finished(fnames: list[str], summaries: list[str]) -> None:
            journal.append(fnames, summaries)
            progress.update(len(fnames))

        predictor.predict_dataframe(todo, on_batch=finished)
    return pd.DataFrame({"fname": df["fname"].tolist(), "summary": [journal.done[f] for f in df["fname"]]})


def _predict_split(cfg: Config, predictor: Any, df: pd.DataFrame, split_file: Path, output: Path,
                   inputs: dict[str, Optional[Path]]) -> tuple[pd.DataFrame, PredictionJournal, dict[str, Any]]:
    """Predict one split under a fresh stats counter; return predictions, its journal and its figures."""
    runs = getattr(predictor, "runs", None)  # MBR: the candidate runs decide the summaries too
    journal = PredictionJournal(journal_path(output), prediction_key(cfg, present(inputs, "checkpoint"), split_file,
                                                                    inputs.get("train"), runs))
    reused = int(df["fname"].isin(journal.done).sum())
    predictor.stats = GenerationStats()
    pred = predict_journaled(predictor, df, journal)
    return pred, journal, {**predictor.stats.as_dict(), "rows": len(df), "reused_from_journal": reused}


def _has_summaries(df: pd.DataFrame) -> bool:
    return "summary" in df.columns and bool(df["summary"].fillna("").astype(str).str.strip().ne("").any())


def read_splits(cfg: Config, inputs: dict[str, Optional[Path]], outputs: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """The splits to predict, read and checked before any model loads: dev (when asked and scoreable), test."""
    splits = {}
    dev_path = inputs.get("dev")
    if "dev_predictions" in outputs and dev_path is not None:
        dev = load_split(dev_path, "test")  # the test role: a dev set without summaries is not an error here
        if _has_summaries(dev):
            splits["dev"] = dev
        else:
            log.info("dev set %s has no summaries: not predicted (nothing to score)", dev_path)
    splits["test"] = load_split(present(inputs, "test"), "test")
    return splits


def predict_splits(cfg: Config, inputs: dict[str, Optional[Path]], outputs: dict[str, Path], run_dir: Path,
                   explicit: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Predict dev (when asked and it has summaries) and test; return settings and throughput for the manifest.

    The settings are ``src.inference.settings.resolve_settings``'s: the prompt follows the checkpoint, the
    generation settings the tune stage's choice (``inputs["tuned"]``), keys set on the command line
    (``explicit``) win over both; they are logged with their sources.
    """
    from src.inference.settings import resolve_settings

    frames = read_splits(cfg, inputs, outputs)
    settings = resolve_settings(cfg, present(inputs, "checkpoint"), inputs.get("train"), inputs.get("tuned"), explicit)
    settings.log()
    cfg, checkpoint, pool_path = settings.cfg, present({"checkpoint": settings.checkpoint}, "checkpoint"), settings.pool
    inputs = {**inputs, "train": pool_path, "checkpoint": checkpoint}
    pool = load_split(pool_path, "train") if pool_path is not None and cfg.prompt.num_fewshot else None
    predictor = with_mbr(cfg, load_predictor(cfg, checkpoint, pool), inputs.get("tuning"))
    targets = {"dev": ("dev", "dev_predictions"), "test": ("test", "submission")}
    stats: dict[str, dict[str, Any]] = {}
    journals = []
    for split, df in frames.items():
        source, output = targets[split]
        pred, journal, stats[split] = _predict_split(cfg, predictor, df, present(inputs, source), outputs[output], inputs)
        if split == "test":
            write_submission(pred, df, outputs[output])
        else:
            atomic_write_csv(outputs[output], pred, for_spreadsheets=True)  # read back by evaluate (sheet_unsafe)
        journals.append(journal)
    for j in journals:
        j.remove()
    report = _report(replace(cfg, inference=getattr(predictor, "gen", cfg.inference)), present(inputs, "checkpoint"),
                     stats)
    report["engine"] = engine_summary(predictor)
    if hasattr(predictor, "summary"):
        report["mbr"] = predictor.summary()
    if cfg.inference.ensemble_from:
        report["ensemble"] = ensemble_outputs(cfg, outputs, frames)
    return report


def engine_summary(predictor: Any) -> dict[str, Any]:
    """Which engine generated and with which output layer (``inference.backend``/``output_vocab`` resolved)."""
    engine = getattr(getattr(predictor, "base", predictor), "engine", None)
    return {"backend": type(engine).__name__ if engine is not None else type(predictor).__name__,
            "output_vocab": getattr(engine, "output_vocab", "full"), "slots": getattr(engine, "slots", None)}


def with_mbr(cfg: Config, predictor: Any, tuning_csv: Optional[Path]) -> Any:
    """``predictor`` wrapped for MBR selection when ``inference.mbr.num_candidates`` > 1."""
    mbr = cfg.inference.mbr
    if mbr.num_candidates <= 1:
        return predictor
    from src.inference.mbr import MbrPredictor, candidate_runs

    runs = candidate_runs(cfg, tuning_csv)
    log.info("MBR: %d candidates per dialogue (%s), selected by %s ROUGE", len(runs), runs, cfg.evaluation.tokenizer)
    return MbrPredictor(predictor, runs, cfg.evaluation.tokenizer, mbr.weights, mbr.chunk)


def ensemble_outputs(cfg: Config, outputs: dict[str, Path], frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """This run's predictions and those of ``inference.ensemble_from`` runs: per fname the consensus candidate."""
    from src.config import resolve_path
    from src.ensemble import select_files

    counts: dict[str, Any] = {}
    for split, name in (("dev", "dev_predictions"), ("test", "submission")):
        if name not in outputs or split not in frames:
            continue
        others = [resolve_path(cfg.paths.output_dir) / run / outputs[name].name for run in cfg.inference.ensemble_from]
        picked, counts[name] = select_files([outputs[name], *others], cfg.evaluation.tokenizer, cfg.inference.mbr.weights)
        if split == "test":
            write_submission(picked, frames[split], outputs[name])
        else:
            atomic_write_csv(outputs[name], picked, for_spreadsheets=True)
    log.info("ensemble with %s: %s", ", ".join(cfg.inference.ensemble_from), counts)
    return counts


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
            "settings": {k: getattr(cfg.inference, k) for k in SETTINGS},
            "prompt": {"num_fewshot": cfg.prompt.num_fewshot, "fewshot_selection": cfg.prompt.fewshot_selection,
                       "max_prompt_tokens": cfg.prompt.max_prompt_tokens}}
