"""training.eval_file: the training-time eval reads its own rows instead of the dev split."""
from __future__ import annotations

from pathlib import Path

from src.config import load_config
from src.run import make_context
from src.stages import train as train_stage


def _ctx(tmp_path: Path, *overrides: str):
    cfg = load_config(None, [f"paths.data_dir={tmp_path}", f"paths.output_dir={tmp_path / 'out'}",
                             f"paths.clean_dir={tmp_path / 'clean'}", f"paths.model_dir={tmp_path / 'model'}",
                             *overrides])
    return make_context(cfg, "r", False, ("preprocess", "merge", "train"))


def test_the_training_eval_reads_the_dev_split_unless_eval_file_names_other_rows(tmp_path: Path) -> None:
    assert train_stage.inputs(_ctx(tmp_path))["dev"] == tmp_path / "clean" / "r" / "dev.csv"
    (tmp_path / "tune.csv").write_text("fname,dialogue,summary\nt1,#Person1#: 안녕,인사한다.\n", encoding="utf-8")
    ctx = _ctx(tmp_path, "training.eval_file=tune.csv")
    assert train_stage.inputs(ctx)["dev"] == tmp_path / "tune.csv"
    assert not any("eval_file" in p for p in train_stage.check(ctx))


def test_a_missing_eval_file_is_one_line_naming_the_key(tmp_path: Path) -> None:
    problems = train_stage.check(_ctx(tmp_path, "training.eval_file=nope.csv"))
    assert len(problems) == 1 and problems[0].startswith("training.eval_file: ")
    assert str(tmp_path / "nope.csv") in problems[0]
