"""Infer stage: summaries for dev (scored later) and test (the submission).

When MBR (``inference.mbr.num_candidates > 1``, unless the tune stage turned it off) or ``inference.ensemble_from``
changes the dev predictions, ``dev_predictions_single.csv`` holds this run's main decode of dev before them (the
evaluate stage compares the two); an older one is removed first, so it never outlives the setting that wrote it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import yaml

from src.config import Config, resolve_path
from src.config.deciding import DECIDING_KEYS
from src.context import RunContext, present
from src.ensemble import select_files
from src.inference.backends import choose_engine
from src.inference.run import predict_splits, read_splits
from src.inference.settings import InferenceSettings, resolve_settings
from src.inference.submission import write_submission
from src.inference.vllm_engine import check_backend
from src.models.device import device_problems, pick_device
from src.utils.io import atomic_write_csv

log = logging.getLogger(__name__)

name = "infer"
required: tuple[str, ...] = ("checkpoint", "test")
command_line: tuple[str, ...] = ("inference", "prompt")  # sections whose command-line keys win (src.pipeline.fingerprint)


SINGLE = "dev_predictions_single.csv"


def outputs(ctx: RunContext) -> dict[str, Path]:
    """Dev predictions (when predicted), the submission and, where MBR or an ensemble may change the dev predictions,
    the single decode of dev (the manifest records it only when written)."""
    out = {"submission": ctx.run_dir / "submission.csv"}
    gen = ctx.cfg.inference
    if gen.predict_dev:
        out["dev_predictions"] = ctx.run_dir / "dev_predictions.csv"
        if gen.mbr.num_candidates > 1 or gen.ensemble_from:
            out["dev_predictions_single"] = ctx.run_dir / SINGLE
    return out


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Skipped inference: earlier predictions of this run, if any."""
    return {"submission": ctx.run_dir / "submission.csv", "dev_predictions": ctx.run_dir / "dev_predictions.csv",
            "dev_predictions_single": ctx.run_dir / SINGLE}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """The checkpoint (the rl stage's when it ran, else the train stage's), dev and test, and the training set
    (few-shot pool)."""
    return {"checkpoint": ctx.upstream("rl", "checkpoint"), "dev": ctx.upstream("preprocess", "dev"),
            "test": ctx.upstream("preprocess", "test"), "train": ctx.upstream("merge", "train"),
            "tuned": ctx.upstream("tune", "best"), "tuning": ctx.upstream("tune", "tuning"),
            **{f"ensemble_{run}": ctx.run_dir.parent / run / "submission.csv" for run in ctx.cfg.inference.ensemble_from}}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on: every inference key the schema marks as deciding a summary (and
    ``inference.predict_dev``, which decides what is written), the prompt, the model, the command line's keys
    (``command_line``: a key named there wins over the seq2seq defaults and the tune stage's choice)."""
    inference = {k: getattr(cfg.inference, k) for k in (*DECIDING_KEYS, "predict_dev", "checkpoint")}
    return {"model": cfg.model, "prompt": cfg.prompt, "inference": inference, "seed": cfg.seed,
            "quantized": cfg.training.use_qlora, "compute_dtype": cfg.training.compute_dtype,
            "seq2seq": cfg.seq2seq if cfg.model.type == "seq2seq" else None}


def check(ctx: RunContext) -> list[str]:
    """The generation backend is installed (what it cannot do with these settings is a config rule)."""
    problem = check_backend(ctx.cfg)
    problems = [problem] if problem else []
    for run in ctx.cfg.inference.ensemble_from:
        folder = ctx.run_dir.parent / run
        missing = [n for n in ("submission.csv", "dev_predictions.csv") if not (folder / n).is_file()]
        if missing:
            problems.append(f"config key 'inference.ensemble_from' names run {run!r}, but {folder} has no "
                            f"{' or '.join(missing)}; finish that run's infer stage first or drop it from the list")
    return problems + ([] if "train" in ctx.selected else device_problems(ctx.cfg, training=False))


def settings_lines(ctx: RunContext) -> list[str]:
    """What ``--dry-run`` shows: the settings inference would use now, each with its source, and what the stages
    that run first may still change (``src.inference.settings``)."""
    settings = settings_for(ctx, verify=False)
    later = [f"{stage} runs first: {what}" for stage, what in (
        ("train", "its checkpoint's prompt settings and length cap apply"),
        ("tune", "its choice applies to the keys not given on the command line")) if stage in ctx.selected]
    note = f" ({'; '.join(later)})" if later else ""
    gen = settings.gen
    choice = choose_engine(gen.backend, settings.cfg.model.type, pick_device(settings.cfg.model.device))
    return ([f"inference settings (value, source){note}:"] + [f"  {line}" for line in settings.lines()]
            + [f"  engine: {choice.name} ({choice.why})"])


def settings_for(ctx: RunContext, verify: bool = True) -> InferenceSettings:
    """The one resolution of the run's inference settings (``src.inference.settings``)."""
    ins = inputs(ctx)
    return resolve_settings(ctx.cfg, ins.get("checkpoint"), ins.get("train"), ins.get("tuned"), ctx.explicit, verify)


def run(ctx: RunContext) -> dict[str, Any]:
    """Read the splits; resolve the settings once; predict dev and test; write predictions, the validated submission
    and, with ``inference.ensemble_from``, the consensus with the other runs."""
    ins, outs = inputs(ctx), outputs(ctx)
    frames = read_splits(ins.get("dev"), present(ins, "test"), "dev_predictions" in outs)
    present(ins, "checkpoint")
    settings = settings_for(ctx)
    settings.log()
    choice = tune_choice(ins.get("tuned"))
    if choice:
        log.info("infer: the tune stage chose %s: %s", choice["chosen"], choice["reason"])
    if "mbr" in choice:
        log.info("infer: MBR %s with %d candidate(s) (%s); the tune stage's check: %s",
                 "on" if settings.gen.mbr.num_candidates > 1 else "off", settings.gen.mbr.num_candidates,
                 settings.sources.get("inference.mbr.num_candidates", "config"), choice["mbr"].get("reason"))
    (ctx.run_dir / SINGLE).unlink(missing_ok=True)  # written again below when this run's settings make one
    files = {"dev": ins.get("dev"), "test": present(ins, "test")}
    report = predict_splits(settings, frames, {k: v for k, v in files.items() if v is not None}, outs,
                            ins.get("tuning"))
    if ctx.cfg.inference.ensemble_from:
        report["ensemble"] = ensemble_outputs(ctx.cfg, outs, frames)
    return {**report, **({"tune_choice": choice} if choice else {})}


def tune_choice(tuned: Optional[Path]) -> dict[str, Any]:
    """What the tune stage chose and why (from ``best_generation.yaml``), with its MBR check when it made one; {}
    without a tune stage or from a run older than the choice."""
    if tuned is None or not Path(tuned).is_file():
        return {}
    found = yaml.safe_load(Path(tuned).read_text(encoding="utf-8")) or {}
    if not isinstance(found, dict) or "reason" not in found:
        return {}
    return {k: found[k] for k in ("chosen", "select", "reason", "diff", "ci_low", "ci_high", "mbr") if k in found}


def ensemble_outputs(cfg: Config, outputs: dict[str, Path], frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """This run's predictions and those of ``inference.ensemble_from`` runs: per fname the consensus candidate."""
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
