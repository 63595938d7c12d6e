"""Paired comparisons over dialogues: a percentile bootstrap interval of a mean, and split agreement.

Every score here is a mean of per-dialogue scores, so two systems scored on the same dialogues are
compared through the per-dialogue differences: the difference is their mean, its 95% interval is the
2.5th and 97.5th percentile of the means of ``resamples`` resamples of the dialogues drawn with
replacement (``numpy.random.default_rng(seed).integers(0, n, (resamples, n))``, percentiles as
``numpy.quantile`` interpolates them). Split agreement is the share of random splits of the dialogues
into two halves (sizes n // 2 and n - n // 2, like a public and a private board) in which both halves
pick the same winner. Used by ``python -m src.compare``, ``python -m src.runs`` and the tune stage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
MAX_CELLS = 20_000_000  # resampled indices held at once (160 MB of int64); more resamples go in blocks


@dataclass(frozen=True)
class Interval:
    """The mean of some per-dialogue values, its bootstrap interval and the share of resamples above 0."""

    mean: float
    low: float
    high: float
    p_above: float  # share of resamples whose mean is > 0 (a tie, mean exactly 0, is not a win)
    n: int

    @property
    def contains_zero(self) -> bool:
        """True when the interval does not decide the sign: not sure which side wins."""
        return self.low <= 0.0 <= self.high

    def as_dict(self) -> dict[str, float]:
        """``{"mean", "ci_low", "ci_high", "p_above", "n"}``."""
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "p_above": self.p_above, "n": self.n}


def resampled_means(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Means of each column of ``values`` (n rows x k columns, or n values) over ``resamples`` bootstrap
    resamples of its rows, shape (resamples, k) (or (resamples,)); all columns share each resample."""
    values = np.asarray(values, dtype=float)
    flat = values.ndim == 1
    table = values[:, None] if flat else values
    n = len(table)
    if n == 0 or resamples < 1:
        raise ValueError("a bootstrap needs at least one row and one resample")
    rng = np.random.default_rng(seed)
    block = max(1, MAX_CELLS // n)
    means = np.empty((resamples, table.shape[1]))
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        index = rng.integers(0, n, size=(stop - start, n))
        for column in range(table.shape[1]):
            means[start:stop, column] = table[:, column][index].mean(axis=1)
    return means[:, 0] if flat else means


def intervals(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL) -> list[Interval]:
    """One ``Interval`` per column of ``values`` (n rows x k columns), all from the same resamples."""
    table = np.asarray(values, dtype=float)
    table = table[:, None] if table.ndim == 1 else table
    means = resampled_means(table, resamples, seed)
    tail = (1.0 - level) / 2
    lows, highs = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return [Interval(mean=float(table[:, k].mean()), low=float(lows[k]), high=float(highs[k]),
                     p_above=float((means[:, k] > 0).mean()), n=len(table)) for k in range(table.shape[1])]


def mean_interval(values: Sequence[float], resamples: int = RESAMPLES, seed: int = 0,
                  level: float = LEVEL) -> Interval:
    """The bootstrap interval of the mean of ``values`` (a paired difference when they are differences)."""
    return intervals(np.asarray(values, dtype=float), resamples, seed, level)[0]


def split_agreement(differences: Sequence[float], splits: int = RESAMPLES, seed: int = 0) -> float:
    """Share of random half splits where both halves pick the same winner (the sign of the summed differences
    in each half: A, B or a tie). NaN for fewer than 2 dialogues."""
    diffs = np.asarray(differences, dtype=float)
    n = len(diffs)
    if n < 2 or splits < 1:
        return float("nan")
    rng = np.random.default_rng(seed)
    half, agree = n // 2, 0
    block = max(1, MAX_CELLS // n)
    for start in range(0, splits, block):
        order = np.argsort(rng.random((min(splits, start + block) - start, n)), axis=1)
        first = np.sign(diffs[order[:, :half]].sum(axis=1))
        second = np.sign(diffs[order[:, half:]].sum(axis=1))
        agree += int((first == second).sum())
    return agree / splits


def verdict(interval: Interval, name_a: str = "A", name_b: str = "B") -> str:
    """One sentence: which side wins with confidence, or "not sure" when the interval contains 0."""
    span = f"95% interval [{interval.low:+.2f}, {interval.high:+.2f}]"
    if interval.contains_zero:
        return f"not sure: the {span} of {name_a} - {name_b} contains 0, so this difference may be noise"
    better, worse = (name_a, name_b) if interval.low > 0 else (name_b, name_a)
    return f"{better} is better than {worse}: the {span} of {name_a} - {name_b} excludes 0"
