"""The tune stage's baseline and choice (issue 30): the run's own setting is in the search, scored on every row any
other setting was scored on, and a setting replaces it under tune.select=confident only when its paired interval
lies above 0."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from src.config import TuneConfig, load_config
from src.inference.tune_select import (baseline_setting, choose, compare_with_baseline, row_scorer, score_baseline,
                                       table_columns)
from src.inference.tuning import candidates, search, setting_id

TUNE = TuneConfig(rows=40, budget=100, min_rows=5, keep=0.5, space={"num_beams": [2, 4], "length_penalty": [0.8, 1.2]})
FNAMES = [f"d{i}" for i in range(40)]


def fake_search(quality: dict[tuple, np.ndarray]):
    """generate/score where a setting's summary of row i is its per-row score there (quality[(beams, penalty)])."""
    calls: list[tuple[str, int]] = []

    def generate(setting, rows):
        calls.append((setting_id(setting), len(rows)))
        values = quality[(setting["num_beams"], setting["length_penalty"])]
        return [str(values[int(f[1:])]) for f in rows]

    def score(summaries, fnames):
        final = float(np.mean([float(s) for s in summaries]))
        return {"rouge1": final / 100, "rouge2": final / 100, "rougeL": final / 100, "final": final}

    def row_score(summaries, fnames):
        return [float(s) for s in summaries]

    return generate, score, row_score, calls


def qualities(better: float, noisy: float, spread_better: float = 0.0, spread_noisy: float = 15.0,
              seed: int = 0) -> dict[tuple, np.ndarray]:
    """Per-row scores: the baseline (1 beam, 1.0); (4, 1.2) better by ``better`` on average, (2, 0.8) by ``noisy``,
    each row alternately above and below that by its spread; the others worse."""
    base = np.random.default_rng(seed).uniform(20, 40, 40)
    signs = np.where(np.arange(40) % 2 == 0, 1.0, -1.0)
    return {(1, 1.0): base, (4, 1.2): base + better + spread_better * signs,
            (2, 0.8): base + noisy + spread_noisy * signs, (2, 1.2): base - 5, (4, 0.8): base - 6}


def run_choice(quality: dict[tuple, np.ndarray], select: str):
    generate, score, row_score, calls = fake_search(quality)
    trials = search(candidates(TUNE, 0), FNAMES, TUNE, generate, score)
    ranked, baseline = score_baseline(trials, {"length_penalty": 1.0, "num_beams": 1}, FNAMES, generate, score)
    intervals = compare_with_baseline(ranked, baseline, FNAMES, generate, row_score, seed=7)
    chosen, reason = choose(ranked, baseline, intervals, select)
    return ranked, baseline, intervals, chosen, reason, calls


def test_the_baseline_is_scored_on_every_row_any_setting_was_scored_on() -> None:
    ranked, baseline, intervals, _, _, calls = run_choice(qualities(3.0, 0.0), "confident")
    assert baseline in ranked and len(ranked) == 5 and baseline.setting == {"length_penalty": 1.0, "num_beams": 1}
    assert baseline.rows == max(t.rows for t in ranked) == 20
    assert set(intervals) == {setting_id(t.setting) for t in ranked if t is not baseline}
    assert all(intervals[setting_id(t.setting)].n == t.rows for t in ranked if t is not baseline)
    generated = {}
    for key, n in calls:
        generated[key] = max(generated.get(key, 0), n)
    assert generated[setting_id(baseline.setting)] == 20


def test_confident_keeps_the_baseline_unless_a_setting_wins_with_confidence() -> None:
    *_, chosen, reason, _ = run_choice(qualities(3.0, -10.0), "confident")
    assert chosen.setting == {"length_penalty": 1.2, "num_beams": 4} and "interval above 0" in reason
    ranked, baseline, intervals, chosen, reason, _ = run_choice(qualities(0.5, 1.0, 8.0), "confident")
    top = [t for t in ranked if t is not baseline][0]
    assert intervals[setting_id(top.setting)].contains_zero
    assert chosen is baseline and "the baseline stays" in reason and "not sure" in reason
    # tune.select=best is the old rule: the best final on the most rows, however noisy
    ranked, baseline, _, best, reason, _ = run_choice(qualities(0.5, 1.0, 8.0), "best")
    assert best is ranked[0] and best is not baseline and reason.startswith("tune.select=best")


