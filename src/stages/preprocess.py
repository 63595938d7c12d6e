"""Preprocess stage: materialize each split from its sources, denoise and typo-fix it into ``<clean_dir>/<run>/``.

Every downstream stage reads the canonical CSVs written here (``fname,dialogue,summary[,topic],source``).
``dev_references.csv`` is the dev split before cleaning: the evaluate stage scores against it, so
scores are against the summaries as given, on exactly the dev rows that were predicted.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from src.config import Config, SPLITS, resolve_input
from src.context import RunContext
from src.data.preprocess.denoise import denoise_frame, load_rules
from src.data.preprocess.typo_fix import fix_typos_frame, load_typos
from src.data.sources import REJECTED_COLUMNS, is_plain, load_split_sources, local_inputs, plain_file
from src.utils.errors import UserError
from src.utils.io import atomic_write_csv

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

name = "preprocess"
# the sources themselves are checked for every run by src.data.sources.preflight_problems (src.run)
required: tuple[str, ...] = ()
command_line: tuple[str, ...] = ()  # sections whose command-line keys win (src.pipeline.fingerprint)


def outputs(ctx: RunContext) -> dict[str, Path]:
    """Cleaned splits, the uncleaned dev references, and the training rows the length filters dropped."""
    out = {split: ctx.clean_dir / f"{split}.csv" for split in SPLITS}
    out["dev_references"] = ctx.clean_dir / "dev_references.csv"
    out["rejected"] = ctx.clean_dir / "rejected.csv"
    return out


def fallback(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Skipped preprocessing: a split that is one canonical CSV is read as it is; any other split has no
    stand-in, so its (missing) clean path is named and the run stops before it starts."""
    planned = outputs(ctx)
    found: dict[str, Optional[Path]] = {s: plain_file(ctx.cfg, s) if is_plain(ctx.cfg, s) else planned[s] for s in SPLITS}
    found["dev_references"] = found["dev"] if is_plain(ctx.cfg, "dev") else planned["dev_references"]
    return found


def inputs(ctx: RunContext) -> dict[str, Optional[Path]]:
    """Local source files and folders, and the rule tables."""
    cfg = ctx.cfg
    found: dict[str, Optional[Path]] = dict(local_inputs(cfg))
    if cfg.preprocess.denoise:
        found["rules"] = resolve_input(cfg.preprocess.rules_file)
    if cfg.preprocess.typo_fix:
        found["typos"] = resolve_input(cfg.preprocess.typo_file)
    return found


def config_parts(cfg: Config) -> dict[str, Any]:
    """Settings this stage depends on (the seed draws the fraction, max_rows and weight samples)."""
    return {"preprocess": cfg.preprocess, "data": cfg.data, "seed": cfg.seed}


def check(ctx: RunContext) -> list[str]:
    """The rule tables exist and parse (the data sources are checked for every run by src.run)."""
    problems = []
    try:
        _cleaner(ctx.cfg)
    except UserError as exc:
        problems += exc.problems
    return problems


def run(ctx: RunContext) -> dict[str, Any]:
    """Materialize, clean and write each split; return row, source, filter and rule counts for the manifest."""
    import pandas as pd


    cfg, out = ctx.cfg, outputs(ctx)
    clean = _cleaner(cfg)
    counts: dict[str, dict[str, int]] = {"denoise": {}, "typo_fix": {}}
    rows, sources, rejected = {}, {}, []
    for split in SPLITS:
        data = load_split_sources(cfg, split)
        if split == "dev":
            atomic_write_csv(out["dev_references"], data.frame)
        df = clean(data.frame, counts)
        atomic_write_csv(out[split], df)
        rows[split], sources[split] = len(df), data.rows_by_source
        rejected.append(data.rejected)
    dropped = pd.concat([r for r in rejected if len(r)] or [pd.DataFrame(columns=REJECTED_COLUMNS)], ignore_index=True)
    atomic_write_csv(out["rejected"], dropped)
    reasons = {str(k): int(v) for k, v in dropped["reason"].value_counts().items()}
    log.info("preprocess: rows %s, sources %s, filtered %s, denoise rules applied %s, typo fixes %s", rows, sources,
             reasons or "none", sum(counts["denoise"].values()), sum(counts["typo_fix"].values()))
    return {"rows": rows, "sources": sources, "filtered": reasons, "rules_applied": counts}


Cleaner = Callable[["pd.DataFrame", dict[str, dict[str, int]]], "pd.DataFrame"]


def _cleaner(cfg: Config) -> Cleaner:
    """A function (frame, counts) -> cleaned frame applying the configured rule tables."""
    rules = load_rules(resolve_input(cfg.preprocess.rules_file)) if cfg.preprocess.denoise else None
    typos = load_typos(resolve_input(cfg.preprocess.typo_file)) if cfg.preprocess.typo_fix else None

    def clean(df: "pd.DataFrame", counts: dict[str, dict[str, int]]) -> "pd.DataFrame":
        columns = tuple(c for c in ("dialogue", "summary") if c in df.columns)
        if rules is not None:
            df, c = denoise_frame(df, rules, columns=columns)
            _add(counts["denoise"], c)
        if typos is not None:
            df, c = fix_typos_frame(df, typos, columns=columns)
            _add(counts["typo_fix"], c)
        return df

    return clean


def _add(total: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        total[k] = total.get(k, 0) + int(v)
