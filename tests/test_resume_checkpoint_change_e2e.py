"""A resumed run after its checkpoint changes gives what a fresh run on the new checkpoint gives (issue: stale tune
rows). The tune journal is keyed by the checkpoint's content and the settings, so the old model's summaries are
never reused."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import run_cli, tmp_paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEARCH = ["--stages", "preprocess,tune,infer,evaluate"]


def ok(args: list[str]) -> None:
    res = run_cli(args)
    assert res.returncode == 0, res.stderr[-3000:]


def tuning(out: Path) -> pd.DataFrame:
    table = pd.read_csv(out / "tuning.csv")
    return table.drop(columns=[c for c in table.columns if "second" in c])


def test_resume_after_a_checkpoint_change_equals_a_fresh_run(tmp_path: Path) -> None:
    paths = tmp_paths(tmp_path)
    ok(["--debug-small", "--run-name", "a", "--stages", "preprocess,train", *paths])
    ok(["--debug-small", "--run-name", "b", "--stages", "preprocess,train", *paths, "training.learning_rate=3e-3"])
    ckpt = {run: tmp_path / "model" / run / "final_checkpoint" for run in ("a", "b")}
    ok(["--debug-small", "--run-name", "s1", *SEARCH, *paths, f"inference.checkpoint={ckpt['a']}"])
    ok(["--debug-small", "--run-name", "s1", "--resume", *paths, f"inference.checkpoint={ckpt['b']}"])
    ok(["--debug-small", "--run-name", "fresh", *SEARCH, *paths, f"inference.checkpoint={ckpt['b']}"])
    resumed, fresh = tmp_path / "output" / "s1", tmp_path / "output" / "fresh"
    pd.testing.assert_frame_equal(tuning(resumed), tuning(fresh))
    chosen = [yaml.safe_load((d / "best_generation.yaml").read_text(encoding="utf-8"))["inference"] for d in (resumed, fresh)]
    assert chosen[0] == chosen[1]
    assert (resumed / "submission.csv").read_bytes() == (fresh / "submission.csv").read_bytes()


def test_resume_after_a_training_change_equals_a_fresh_run(tmp_path: Path) -> None:
    paths = tmp_paths(tmp_path)
    ok(["--debug-small", "--run-name", "s2", *paths])
    ok(["--debug-small", "--run-name", "s2", "--resume", *paths, "training.learning_rate=3e-3"])
    ok(["--debug-small", "--run-name", "fresh", *paths, "training.learning_rate=3e-3"])
    resumed, fresh = tmp_path / "output" / "s2", tmp_path / "output" / "fresh"
    pd.testing.assert_frame_equal(tuning(resumed), tuning(fresh))
    chosen = [yaml.safe_load((d / "best_generation.yaml").read_text(encoding="utf-8"))["inference"] for d in (resumed, fresh)]
    assert chosen[0] == chosen[1]
    assert (resumed / "submission.csv").read_bytes() == (fresh / "submission.csv").read_bytes()
