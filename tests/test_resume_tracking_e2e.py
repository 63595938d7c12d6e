"""Issue 24 end to end: ``--resume`` alone after ``--skip-augmentation`` reproduces the first run, and the run's
offline wandb record holds the config, the final dev metrics and the predictions table, under one run id."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, tmp_paths
from tests.wandb_records import contents

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OUTPUTS = ("submission.csv", "dev_predictions.csv", "metrics.json")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("resume")
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": ""}  # the run folder, whatever the shell sets
    first = run_cli(["--debug-small", "--skip-augmentation", "--run-name", "R", "training.report_to=[wandb]",
                     *tmp_paths(root)], env=env)
    assert first.returncode == 0, first.stderr[-4000:]
    run_dir = root / "output" / "R"
    before = {name: digest(run_dir / name) for name in OUTPUTS}
    second = run_cli(["--run-name", "R", "--resume", *tmp_paths(root)], env=env)
    assert second.returncode == 0, second.stderr[-4000:]
    return {"root": root, "run_dir": run_dir, "before": before, "log": second.stderr}


def test_resume_alone_keeps_the_skip_and_reproduces_the_outputs(two_runs: dict) -> None:
    run_dir = two_runs["run_dir"]
    assert {name: digest(run_dir / name) for name in OUTPUTS} == two_runs["before"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["command"] == {"stages": None, "skips": ["augment"], "debug_small": True}
    assert manifest["stages"]["augment"]["status"] == "skipped"
    assert "the run's stage selection is restored: --skip-augmentation --debug-small" in two_runs["log"]
    assert "augment: running" not in two_runs["log"] and "stage train: already done" in two_runs["log"]
    assert not (two_runs["root"] / "model" / "R" / "set_aside").exists(), "no checkpoint was set aside"


def test_the_offline_wandb_run_holds_config_metrics_and_predictions_under_one_id(two_runs: dict) -> None:
    files = sorted((two_runs["run_dir"] / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2, files
    first, resumed = contents(files[0]), contents(files[1])
    manifest = json.loads((two_runs["run_dir"] / "manifest.json").read_text())
    assert first["run_id"] == resumed["run_id"] == manifest["tracking"]["wandb_run_id"]
    assert first["config"]["model"]["name"] == "tiny-debug" and first["config"]["seed"] == 42
    metrics = json.loads((two_runs["run_dir"] / "metrics.json").read_text())
    assert first["summary"]["dev/final"] == pytest.approx(metrics["final"])
    assert {"dev/rouge1", "dev/rouge2", "dev/rougeL", "stage/train/seconds"} <= set(first["summary"])
    assert {"predictions/_type", "tuning/_type"} <= first["history_keys"]
    assert any(k.startswith("train/") for k in first["history_keys"]), "the Trainer logs into the same run"
    table = next(files[0].parent.glob("files/media/table/predictions_*.table.json"))
    data = json.loads(table.read_text())
    assert data["columns"] == ["fname", "dialogue", "prediction", "reference"] and data["data"]
