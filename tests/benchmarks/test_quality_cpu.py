"""benchmarks.quality_cpu's own logic (its runs need the real model): the seeded split and the recipe it reports."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from benchmarks import quality_cpu
from src.config import load_config
from src.run import config_yaml
from tests.conftest import need_shared


def test_another_seed_is_another_split_of_the_same_rows(tmp_path: Path) -> None:
    need_shared(quality_cpu.DEV)
    first, second = quality_cpu.split(tmp_path / "a"), quality_cpu.split(tmp_path / "b", seed=7)
    parts = {name: [pd.read_csv(d / f"{name}.csv", dtype=str) for d in (first, second)] for name in ("train", "tune", "dev")}
    assert [len(parts[n][0]) for n in parts] == [370, 30, 99]
    assert set(parts["dev"][0]["fname"]) != set(parts["dev"][1]["fname"])
    for data in (0, 1):
        names = [set(parts[n][data]["fname"]) for n in parts]
        assert len(set.union(*names)) == 499 and not (names[0] & names[2]), "held-out rows never trained on"


def test_the_recipe_is_what_the_saved_config_holds(tmp_path: Path) -> None:
    run = tmp_path / "output" / "finetuned"
    run.mkdir(parents=True)
    cfg = load_config(quality_cpu.PRESET, ["training.learning_rate=3e-4", "training.lora.r=8"])
    (run / "config.yaml").write_text(config_yaml(cfg), encoding="utf-8")
    got = quality_cpu.recipe(tmp_path, "finetuned")
    assert got["training.learning_rate"] == 3e-4 and got["lora.r"] == 8
    assert set(got) == {f"{part}.{key}" for part, keys in quality_cpu.RECIPE_KEYS.items() for key in keys}


def test_tuning_scores_report_the_eval_of_the_checkpoint_the_trainer_kept(tmp_path: Path) -> None:
    run = tmp_path / "output" / "finetuned"
    run.mkdir(parents=True)
    pd.DataFrame({"step": [10, 31, 40, 62], "loss": [2.0, None, 1.8, None],
                  "eval_rouge_final": [None, 30.123, None, 29.5]}).to_csv(run / "train_log.csv", index=False)
    finals = {31: 30.12, 62: 29.5}
    kept = str(tmp_path / "model" / "finetuned" / "checkpoint-31")
    assert quality_cpu.tuning_scores(tmp_path, "finetuned", kept) == {"tune_final": 30.12, "tune_finals": finals}
    assert quality_cpu.tuning_scores(tmp_path, "finetuned", None) == {"tune_final": 29.5, "tune_finals": finals}
    pd.DataFrame({"step": [10], "loss": [2.0]}).to_csv(run / "train_log.csv", index=False)  # no ROUGE eval ran
    assert quality_cpu.tuning_scores(tmp_path, "finetuned", kept) == {"tune_final": None, "tune_finals": {}}


def test_work_folders_share_the_converted_model_instead_of_converting_again(tmp_path: Path) -> None:
    (tmp_path / "repo" / "model" / "embedded" / "gemma-3-270m").mkdir(parents=True)
    quality_cpu.share_embedded(tmp_path / "work" / "model", tmp_path / "repo" / "model")
    assert (tmp_path / "work" / "model" / "embedded" / "gemma-3-270m").is_dir()
    quality_cpu.share_embedded(tmp_path / "work" / "model", tmp_path / "repo" / "model")  # a second run: kept as is
    quality_cpu.share_embedded(tmp_path / "repo" / "model", tmp_path / "repo" / "model")  # the repo's own folder
    assert not (tmp_path / "repo" / "model" / "embedded").is_symlink()


def test_cross_validation_holds_every_row_out_once_and_never_trains_on_it(tmp_path: Path) -> None:
    from benchmarks import quality_cv

    need_shared(quality_cpu.DEV)
    folders = quality_cv.fold_splits(tmp_path, 3, seed=11)
    everything = pd.read_csv(tmp_path / "data" / "dev.csv", dtype=str)
    held = []
    for fold in folders:
        parts = {n: set(pd.read_csv(fold / "data" / f"{n}.csv", dtype=str)["fname"]) for n in ("train", "tune", "dev")}
        assert len(parts["tune"]) == quality_cv.TUNE_ROWS
        assert not (parts["train"] & parts["dev"]) and not (parts["tune"] & parts["dev"]) and not (parts["train"] & parts["tune"])
        assert parts["train"] | parts["tune"] | parts["dev"] == set(everything["fname"])
        held += sorted(parts["dev"])
    assert sorted(held) == sorted(everything["fname"]), "each of the 499 rows is held out exactly once"
    assert [len(pd.read_csv(f / "data" / "dev.csv")) for f in folders] == [167, 166, 166]
    again = quality_cv.fold_splits(tmp_path / "again", 3, seed=11)
    assert all((a / "data" / "dev.csv").read_text() == (b / "data" / "dev.csv").read_text() for a, b in zip(folders, again))


def test_cross_validation_refuses_a_fold_count_that_leaves_no_training_rows(tmp_path: Path) -> None:
    import pytest

    from benchmarks import quality_cv

    need_shared(quality_cpu.DEV)
    with pytest.raises(SystemExit, match="--folds 1"):
        quality_cv.fold_splits(tmp_path, 1)


def test_cross_validated_scores_have_the_interval_of_an_independent_bootstrap(tmp_path: Path) -> None:
    import numpy as np

    from benchmarks import quality_cv
    from src.evaluation import score_rows

    refs = pd.DataFrame({"fname": [f"d{i}" for i in range(12)],
                         "summary": ["두 사람이 점심을 먹는다.", "회의 시간을 정한다.", "여행 계획을 세운다."] * 4})
    preds = refs.assign(summary=["두 사람이 저녁을 먹는다.", "회의를 정한다.", "계획을 세운다."] * 4)
    refs.to_csv(tmp_path / "r.csv", index=False)
    preds.to_csv(tmp_path / "p.csv", index=False)
    got = quality_cv.scored(tmp_path / "p.csv", tmp_path / "r.csv")
    rows = np.array([100 * sum(r) / 3 for r in score_rows(preds["summary"].tolist(), [[s] for s in refs["summary"]],
                                                          tokenizer="kiwi")])
    means = rows[np.random.default_rng(0).integers(0, len(rows), (2000, len(rows)))].mean(axis=1)
    assert got["kiwi"]["final"] == round(rows.mean(), 2)
    assert got["ci"] == (round(float(np.quantile(means, 0.025)), 2), round(float(np.quantile(means, 0.975)), 2))


def test_one_fold_needs_its_fold_count(monkeypatch) -> None:
    import pytest

    for argv in (["--fold", "0"], ["--folds", "2", "--fold", "2"]):
        monkeypatch.setattr("sys.argv", ["quality_cpu", *argv])
        with pytest.raises(SystemExit) as exc:
            quality_cpu.main()
        assert exc.value.code == 2
