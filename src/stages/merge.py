"""Merge stage: originals plus accepted augmented rows, deduplicated, leak-free, shuffled by seed."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.context import RunContext, present
from src.data.loading import load_split, read_table
from src.data.merge import merge_frames
from src.utils.io import atomic_write_csv

log = logging.getLogger(__name__)

name = "merge"
required: tuple[str, ...] = ("clean_train", "dev", "test")
command_line: tuple[str, ...] = ()  # sections whose command-line keys win (src.pipeline.fingerprint)


def outputs(ctx: RunContext) -> dict[str, Path]:
    """The training set and the rows removed with their reasons."""
    return {"train": ctx.aug_dir / "train_merged.csv", "removed": ctx.aug_dir / "merge_removed.csv"}


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Skipped merge: train on the (cleaned) originals."""
    return {"train": ctx.upstream("preprocess", "train")}


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Clean train, augmented rows (optional), and dev/test as leak guards."""
    return {"clean_train": ctx.upstream("preprocess", "train"), "augmented": ctx.upstream("augment", "augmented"),
            "dev": ctx.upstream("preprocess", "dev"), "test": ctx.upstream("preprocess", "test")}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"merge": cfg.merge, "seed": cfg.seed}


def check(ctx: RunContext) -> list[str]:
    """Source weights above 1 repeat rows, which this stage would drop again as exact duplicates."""
    weights = ctx.cfg.data.train_weights
    return [f"config key 'data.train_weights' = {list(weights)}: weight {w} of training source {i} repeats its rows, "
            "but the merge stage drops exact duplicates; skip merge (--skip-merge trains on the preprocessed rows) "
            "or use weights <= 1 (down-weight the other sources)" for i, w in enumerate(weights) if w > 1]


def run(ctx: RunContext) -> dict[str, Any]:
    """Merge and write; return per-source counts and removal reasons."""
    import pandas as pd


    cfg, ins = ctx.cfg, inputs(ctx)
    originals = load_split(present(ins, "clean_train"), "train")
    aug_path = ins["augmented"]
    augmented = read_table(aug_path) if aug_path is not None and aug_path.is_file() else None
    held_out = [load_split(present(ins, "dev"), "dev"), load_split(present(ins, "test"), "test")]
    caps = {"paraphrase": cfg.merge.max_paraphrase, "synthetic": cfg.merge.max_synthetic, "swap": cfg.merge.max_swap}
    merged, removed, stats = merge_frames(originals, augmented, held_out, caps, cfg.seed if cfg.merge.shuffle else None,
                                          cfg.merge.near_dup_threshold)
    out = outputs(ctx)
    atomic_write_csv(out["train"], merged)
    atomic_write_csv(out["removed"], removed if len(removed) else pd.DataFrame(columns=["fname", "reason"]))
    log.info("merge: %d training rows by source %s, removed %s", len(merged), stats.get("out"), stats.get("removed"))
    return {"rows": len(merged), "stats": stats}
