"""Setting up a run: its name and folders, fail-fast checks, logging, resolved config, manifest."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Optional

import yaml

from src.config import Config, resolve_path, to_dict
from src.errors import UserError
from src.manifest import Manifest
from src.pipeline import RunContext, check_inputs
from src.utils.io import atomic_write_text
from src.utils.logging_setup import add_file_handler

log = logging.getLogger(__name__)

MODEL_STAGES = ("train", "infer")


def pick_run_name(output_dir: Path, run_name: Optional[str], resume: bool) -> str:
    """The given name; with --resume and none given, the newest run; else a timestamp."""
    if run_name:
        if not run_name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise UserError(f"--run-name '{run_name}': use letters, digits, '-', '_' and '.' only")
        return run_name
    if resume:
        runs = sorted(output_dir.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise UserError(f"--resume: no earlier run in {output_dir}; start one without --resume")
        return runs[-1].parent.name
    return time.strftime("run-%Y%m%d-%H%M%S")


def make_context(cfg: Config, run_name: str, resume: bool, selected: tuple[str, ...]) -> RunContext:
    """The run's folders (not created yet) and its manifest (loaded if it exists)."""
    run_dir = resolve_path(cfg.paths.output_dir) / run_name
    rank = int(os.environ.get("RANK", "0"))
    return RunContext(cfg=cfg, run_name=run_name, run_dir=run_dir,
                      model_dir=resolve_path(cfg.paths.model_dir) / run_name,
                      clean_dir=resolve_path(cfg.paths.clean_dir) / run_name,
                      aug_dir=resolve_path(cfg.paths.augmented_dir) / run_name,
                      manifest=Manifest.open(run_dir / "manifest.json", run_name, cfg.seed),
                      selected=selected, resume=resume, world_size=int(os.environ.get("WORLD_SIZE", "1")),
                      is_main=rank == 0)


def preflight(ctx: RunContext) -> list[str]:
    """Every problem found before any stage runs: data files, skipped-stage outputs, the model."""
    cfg = ctx.cfg
    if ctx.world_size > 1 and set(ctx.selected) - {"train"}:
        return [f"launched with {ctx.world_size} processes: run only the train stage this way (--stages train); "
                "run the other stages in a single process before and after"]
    from src.data.sources import preflight_problems

    preprocessed = ctx.manifest.entry("preprocess").get("status") == "done"
    problems = preflight_problems(cfg, ctx.selected, preprocessed)
    if problems:
        return problems
    problems += check_inputs(ctx)
    problems += stage_setting_problems(ctx)
    return problems


def stage_setting_problems(ctx: RunContext) -> list[str]:
    """Settings that would only fail inside a stage: the model to train, the generation backend."""
    cfg, problems = ctx.cfg, []
    if "train" in ctx.selected:
        from src.models.loading import check_model_reachable
        from src.utils.secrets import get_secret

        problem = check_model_reachable(cfg.model.name, cfg.model.revision, get_secret("HF_TOKEN"), cfg.paths.model_dir)
        problems += [problem] if problem else []
        if cfg.model.type == "causal":
            from src.models.loading import pick_device
            from src.train.options import check_trainer_options

            problems += check_trainer_options(cfg, pick_device(cfg.model.device))
    if "infer" in ctx.selected:
        from src.inference.predictor import check_generation
        from src.inference.vllm_backend import check_backend

        backend = check_backend(cfg)
        problems += check_generation(cfg.inference) + ([backend] if backend else [])
    return problems


def debug_texts(cfg: Config) -> list[str]:
    """Text the tiny debug tokenizer is trained on: every dialogue and summary of the configured splits."""
    from src.data.sources import SPLITS, load_split_sources

    texts: list[str] = []
    for split in SPLITS:
        df = load_split_sources(cfg, split).frame
        for col in ("dialogue", "summary"):
            if col in df.columns:
                texts += df[col].dropna().astype(str).tolist()
    return texts


def prepare_run(cfg: Config, run_name: Optional[str], resume: bool, selected: tuple[str, ...]) -> RunContext:
    """Check everything, then create the run folder, log file, resolved config and manifest."""
    name = pick_run_name(resolve_path(cfg.paths.output_dir), run_name, resume)
    ctx = make_context(cfg, name, resume, selected)
    if ctx.run_dir.exists() and any(ctx.run_dir.iterdir()) and not resume and ctx.is_main:
        raise UserError(f"run folder {ctx.run_dir} already exists; pass --resume to continue it, "
                        "or choose another --run-name")
    problems = preflight(ctx)
    if problems:
        raise UserError(*problems)
    (ctx.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    add_file_handler(ctx.run_dir / "logs" / "pipeline.log")
    log.info("run %s: stages %s%s", name, ", ".join(selected) or "(none)", " (resume)" if resume else "")
    if ctx.is_main:
        atomic_write_text(ctx.run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), allow_unicode=True, sort_keys=False))
        ctx.manifest.data["world_size"] = ctx.world_size
        ctx.manifest.save()
    if any(s in selected for s in MODEL_STAGES) or "augment" in selected:
        from src.models.loading import resolve_model

        ctx.extras["model_path"] = resolve_model(cfg, lambda: debug_texts(cfg))
    return ctx
