"""Preprocess stage: denoise and typo-fix the raw splits into ``<clean_dir>/<run>/``."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config, resolve_path
from src.data.loading import load_split
from src.utils.io import atomic_write_csv

log = logging.getLogger(__name__)

SPLITS = {"train": "train_file", "dev": "dev_file", "test": "test_file"}
required = ("raw_train", "raw_dev", "raw_test")


def raw_files(cfg: Config) -> dict[str, Path]:
    """The configured input files."""
    base = resolve_path(cfg.paths.data_dir)
    return {split: resolve_path(getattr(cfg.data, attr), base) for split, attr in SPLITS.items()}


def outputs(ctx: Any) -> dict[str, Path]:
    """Cleaned splits."""
    return {split: ctx.clean_dir / f"{split}.csv" for split in SPLITS}


def fallback(ctx: Any) -> dict[str, Optional[Path]]:
    """Skipped preprocessing means the raw files are used as they are."""
    return dict(raw_files(ctx.cfg))


def inputs(ctx: Any) -> dict[str, Optional[Path]]:
    """Raw splits and the rule tables."""
    cfg = ctx.cfg
    found = {f"raw_{k}": v for k, v in raw_files(cfg).items()}
    if cfg.preprocess.denoise:
        found["rules"] = resolve_path(cfg.preprocess.rules_file)
    if cfg.preprocess.typo_fix:
        found["typos"] = resolve_path(cfg.preprocess.typo_file)
    return found


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on."""
    return {"preprocess": cfg.preprocess, "data": cfg.data}


def run(ctx: Any) -> dict[str, Any]:
    """Clean each split and write it; return rule counts for the manifest."""
    from src.data.preprocess.denoise import denoise_frame, load_rules
    from src.data.preprocess.typo_fix import fix_typos_frame, load_typos

    cfg = ctx.cfg
    rules = load_rules(resolve_path(cfg.preprocess.rules_file)) if cfg.preprocess.denoise else None
    typos = load_typos(resolve_path(cfg.preprocess.typo_file)) if cfg.preprocess.typo_fix else None
    counts: dict[str, dict[str, int]] = {"denoise": {}, "typo_fix": {}}
    rows = {}
    for split, path in raw_files(cfg).items():
        df = load_split(path, split)
        columns = [c for c in ("dialogue", "summary") if c in df.columns]
        if rules is not None:
            df, c = denoise_frame(df, rules, columns=columns)
            _add(counts["denoise"], c)
        if typos is not None:
            df, c = fix_typos_frame(df, typos, columns=columns)
            _add(counts["typo_fix"], c)
        atomic_write_csv(outputs(ctx)[split], df)
        rows[split] = len(df)
    log.info("preprocess: rows %s, denoise rules applied %s, typo fixes %s", rows,
             sum(counts["denoise"].values()), sum(counts["typo_fix"].values()))
    return {"rows": rows, "rules_applied": counts}


def _add(total: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        total[k] = total.get(k, 0) + int(v)
