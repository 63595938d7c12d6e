"""Infer stage: summaries for dev (scored later) and test (the submission)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.context import RunContext

log = logging.getLogger(__name__)

name = "infer"
required: tuple[str, ...] = ("checkpoint", "test")


def outputs(ctx: RunContext) -> dict[str, Path]:
    """Dev predictions (when predicted) and the submission."""
    out = {"submission": ctx.run_dir / "submission.csv"}
    if ctx.cfg.inference.predict_dev:
        out["dev_predictions"] = ctx.run_dir / "dev_predictions.csv"
    return out


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Skipped inference: earlier predictions of this run, if any."""
    return {"submission": ctx.run_dir / "submission.csv", "dev_predictions": ctx.run_dir / "dev_predictions.csv"}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """The checkpoint (the rl stage's when it ran, else the train stage's), dev and test, and the training set
    (few-shot pool)."""
    return {"checkpoint": ctx.upstream("rl", "checkpoint"), "dev": ctx.upstream("preprocess", "dev"),
            "test": ctx.upstream("preprocess", "test"), "train": ctx.upstream("merge", "train"),
            "tuned": ctx.upstream("tune", "best"), "tuning": ctx.upstream("tune", "tuning"),
            **{f"ensemble_{run}": ctx.run_dir.parent / run / "submission.csv" for run in ctx.cfg.inference.ensemble_from}}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"model": cfg.model, "prompt": cfg.prompt, "inference": cfg.inference, "seed": cfg.seed,
            "quantized": cfg.training.use_qlora, "compute_dtype": cfg.training.compute_dtype,
            "seq2seq": cfg.seq2seq if cfg.model.type == "seq2seq" else None}


def check(ctx: RunContext) -> list[str]:
    """The generation backend is installed (what it cannot do with these settings is a config rule)."""
    from src.inference.vllm_engine import check_backend
    from src.models.device import device_problems

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
    from src.inference.settings import resolve_settings

    ins = inputs(ctx)
    checkpoint, tuned = ins.get("checkpoint"), ins.get("tuned")
    settings = resolve_settings(ctx.cfg, checkpoint, ins.get("train"), tuned, ctx.explicit, verify=False)
    later = [f"{stage} runs first: {what}" for stage, what in (
        ("train", "its checkpoint's prompt settings and length cap apply"),
        ("tune", "its choice applies to the keys not given on the command line")) if stage in ctx.selected]
    note = f" ({'; '.join(later)})" if later else ""
    return [f"inference settings (value, source){note}:"] + [f"  {line}" for line in settings.lines()]


def run(ctx: RunContext) -> dict[str, Any]:
    """Predict dev and test; write predictions and the validated submission."""
    from src.inference.run import predict_splits

    ins = inputs(ctx)
    choice = tune_choice(ins.get("tuned"))
    if choice:
        log.info("infer: the tune stage chose %s: %s", choice["chosen"], choice["reason"])
    return {**predict_splits(ctx.cfg, ins, outputs(ctx), ctx.run_dir, ctx.explicit),
            **({"tune_choice": choice} if choice else {})}


def tune_choice(tuned: Optional[Path]) -> dict[str, Any]:
    """What the tune stage chose and why (from ``best_generation.yaml``); {} without a tune stage or from a run
    older than the choice."""
    if tuned is None or not Path(tuned).is_file():
        return {}
    import yaml

    found = yaml.safe_load(Path(tuned).read_text(encoding="utf-8")) or {}
    if not isinstance(found, dict) or "reason" not in found:
        return {}
    return {k: found[k] for k in ("chosen", "select", "reason", "diff", "ci_low", "ci_high") if k in found}
