"""Augment stage: paraphrase and synthetic dialogues through an LLM, speaker swap without one."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from src.augment.generate import augment
from src.augment.spend import sends_paid_requests, spend_notice
from src.config import Config
from src.context import RunContext, present
from src.data.loading import load_split
from src.data.sources import collect
from src.models.loading import DEBUG_NAME, check_model_reachable, debug_texts, resolve_model
from src.utils.errors import StageSkipped, UserError
from src.utils.secrets import get_secret

log = logging.getLogger(__name__)

name = "augment"
required: tuple[str, ...] = ("clean_train",)
command_line: tuple[str, ...] = ()  # sections whose command-line keys win (src.pipeline.fingerprint)


def outputs(ctx: RunContext) -> dict[str, Path]:
    """Accepted and rejected rows, and the request journal."""
    return {"augmented": ctx.aug_dir / "augmented.csv", "rejected": ctx.aug_dir / "rejected.csv",
            "journal": ctx.aug_dir / "journal.jsonl"}


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """No augmentation: merge uses the originals only."""
    return {}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Clean train (the source) plus dev and test (near-duplicate guards)."""
    return {"clean_train": ctx.upstream("preprocess", "train"), "dev": ctx.upstream("preprocess", "dev"),
            "test": ctx.upstream("preprocess", "test")}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on (the API key is not config and never hashed here)."""
    model = cfg.model.name if cfg.augmentation.backend == "transformers" else None
    return {"augmentation": cfg.augmentation, "seed": cfg.seed, "local_model": model}


def check(ctx: RunContext) -> list[str]:
    """A local generator (backend=transformers) must be loadable; the API key is looked at when the stage runs."""
    a = ctx.cfg.augmentation
    if a.backend != "transformers" or not (a.num_paraphrase > 0 or a.num_synthetic > 0) or not a.local_model:
        return []
    problem = check_model_reachable(a.local_model, None, get_secret("HF_TOKEN"), ctx.cfg.paths.model_dir)
    return [problem.replace("'model.name'", "'augmentation.local_model'")] if problem else []


def spend_line(ctx: RunContext) -> Optional[str]:
    """The paid API requests this run's augment stage would send and the spend cap, or None (``src.augment.spend``)."""
    aug = ctx.cfg.augmentation
    if name not in ctx.selected or not sends_paid_requests(aug):
        return None
    return spend_notice(aug, _train_rows(ctx), get_secret(aug.api.api_key_env) is not None)


def _train_rows(ctx: RunContext) -> Optional[int]:
    """Training rows augment will read: the cleaned train set if it exists, else the local sources' rows
    (None when a hub dataset is among them: its size is not known before it is loaded)."""
    clean = ctx.upstream("preprocess", "train")
    try:
        if clean is not None and clean.is_file():
            return len(load_split(clean, "train"))
        pairs, problems = collect(ctx.cfg, "train", read_hub=False)
    except UserError:
        return None
    return None if problems or ctx.cfg.data.hub.train.path is not None else sum(len(df) for _, df in pairs)


def local_generator(ctx: RunContext) -> Optional[str]:
    """The causal model that stands in for the API: augmentation.local_model, else the run's model.

    A seq2seq run's own model cannot chat, so the debug run falls back to the tiny causal model.
    """
    cfg = ctx.cfg
    if cfg.augmentation.local_model:
        return cfg.augmentation.local_model
    if cfg.model.type == "causal":
        return ctx.model_path
    if cfg.model.name != DEBUG_NAME:
        return None
    causal = replace(cfg, model=replace(cfg.model, type="causal"))
    return resolve_model(causal, lambda: debug_texts(cfg))


def run(ctx: RunContext) -> dict[str, Any]:
    """Generate, validate and write the augmented rows."""
    cfg = ctx.cfg
    ins = inputs(ctx)
    train = load_split(present(ins, "clean_train"), "train")
    # augmented rows must not resemble dev/test dialogues (leak); train rows are checked by augment() itself
    refs = [d for key in ("dev", "test") for d in load_split(present(ins, key), key)["dialogue"].astype(str)]
    local_model = local_generator(ctx) if cfg.augmentation.backend == "transformers" else None
    result = augment(train, refs, cfg.augmentation, get_secret(cfg.augmentation.api.api_key_env), ctx.aug_dir,
                     cfg.seed, local_model_path=local_model)
    if result.stats.get("skipped") == "no_api_key":
        # not done: a later --resume with the key set runs the API augmenters (speaker swap rows are written)
        raise StageSkipped(f"no API key in {cfg.augmentation.api.api_key_env} (environment or .env): paraphrase and "
                           "synthetic requests were not sent", {"stats": result.stats})
    return {"stats": result.stats}
