"""src.evaluation.paired: the bootstrap interval of a mean, split agreement and the verdict's words."""
from __future__ import annotations

import numpy as np
import pytest

from src.evaluation import paired
from src.evaluation.paired import intervals, mean_interval, resampled_means, split_agreement, verdict


def test_split_agreement_and_interval_helpers() -> None:
    assert split_agreement([1.0] * 10) == 1.0
    assert split_agreement([1.0, -1.0]) == 0.0, "halves of one dialogue each always disagree"
    assert np.isnan(split_agreement([3.0]))
    # a sum of 0 would make the halves always disagree: here A is ahead overall but not in every half
    mixed = split_agreement([4.0, -1.0, -1.0, -1.0, -1.0, 0.5, 0.5, 0.2], splits=500, seed=1)
    assert 0 < mixed < 1
    interval = mean_interval([1.0, 2.0, 3.0, 4.0], resamples=400, seed=0)
    assert interval.mean == 2.5 and 1.0 <= interval.low < 2.5 < interval.high <= 4.0 and interval.p_above == 1.0
    assert verdict(interval).startswith("A is better")
    assert verdict(mean_interval([-1.0, 1.0], resamples=400)).startswith("not sure")



def test_the_interval_is_the_percentile_bootstrap_of_numpy_resamples() -> None:
    values = np.random.default_rng(5).normal(1.0, 3.0, 37)
    found = mean_interval(values, resamples=500, seed=9)
    means = values[np.random.default_rng(9).integers(0, 37, size=(500, 37))].mean(axis=1)
    assert (found.low, found.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert found.mean == pytest.approx(values.mean()) and found.p_above == pytest.approx((means > 0).mean())
    assert found.n == 37 and found.as_dict()["ci_low"] == found.low


def test_blocks_of_resamples_draw_the_same_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    table = np.random.default_rng(1).uniform(0, 1, (37, 2))
    whole = resampled_means(table, resamples=50, seed=4)
    agreement = split_agreement(table[:, 0] - 0.45, splits=50, seed=2)
    monkeypatch.setattr(paired, "MAX_CELLS", 37 * 7)  # 7 resamples per block
    assert np.array_equal(resampled_means(table, resamples=50, seed=4), whole)
    assert split_agreement(table[:, 0] - 0.45, splits=50, seed=2) == agreement


def test_columns_share_their_resamples() -> None:
    values = np.random.default_rng(2).normal(0, 1, (30, 1))
    first, second = intervals(np.hstack([values, values * 2]), resamples=300, seed=0)
    assert (second.low, second.high) == pytest.approx((2 * first.low, 2 * first.high))
    with pytest.raises(ValueError):
        mean_interval([], resamples=10)
