"""Tune stage: search generation settings on a tuning part of dev; infer then uses the best one.

The tuning rows (``tune.rows`` of dev, drawn by seed) are written to ``tuning_rows.csv``; the
evaluate stage scores the other dev rows only, so the reported dev score never saw the search.
The baseline (the run's own setting) is always in the search, and ``tune.select`` decides whether another
setting replaces it (``src.inference.tune_select``). Outputs: ``tuning.csv`` (every setting: parameters, rows,
ROUGE, seconds, and its paired difference from the baseline with a 95% interval), ``tuning.png`` and
``best_generation.yaml`` (what infer applies, except keys given on the command line, and why). With MBR on and
``inference.mbr.from_tune > 0`` the same rule decides MBR: its check on the tuning rows (``tune_select.mbr_check``)
goes to ``best_generation.yaml`` under ``mbr`` and, under ``tune.select=confident``, turns MBR off unless it beats the
chosen setting with confidence.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.context import RunContext, present
from src.inference.settings import resolve_settings
from src.inference.tuning_run import space_problems, tune_generation

log = logging.getLogger(__name__)

name = "tune"
required: tuple[str, ...] = ("checkpoint", "dev")
command_line: tuple[str, ...] = ("inference", "prompt")  # sections whose command-line keys win (src.pipeline.fingerprint)


def outputs(ctx: RunContext) -> dict[str, Path]:
    """The search table and plot, the chosen settings, the tuning rows, the journal of generated summaries."""
    return {"tuning": ctx.run_dir / "tuning.csv", "plot": ctx.run_dir / "tuning.png",
            "best": ctx.run_dir / "best_generation.yaml", "rows": ctx.run_dir / "tuning_rows.csv",
            "journal": ctx.run_dir / "tuning.journal.jsonl"}


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """No tuning: infer uses the config's generation settings and evaluate scores every dev row."""
    return {}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """The checkpoint (the rl stage's when it ran, else the train stage's), dev (tuning rows and references) and
    the training set (few-shot pool)."""
    return {"checkpoint": ctx.upstream("rl", "checkpoint"), "dev": ctx.upstream("preprocess", "dev"),
            "train": ctx.upstream("merge", "train")}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"tune": cfg.tune, "inference": cfg.inference, "prompt": cfg.prompt, "model": cfg.model, "seed": cfg.seed,
            "scorer": cfg.evaluation.tokenizer}


def check(ctx: RunContext) -> list[str]:
    """Every value of ``tune.space`` is a valid setting of its key."""
    return space_problems(ctx.cfg)


def run(ctx: RunContext) -> dict[str, Any]:
    """Resolve the settings inference would use without a tune choice (the trials start from them); search; write the
    four files; return the choice for the manifest."""
    ins = inputs(ctx)
    checkpoint = present(ins, "checkpoint")
    settings = resolve_settings(ctx.cfg, checkpoint, ins.get("train"), None, ctx.explicit)
    return {**tune_generation(ctx.cfg, settings, present(ins, "dev"), outputs(ctx)), "checkpoint": str(checkpoint)}
