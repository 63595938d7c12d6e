"""Merge stage: originals plus accepted augmented rows, deduplicated, leak-free, shuffled by seed."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.utils.io import atomic_write_csv

log = logging.getLogger(__name__)

required = ("clean_train", "dev", "test")


def outputs(ctx: Any) -> dict[str, Path]:
    """The training set and the rows removed with their reasons."""
    return {"train": ctx.aug_dir / "train_merged.csv", "removed": ctx.aug_dir / "merge_removed.csv"}


def fallback(ctx: Any) -> dict[str, Optional[Path]]:
    """Skipped merge: train on the (cleaned) originals."""
    return {"train": ctx.upstream("preprocess", "train")}


def inputs(ctx: Any) -> dict[str, Optional[Path]]:
    """Clean train, augmented rows (optional), and dev/test as leak guards."""
    return {"clean_train": ctx.upstream("preprocess", "train"), "augmented": ctx.upstream("augment", "augmented"),
            "dev": ctx.upstream("preprocess", "dev"), "test": ctx.upstream("preprocess", "test")}


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"merge": cfg.merge, "seed": cfg.seed}


def run(ctx: Any) -> dict[str, Any]:
    """Merge and write; return per-source counts and removal reasons."""
    import pandas as pd

    from src.data.loading import load_split, read_table
    from src.data.merge_data import merge_frames

    cfg, ins = ctx.cfg, inputs(ctx)
    originals = load_split(ins["clean_train"], "train")
    aug_path = ins["augmented"]
    augmented = read_table(aug_path) if aug_path is not None and aug_path.is_file() else None
    held_out = [load_split(ins["dev"], "dev"), load_split(ins["test"], "test")]
    caps = {"paraphrase": cfg.merge.max_paraphrase, "synthetic": cfg.merge.max_synthetic, "swap": cfg.merge.max_swap}
    merged, removed, stats = merge_frames(originals, augmented, held_out, caps, cfg.seed if cfg.merge.shuffle else None,
                                          cfg.merge.near_dup_threshold)
    out = outputs(ctx)
    atomic_write_csv(out["train"], merged)
    atomic_write_csv(out["removed"], removed if len(removed) else pd.DataFrame(columns=["fname", "reason"]))
    log.info("merge: %d training rows by source %s, removed %s", len(merged), stats.get("out"), stats.get("removed"))
    return {"rows": len(merged), "stats": stats}