def test_the_difference_and_interval_match_an_independent_bootstrap() -> None:
    quality = qualities(1.0, 2.0, seed=3)
    ranked, baseline, intervals, *_ = run_choice(quality, "confident")
    trial = next(t for t in ranked if t.setting == {"length_penalty": 0.8, "num_beams": 2})
    diffs = (quality[(2, 0.8)] - quality[(1, 1.0)])[:trial.rows]
    found = intervals[setting_id(trial.setting)]
    assert found.mean == pytest.approx(diffs.mean())
    means = diffs[np.random.default_rng(7).integers(0, len(diffs), size=(2000, len(diffs)))].mean(axis=1)
    assert (found.low, found.high) == pytest.approx((np.percentile(means, 2.5), np.percentile(means, 97.5)))
    columns = table_columns(trial, baseline, baseline, intervals)
    assert columns == {"baseline": False, "chosen": False, "diff": found.mean, "ci_low": found.low,
                       "ci_high": found.high}
    assert np.isnan(table_columns(baseline, baseline, baseline, intervals)["diff"])


def test_a_grid_setting_equal_to_the_baseline_is_the_baseline() -> None:
    quality = qualities(3.0, 0.0)
    quality[(4, 1.0)], quality[(1, 1.2)] = quality[(4, 0.8)], quality[(2, 1.2)]
    tune = replace(TUNE, space={"num_beams": [1, 4], "length_penalty": [1.0, 1.2]})
    generate, score, row_score, _ = fake_search(quality)
    trials = search(candidates(tune, 0), FNAMES, tune, generate, score)
    ranked, baseline = score_baseline(trials, {"length_penalty": 1.0, "num_beams": 1}, FNAMES, generate, score)
    assert len(ranked) == 4 and sum(t is baseline for t in ranked) == 1


def test_baseline_setting_is_the_runs_own_values() -> None:
    cfg = load_config(None, ["inference.num_beams=3", "inference.length_penalty=1.1"], debug_small=True)
    assert baseline_setting(cfg, ["num_beams", "length_penalty"]) == {"length_penalty": 1.1, "num_beams": 3}
    variants = list(cfg.prompt.instruction_variants)
    with_variant = replace(cfg, prompt=replace(cfg.prompt, instruction=variants[1]))
    assert baseline_setting(with_variant, ["instruction"]) == {"instruction": 1}
    other = replace(cfg, prompt=replace(cfg.prompt, instruction="요약하세요!"))
    assert baseline_setting(other, ["instruction"]) == {}, "an instruction that is no variant stays the run's own"


def test_row_scorer_is_the_per_row_final_of_the_evaluator() -> None:
    from src.evaluation import score_texts

    refs = {"a": "the cat sat on the mat", "b": "a dog ran"}
    rows = row_scorer(refs, "whitespace")(["the cat sat", "a dog ran"], ["a", "b"])
    assert rows[1] == pytest.approx(100.0)
    assert np.mean(rows) == pytest.approx(score_texts(["the cat sat", "a dog ran"], [[refs["a"]], [refs["b"]]],
                                                      "whitespace")["final"])


def test_tune_select_is_a_checked_config_key() -> None:
    from src.utils.errors import UserError

    assert load_config(None, []).tune.select == "confident"
    assert load_config(None, ["tune.select=best"]).tune.select == "best"
    with pytest.raises(UserError, match="tune.select"):
        load_config(None, ["tune.select=bestest"])


# ---------------------------------------------------------------- MBR under the same rule (mbr_check)

