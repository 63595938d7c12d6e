"""Bad config and bad data stop the run before any stage, with exit 2 and a line naming the culprit."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, tmp_paths


def debug_copy(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "debug", data)
    return data


def run_bad(tmp_path: Path, data: Path, *extra: str):
    res = run_cli(["--debug-small", "--run-name", "bad", f"paths.data_dir={data}", *tmp_paths(tmp_path), *extra],
                  timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "output" / "bad").exists(), "nothing may be written before the checks pass"
    return res.stderr


def edit_csv(path: Path, edit) -> None:
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(df)
    df.to_csv(path, index=False)


def test_unknown_key(tmp_path: Path) -> None:
    err = run_bad(tmp_path, debug_copy(tmp_path), "training.lerning_rate=1e-4")
    assert "unknown config key 'training.lerning_rate'" in err and "training.learning_rate" in err


def test_wrong_type(tmp_path: Path) -> None:
    err = run_bad(tmp_path, debug_copy(tmp_path), "inference.batch_size=eight")
    assert "'inference.batch_size'" in err


@pytest.mark.slow
def test_missing_column(tmp_path: Path) -> None:
    data = debug_copy(tmp_path)
    edit_csv(data / "train.csv", lambda df: df.drop(columns=["summary"], inplace=True))
    err = run_bad(tmp_path, data)
    assert "train.csv" in err and "missing column(s) summary" in err


@pytest.mark.slow
def test_duplicate_fname(tmp_path: Path) -> None:
    data = debug_copy(tmp_path)
    edit_csv(data / "dev.csv", lambda df: df.__setitem__("fname", ["dev_0"] * len(df)))
    err = run_bad(tmp_path, data)
    assert "dev.csv: row 3 (fname dev_0): duplicate fname" in err


@pytest.mark.slow
def test_empty_dialogue(tmp_path: Path) -> None:
    data = debug_copy(tmp_path)
    edit_csv(data / "test.csv", lambda df: df.__setitem__("dialogue", [""] + list(df["dialogue"][1:])))
    err = run_bad(tmp_path, data)
    assert "test.csv: row 2 (fname test_0): column dialogue is empty" in err


@pytest.mark.slow
def test_undecodable_file(tmp_path: Path) -> None:
    data = debug_copy(tmp_path)
    raw = (data / "train.csv").read_bytes()
    (data / "train.csv").write_bytes(raw[:200] + "안녕".encode("cp949") + raw[200:])
    err = run_bad(tmp_path, data)
    assert "train.csv: line" in err and "not UTF-8" in err


def test_bom_is_tolerated(tmp_path: Path) -> None:
    from src.data.loading import load_split

    data = debug_copy(tmp_path)
    (data / "dev.csv").write_bytes(b"\xef\xbb\xbf" + (data / "dev.csv").read_bytes())
    assert list(load_split(data / "dev.csv", "dev").columns[:3]) == ["fname", "dialogue", "summary"]


@pytest.mark.slow
def test_missing_file(tmp_path: Path) -> None:
    data = debug_copy(tmp_path)
    (data / "test.csv").unlink()
    err = run_bad(tmp_path, data)
    assert "test.csv: file not found" in err


@pytest.mark.slow
def test_unreachable_model(tmp_path: Path) -> None:
    err = run_bad(tmp_path, debug_copy(tmp_path), "model.name=nobody-here/no-such-model-xyz")
    assert "'model.name' = 'nobody-here/no-such-model-xyz'" in err


@pytest.mark.slow
def test_several_problems_reported_together(tmp_path: Path) -> None:
    data = debug_copy(tmp_path)
    edit_csv(data / "dev.csv", lambda df: df.__setitem__("fname", ["dev_0"] * len(df)))
    edit_csv(data / "test.csv", lambda df: df.__setitem__("dialogue", [""] + list(df["dialogue"][1:])))
    err = run_bad(tmp_path, data)
    assert "duplicate fname" in err and "column dialogue is empty" in err


@pytest.mark.slow
def test_skip_without_outputs_names_the_stage(tmp_path: Path) -> None:
    err = run_bad(tmp_path, debug_copy(tmp_path), "--skip-training")
    assert "run the 'train' stage first" in err


def test_unknown_stage(tmp_path: Path) -> None:
    err = run_bad(tmp_path, debug_copy(tmp_path), "--stages", "preprocess,trian")
    assert "unknown stage 'trian'" in err


@pytest.mark.parametrize("flag", ["--config", "--debug-small", "--resume", "--run-name", "--skip-preprocess",
                                  "--skip-augmentation", "--skip-merge", "--skip-training", "--skip-inference",
                                  "--skip-evaluation", "--stages", "--num-paraphrase", "--num-speaker-swap",
                                  "--num-synthetic", "--use-instruction-augmentation"])
def test_help_lists_flag(flag: str, help_text: str) -> None:
    assert flag in help_text


@pytest.fixture(scope="module")
def help_text() -> str:
    res = run_cli(["--help"], timeout=60)
    assert res.returncode == 0
    return res.stdout


@pytest.mark.slow
def test_missing_vllm_is_reported_before_training(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    err = run_bad(tmp_path, debug_copy(tmp_path), "inference.backend=vllm")
    assert "vllm" in err.lower()


def test_duplicate_yaml_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "twice.yaml"
    cfg.write_text("bases: [base.yaml]\ntraining:\n  learning_rate: 1.0e-4\ntraining:\n  max_steps: 5\n")
    err = run_bad(tmp_path, debug_copy(tmp_path), "--config", str(cfg))
    assert f"error: {cfg}: key 'training' is given twice (lines 2 and 4)" in err
