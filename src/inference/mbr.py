"""MBR decoding: several candidates per dialogue, the one with the highest mean ROUGE against the others wins.

The candidates of a dialogue are the configured decode, one per next-best tune setting
(``inference.mbr.from_tune``, read from ``tuning.csv``) and sampled decodes (seeded) up to
``inference.mbr.num_candidates``. Utility = weighted ROUGE-1/2/L F1 on ``evaluation.tokenizer``
(``src.evaluation.consensus``). ``MbrPredictor`` has the predictors' ``predict_dataframe``, so the
infer stage journals whole chunks of selected summaries as it journals plain ones.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
import yaml

from src.config import Config, all_keys, coerce
from src.data.csvfile import read_csv_file
from src.evaluation.consensus import select_consensus
from src.utils.errors import UserError

log = logging.getLogger(__name__)

Run = dict[str, Any]  # generation overrides of one candidate; "seed" is set before a sampled run


def tune_runs(tuning_csv: Optional[Path], k: int) -> list[Run]:
    """Overrides of the k settings ranked after the best one in ``tuning.csv`` (the best is the main decode)."""
    if k <= 0 or tuning_csv is None or not Path(tuning_csv).is_file():
        return []
    table = read_csv_file(Path(tuning_csv), "tuning table")
    params = [c for c in table.columns if c.startswith("param_") and c != "param_instruction"]
    # one prompt per predictor: no instruction runs; the first row is the best setting, the main decode
    return [_typed_run(Path(tuning_csv), i + 2, row) for i, row in enumerate(table[params].to_dict("records"))
            if 1 <= i <= k]


def _typed_run(path: Path, line: int, row: dict[str, Any]) -> Run:
    """A tuning.csv row's ``param_*`` cells as typed ``inference.*`` values; UserError naming line and column."""
    schema, run = all_keys(), {}
    for column, text in row.items():
        key = column[len("param_"):]
        if text is None or (isinstance(text, float) and pd.isna(text)):
            continue  # a setting that did not set this key
        if f"inference.{key}" not in schema:
            raise UserError(f"{path}: line 1: column {column!r} is no inference setting; rerun the tune stage")
        try:
            run[key] = coerce(key, yaml.safe_load(str(text)), schema[f"inference.{key}"][0])
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise UserError(f"{path}: line {line}: column {column} = {text!r}: {exc}; fix the cell or rerun the "
                            "tune stage") from None
    return run


def candidate_runs(cfg: Config, tuning_csv: Optional[Path]) -> list[Run]:
    """The main decode, the tune settings, then seeded samples: ``mbr.num_candidates`` runs in all."""
    mbr = cfg.inference.mbr
    runs: list[Run] = [{}] + tune_runs(tuning_csv, min(mbr.from_tune, mbr.num_candidates - 1))
    for i in range(mbr.num_candidates - len(runs)):
        runs.append({"do_sample": True, "temperature": mbr.temperature, "top_p": mbr.top_p, "num_beams": 1,
                     "seed": cfg.seed + 1 + i})
    return runs


@dataclass
class MbrPredictor:
    """Wraps a predictor: ``predict_dataframe`` returns each dialogue's consensus candidate."""

    base: Any
    runs: list[Run]
    tokenizer: str
    weights: tuple[float, ...]
    chunk: int = 32
    picks: list[int] = field(default_factory=list)  # which run won, per dialogue (for the manifest)
    last_main: list[str] = field(default_factory=list)  # the last chunk's main decode (run 0), for the journal

    @property
    def stats(self) -> Any:
        """The wrapped predictor's generation counters."""
        return self.base.stats

    @stats.setter
    def stats(self, value: Any) -> None:
        self.base.stats = value

    def predict_dataframe(self, df: pd.DataFrame, on_batch: Optional[Callable[[list[str], list[str]], None]] = None,
                          **overrides: Any) -> pd.DataFrame:
        """``fname,summary``: per chunk, every run's candidates, then the consensus per dialogue. ``last_main`` holds
        the chunk's main decode (run 0) when ``on_batch`` is called, so the journal keeps the single decode too."""
        fnames, dialogues = df["fname"].astype(str).tolist(), df["dialogue"].astype(str).tolist()
        out: list[str] = []
        for start in range(0, len(fnames), self.chunk):
            names, texts = fnames[start:start + self.chunk], dialogues[start:start + self.chunk]
            pools = self._candidates(texts, names, overrides)
            self.last_main = [pool[0] for pool in pools]
            chosen = self._select(pools)
            out += chosen
            if on_batch is not None:
                on_batch(names, chosen)
        return pd.DataFrame({"fname": fnames, "summary": out})

    def _candidates(self, texts: list[str], names: list[str], overrides: dict[str, Any]) -> list[list[str]]:
        import torch

        per_run = []
        for run in self.runs:
            settings = {**overrides, **{k: v for k, v in run.items() if k != "seed"}}
            if "seed" in run:
                torch.manual_seed(int(run["seed"]))  # each sampled candidate is reproducible
            per_run.append(self.base.predict_batch(texts, names, **settings))
        return [list(pool) for pool in zip(*per_run)]

    def _select(self, pools: list[list[str]]) -> list[str]:
        picks = select_consensus(pools, tokenizer=self.tokenizer, weights=self.weights)
        self.picks += picks
        return [pool[i] for pool, i in zip(pools, picks)]

    def summary(self) -> dict[str, Any]:
        """How often each run's candidate won (0 is the configured decode)."""
        counts = pd.Series(self.picks).value_counts().sort_index()
        return {"candidates": len(self.runs), "runs": self.runs, "wins": {int(k): int(v) for k, v in counts.items()}}
