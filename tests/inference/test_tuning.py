"""The generation search: grid/random settings, successive halving within the budget, journaled generation."""
from __future__ import annotations

from dataclasses import replace

import pytest

from src.config import TuneConfig, load_config
from src.inference.tuning import candidates, rounds, search, setting_id
from src.inference.tuning_run import space_problems

TUNE = TuneConfig(rows=40, budget=100, min_rows=5, keep=0.5,
                  space={"num_beams": [1, 2, 4], "length_penalty": [0.8, 1.2]})


def test_grid_and_random_settings() -> None:
    grid = candidates(TUNE, seed=0)
    assert len(grid) == 6 and {"num_beams": 4, "length_penalty": 0.8} in grid
    drawn = candidates(replace(TUNE, search="random", trials=3), seed=0)
    assert len(drawn) == 3 and all(d in grid for d in drawn)
    assert drawn == candidates(replace(TUNE, search="random", trials=3), seed=0)
    assert setting_id({"a": 1, "b": 2}) == setting_id({"b": 2, "a": 1})


def test_rounds_halve_the_settings_double_the_rows_and_fit_the_budget() -> None:
    plan = rounds(6, 40, TUNE)
    assert plan == [(6, 5), (3, 10), (2, 20)]
    assert sum(s * r for s, r in plan) <= TUNE.budget
    assert rounds(1, 40, TUNE) == [(1, 5)]
    assert rounds(6, 3, TUNE) == [(6, 3)], "few rows: one round on all of them"


def test_search_keeps_the_best_and_generates_each_row_once() -> None:
    calls: list[tuple[str, int]] = []

    def generate(setting, rows):
        calls.append((setting_id(setting), len(rows)))
        return [str(setting["num_beams"] * setting["length_penalty"])] * len(rows)

    def score(summaries, fnames):
        value = float(summaries[0])
        return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "final": -abs(value - 2.4)}

    trials = search(candidates(TUNE, 0), [f"d{i}" for i in range(40)], TUNE, generate, score)
    assert trials[0].setting == {"length_penalty": 1.2, "num_beams": 2} and trials[0].rows == 20
    assert sum(n for _, n in calls) <= TUNE.budget


def test_space_problems_name_the_key() -> None:
    bad = load_config(None, ["tune.space={num_beams: [0, 2], colour: [1], instruction: [9]}"], debug_small=True)
    problems = space_problems(bad)
    assert any("'tune.space.num_beams'" in p and ">= 1" in p for p in problems)
    assert any("'tune.space.colour': not a tunable key" in p for p in problems)
    assert any("'tune.space.instruction'" in p and "indices" in p for p in problems)
    assert space_problems(load_config(None, [], debug_small=True)) == []


@pytest.mark.parametrize("key", ["tune.rows=1", "tune.keep=1", "tune.search=bayes"])
def test_tune_keys_are_checked_by_the_config(key: str) -> None:
    from src.utils.errors import UserError

    with pytest.raises(UserError):
        load_config(None, [key])


def test_the_tuning_rows_file_is_read_strictly(tmp_path) -> None:
    from src.utils.errors import UserError
    from src.inference.tuning_run import excluded_rows

    rows = tmp_path / "tuning_rows.csv"
    rows.write_text("fname\ndev_1\ndev_2\n", encoding="utf-8")
    assert excluded_rows(rows) == {"dev_1", "dev_2"}
    rows.write_text("name\ndev_1\n", encoding="utf-8")
    with pytest.raises(UserError, match="no column 'fname'"):
        excluded_rows(rows)
    rows.write_text("fname\ndev_1,dev_2\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2: 2 fields where the header has 1"):
        excluded_rows(rows)


def test_tune_rows_above_the_dev_size_warns_what_is_searched(caplog) -> None:
    import logging

    import pandas as pd

    from src.inference.tuning_run import tuning_rows

    dev = pd.DataFrame({"fname": [f"dev_{i}" for i in range(5)]})
    with caplog.at_level(logging.WARNING, logger="src.inference.tuning_run"):
        rows = tuning_rows(dev, 100, 0)
    assert len(rows) == 4
    assert ("tune.rows = 100 but dev has 5 rows: the search runs on 4 of them and the reported dev score rests on "
            "the 1 row(s) left") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="src.inference.tuning_run"):
        assert len(tuning_rows(dev, 2, 0)) == 2
    assert caplog.text == ""


def test_the_tune_stage_records_its_mbr_check_without_generating_more(tmp_path, monkeypatch) -> None:
    import yaml

    from src.inference import tuning_run
    from src.inference.settings import InferenceSettings
    from tests.inference.conftest import DEBUG

    calls: list[tuple[int, int]] = []

    class Fake:
        """One beam: the dialogue's first words; more beams: the summary-like last words (the two agree)."""

        def predict_batch(self, dialogues, fnames, **overrides):
            beams = overrides.get("num_beams", 1)
            calls.append((beams, len(fnames)))
            return [" ".join(d.split()[:6] if beams == 1 else d.split()[-6:]) for d in dialogues]

    monkeypatch.setattr(tuning_run, "load_predictor", lambda settings, pool: Fake())
    cfg = load_config(None, ["tune.rows=8", "tune.budget=40", "tune.min_rows=4", "tune.space={num_beams: [1, 2, 3]}",
                             "inference.mbr.num_candidates=3", "inference.mbr.from_tune=2",
                             "evaluation.tokenizer=whitespace"])
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "weights.bin").write_bytes(b"w")
    outputs = {k: tmp_path / name for k, name in (("tuning", "tuning.csv"), ("plot", "tuning.png"),
                                                   ("best", "best_generation.yaml"), ("rows", "tuning_rows.csv"),
                                                   ("journal", "tuning.journal.jsonl"))}
    result = tuning_run.tune_generation(cfg, InferenceSettings(cfg, tmp_path / "ckpt", None), DEBUG / "dev.csv",
                                        outputs)
    written = yaml.safe_load(outputs["best"].read_text(encoding="utf-8"))["mbr"]
    assert result["mbr"] == written and written["candidates"] == 3 and written["rows"] >= 4
    assert written["use"] == (written["ci_low"] > 0) and written["reason"].startswith("tune.select=confident")
    generated: dict[int, int] = {}
    for beams, n in calls:
        generated[beams] = generated.get(beams, 0) + n
    assert max(generated.values()) <= 8, "every summary of the check came from the search's journal"
