"""Searching generation settings on a tuning part of dev: grid or random settings, successive halving.

Every setting is scored on the first ``tune.min_rows`` tuning rows; the best ``tune.keep`` share
goes on to twice as many rows, and so on until one setting is left, the rows run out or the next
round would exceed ``tune.budget`` generated dialogues. Each generated summary is journaled by
(setting, fname), so a resumed search generates only what is missing. The setting with the best
final score on the most rows wins.
"""
from __future__ import annotations

import itertools
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from src.utils.io import json_digest
from src.config import TuneConfig

log = logging.getLogger(__name__)

# keys a setting may set: inference.* generation keys, and instruction (an index into prompt.instruction_variants)
TUNABLE = ("num_beams", "length_penalty", "repetition_penalty", "no_repeat_ngram_size", "max_new_tokens",
           "do_sample", "temperature", "top_p", "cut_unfinished", "instruction")
Setting = dict[str, Any]


def setting_id(setting: Setting) -> str:
    """A short stable name of a setting (its journal key)."""
    return json_digest(setting, 10)


def candidates(tune: TuneConfig, seed: int) -> list[Setting]:
    """Every combination of ``tune.space`` (grid) or ``tune.trials`` of them drawn by seed (random)."""
    keys = sorted(tune.space)
    grid = [dict(zip(keys, values)) for values in itertools.product(*(tune.space[k] for k in keys))]
    if tune.search == "random" and len(grid) > tune.trials:
        grid = random.Random(seed).sample(grid, tune.trials)
    return grid


def rounds(n_settings: int, n_rows: int, tune: TuneConfig) -> list[tuple[int, int]]:
    """(settings, rows) per round of successive halving within the budget (at least one round)."""
    plan: list[tuple[int, int]] = []
    settings, rows, spent = n_settings, min(tune.min_rows, n_rows), 0
    while True:
        cost = settings * rows
        if plan and spent + cost > tune.budget:
            break
        plan.append((settings, rows))
        spent += cost
        if settings == 1 or rows >= n_rows:
            break
        settings, rows = max(1, math.ceil(settings * tune.keep)), min(n_rows, rows * 2)
    return plan


@dataclass
class Trial:
    """One setting's scores on the rows it was scored on."""

    setting: Setting
    scores: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0
    last_round: int = 0

    def row(self) -> dict[str, Any]:
        """One line of tuning.csv."""
        return {"setting": setting_id(self.setting), **{f"param_{k}": v for k, v in self.setting.items()},
                "rows": self.rows, "round": self.last_round, **self.scores, "seconds": round(self.seconds, 2)}


# generate(setting, fnames) -> summaries (journaled by the caller); score(summaries, fnames) -> metrics
Generate = Callable[[Setting, list[str]], list[str]]
Score = Callable[[list[str], list[str]], dict[str, float]]


def search(settings: list[Setting], fnames: list[str], tune: TuneConfig, generate: Generate,
           score: Score) -> list[Trial]:
    """Successive halving; the trials, best first (ranked on the most rows they were scored on)."""
    trials = [Trial(s) for s in settings]
    alive = trials
    for number, (keep, n_rows) in enumerate(rounds(len(settings), len(fnames), tune), start=1):
        alive = sorted(alive, key=lambda t: -t.scores.get("final", -1.0))[:keep]
        rows = fnames[:n_rows]
        for trial in alive:
            start = time.perf_counter()
            trial.scores = score(generate(trial.setting, rows), rows)
            trial.rows, trial.last_round = n_rows, number
            trial.seconds += time.perf_counter() - start
        best = max(alive, key=lambda t: t.scores["final"])
        log.info("tune round %d: %d setting(s) on %d rows; best final %.2f with %s", number, len(alive), n_rows,
                 best.scores["final"], best.setting)
    return sorted(trials, key=lambda t: (-t.rows, -t.scores.get("final", -1.0)))