def mbr_trials(good: np.ndarray, rows: tuple[int, int, int] = (40, 40, 40)):
    """Three tune candidates in tuning.csv order (chosen first); on every row the second and third agree, so MBR
    picks their text, whose per-row final is the chosen one's plus ``good[i]``."""
    from src.inference.tuning import Trial

    base = np.random.default_rng(1).uniform(20, 40, 40)
    texts = {1: [f"말 {i} 하나 둘" for i in range(40)], 2: [f"다른 {i} 셋 넷" for i in range(40)]}
    texts[3] = texts[2]
    score_of = {**dict(zip(texts[1], base)), **dict(zip(texts[2], base + good))}

    def generate(setting, fnames):
        return [texts[setting["num_beams"]][int(f[1:])] for f in fnames]

    def row_score(summaries, fnames):
        return [float(score_of[s]) for s in summaries]

    trials = [Trial({"num_beams": k}, {"final": 30.0}, rows=n) for k, n in zip((1, 2, 3), rows)]
    return trials, generate, row_score


def check(good: np.ndarray, select: str, rows=(40, 40, 40), **mbr):
    from src.config import MbrConfig
    from src.inference.tune_select import mbr_check

    trials, generate, row_score = mbr_trials(good, rows)
    config = MbrConfig(**{"num_candidates": 3, "from_tune": 2, **mbr})
    return mbr_check(trials, FNAMES, generate, row_score, config, "whitespace", select, seed=7)


def test_confident_keeps_mbr_only_when_its_interval_lies_above_0() -> None:
    signs = np.where(np.arange(40) % 2 == 0, 1.0, -1.0)
    sure = check(2.0 + signs, "confident")
    assert sure is not None and sure.use and sure.interval is not None and sure.interval.low > 0
    assert sure.candidates == 3 and sure.rows == 40 and "MBR stays on" in sure.reason
    noisy = check(0.3 + 8 * signs, "confident")
    assert noisy is not None and not noisy.use and noisy.interval is not None and noisy.interval.contains_zero
    assert "not sure" in noisy.reason and "num_candidates=1" in noisy.reason
    worse = check(np.full(40, -3.0), "confident")
    assert worse is not None and not worse.use and "worse" in worse.reason
    best = check(0.3 + 8 * signs, "best")
    assert best is not None and best.use and best.reason.startswith("tune.select=best") and "as configured" in best.reason
    assert best.as_dict()["diff"] == pytest.approx(noisy.as_dict()["diff"]), "the check is reported under best too"


def test_the_mbr_interval_matches_an_independent_bootstrap_on_the_common_rows() -> None:
    good = np.random.default_rng(5).normal(1.0, 3.0, 40)
    found = check(good, "confident", rows=(40, 40, 20))
    assert found is not None and found.rows == 20 and found.interval is not None and found.interval.n == 20
    diffs = good[:20]
    means = diffs[np.random.default_rng(7).integers(0, 20, size=(2000, 20))].mean(axis=1)
    assert found.interval.mean == pytest.approx(diffs.mean())
    assert (found.interval.low, found.interval.high) == pytest.approx((np.percentile(means, 2.5),
                                                                       np.percentile(means, 97.5)))
    record = found.as_dict()
    assert set(record) == {"candidates", "rows", "diff", "ci_low", "ci_high", "p_above", "use", "reason"}


def test_only_the_tune_candidates_are_checked_when_samples_join_them() -> None:
    found = check(np.full(40, 2.0), "confident", num_candidates=5, from_tune=1)
    assert found is not None and found.candidates == 2
    assert "only the 2 tune candidate(s) were checked, not the 3 sampled one(s)" in found.reason
    assert check(np.full(40, 2.0), "confident", num_candidates=1) is None
    assert check(np.full(40, 2.0), "confident", from_tune=0) is None
    lone = check(np.full(40, 2.0), "confident", num_candidates=2, from_tune=1, rows=(40, 0, 0))
    assert lone is not None and not lone.use and lone.interval is None and "no second tune candidate" in lone.reason
