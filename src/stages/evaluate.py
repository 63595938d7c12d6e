"""Evaluate stage: ROUGE of the dev predictions against the dev summaries.

When the infer stage wrote ``dev_predictions_single.csv`` (its main decode before MBR or an ensemble changed the dev
predictions), both are scored on the same rows with the same tokenizer and paired by dialogue
(``src.evaluation.pairing``): metrics.json gains ``vs_single`` (the difference, its 95% bootstrap interval seeded by
``seed``, and whether it is sure) and report.md one line saying whether the change helped.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.context import RunContext, present
from src.evaluation import evaluate_files
from src.evaluation.paired import RESAMPLES
from src.evaluation.pairing import score_pair, summarize_pair
from src.evaluation.report import single_line
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
    subsampled) but not cleaned, so scores are against the summaries as given; the tuning rows; the single decode
    of dev where the infer stage wrote one."""
    single = ctx.upstream("infer", "dev_predictions_single")
    return {"dev_predictions": ctx.upstream("infer", "dev_predictions"),
            "dev": ctx.upstream("preprocess", "dev_references"), "tuning_rows": ctx.upstream("tune", "rows"),
            **({"dev_predictions_single": single} if single is not None and single.is_file() else {})}


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
    compared = vs_single(ctx, ins, excluded)
    metrics = evaluate_files(present(ins, "dev_predictions"), present(ins, "dev"), tokenizer=ctx.cfg.evaluation.tokenizer,
                             out_dir=ctx.run_dir, exclude=excluded,
                             extra={**provenance(ctx), **({"vs_single": compared} if compared else {})})
    log.info("dev ROUGE-1 %.4f ROUGE-2 %.4f ROUGE-L %.4f final %.2f (n=%d)", metrics["rouge1"], metrics["rouge2"],
             metrics["rougeL"], metrics["final"], metrics["n"])
    return {"metrics": metrics, **({"vs_single": compared} if compared else {})}


def vs_single(ctx: RunContext, ins: dict[str, Optional[Path]], excluded: set[str]) -> dict[str, Any]:
    """The dev predictions against the single decode on the rows evaluate scores: {n, final_single, diff, ci_low,
    ci_high, p_better, not_sure, what} ({} without a single decode)."""
    single = ins.get("dev_predictions_single")
    if single is None:
        return {}
    metrics, single_metrics, rows = score_pair(present(ins, "dev_predictions"), single, present(ins, "dev"),
                                               ctx.cfg.evaluation.tokenizer, excluded)
    found = summarize_pair(metrics, single_metrics, rows, RESAMPLES, ctx.cfg.seed)
    what = (ctx.manifest.entry("infer").get("single_decode") or {}).get("what") or "unknown"  # run.write_single
    compared = {"n": found["n"], "final_single": found["final_b"], "diff": found["diff"], "ci_low": found["ci_low"],
                "ci_high": found["ci_high"], "p_better": found["p_a_better"], "not_sure": found["not_sure"],
                "what": what}
    log.info("evaluate: %s", single_line(compared))
    return compared


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
