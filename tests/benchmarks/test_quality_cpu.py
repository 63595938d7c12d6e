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
