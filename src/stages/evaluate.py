"""Evaluate stage: ROUGE of the dev predictions against the dev summaries."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.context import RunContext, present
from src.evaluation import evaluate_files
from src.inference.tuning_run import excluded_rows

log = logging.getLogger(__name__)

name = "evaluate"
required: tuple[str, ...] = ("dev_predictions", "dev")
command_line: tuple[str, ...] = ()  # sections whose command-line keys win (src.pipeline.fingerprint)


def outputs(ctx: RunContext) -> dict[str, Path]:
    """Metrics and the report files in the run folder."""
    return {file: ctx.run_dir / file for file in ("metrics.json", "scores.csv", "report.md", "score_hist.png")}


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Nothing downstream needs evaluation outputs."""
    return {}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Dev predictions and the dev references: the dev rows as materialized from their sources (mapped,
    subsampled) but not cleaned, so scores are against the summaries as given."""
    return {"dev_predictions": ctx.upstream("infer", "dev_predictions"),
            "dev": ctx.upstream("preprocess", "dev_references"), "tuning_rows": ctx.upstream("tune", "rows")}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"evaluation": cfg.evaluation}


def check(ctx: RunContext) -> list[str]:
    """Nothing beyond the config rules: the scorer's tokenizer is a config choice."""
    return []


def run(ctx: RunContext) -> dict[str, Any]:
    """Score and write metrics.json, scores.csv, report.md and score_hist.png (never on the tuning rows)."""
    ins = inputs(ctx)
    excluded = excluded_rows(ins.get("tuning_rows"))
    if excluded:
        log.info("evaluate: the %d dev rows the tune stage searched on are left out of the dev score", len(excluded))
    metrics = evaluate_files(present(ins, "dev_predictions"), present(ins, "dev"), tokenizer=ctx.cfg.evaluation.tokenizer,
                             out_dir=ctx.run_dir, exclude=excluded, extra=provenance(ctx))
    log.info("dev ROUGE-1 %.4f ROUGE-2 %.4f ROUGE-L %.4f final %.2f (n=%d)", metrics["rouge1"], metrics["rouge2"],
             metrics["rougeL"], metrics["final"], metrics["n"])
    return {"metrics": metrics}


def provenance(ctx: RunContext) -> dict[str, Any]:
    """The checkpoint the predictions came from and, when the rl stage made it, its SFT-vs-RL dev comparison."""
    checkpoint = ctx.manifest.entry("infer").get("checkpoint")
    rl = ctx.manifest.entry("rl")
    found: dict[str, Any] = {"checkpoint": checkpoint} if checkpoint else {}
    dev = rl.get("dev") if rl.get("status") == "done" and rl.get("final_checkpoint") == checkpoint else None
    if dev:
        found.update(rl_compared_rows=dev["rows"], rl_compared_scorer=dev["scorer"],
                     sft_dev_final=dev["sft"]["final"], rl_dev_final=dev["rl"]["final"],
                     sft_dev_mean_words=dev["sft"]["mean_words"], rl_dev_mean_words=dev["rl"]["mean_words"])
    return found
