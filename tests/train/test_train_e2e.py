"""Training through ``python -m src.main``: the model learns a synthetic rule; SIGKILL then --resume finishes."""
from __future__ import annotations

import pytest

import json
from pathlib import Path

from tests.conftest import kill_at_first_checkpoint, run_cli, tmp_paths
from tests.train.synthetic import build_model, write_synthetic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # full pipeline runs: make test, not make test-fast


def stage(root: Path, run: str, name: str = "train") -> dict:
    return json.loads((root / "output" / run / "manifest.json").read_text())["stages"][name]


def test_tiny_model_learns_the_keyword_rule_through_train_infer_evaluate(tmp_path: Path) -> None:
    """Template, labels, EOS and padding bugs all show up here as a low dev score."""
    frames = write_synthetic(tmp_path / "data")
    model = build_model(tmp_path / "tiny", frames, hidden=128)
    res = run_cli(["--skip-augmentation", "--skip-tune", "--run-name", "learn", f"model.name={model}", "model.device=cpu",
                   f"paths.data_dir={tmp_path / 'data'}", "prompt.num_fewshot=0", "prompt.max_prompt_tokens=256",
                   "training.use_qlora=false", "training.use_lora=false", "training.max_steps=150",
                   "training.learning_rate=2e-3", "training.per_device_train_batch_size=8",
                   "training.gradient_accumulation_steps=1", "training.save_steps=50", "training.eval_rouge_samples=10",
                   "training.logging_steps=25", "inference.max_new_tokens=40", "inference.batch_size=20",
                   *tmp_paths(tmp_path)])
    assert res.returncode == 0, res.stderr[-4000:]
    metrics = json.loads((tmp_path / "output" / "learn" / "metrics.json").read_text())
    assert metrics["final"] >= 85, metrics
    train = stage(tmp_path, "learn")
    assert train["global_step"] == 150 and train["metric_for_best_model"] == "rouge_final"
    assert train["best_metric"] >= 85 and Path(train["best_checkpoint"]).name.startswith("checkpoint-")
    assert "dev ROUGE-1" in res.stderr and train["collation"]["mode"] == "padding_free"


def test_sigkill_mid_run_then_resume_ends_at_the_planned_step(tmp_path: Path) -> None:
    frames = write_synthetic(tmp_path / "data", n_train=40, n_dev=4, n_test=2)
    model = build_model(tmp_path / "tiny", frames)
    args = ["--stages", "preprocess,merge,train", "--run-name", "kill", f"model.name={model}", "model.device=cpu",
            f"paths.data_dir={tmp_path / 'data'}", "prompt.num_fewshot=0", "training.use_qlora=false",
            "training.max_steps=60", "training.save_steps=5", "training.save_total_limit=2",
            "training.per_device_train_batch_size=2", "training.gradient_accumulation_steps=1", *tmp_paths(tmp_path)]
    model_dir = tmp_path / "model" / "kill"
    kill_at_first_checkpoint(args, model_dir, timeout=240)
    assert not (model_dir / "final_checkpoint").exists(), "killed before the end of training"
    res = run_cli(["--resume", *args])
    assert res.returncode == 0, res.stderr[-4000:]
    train = stage(tmp_path, "kill")
    assert train["global_step"] == 60 and train["world_size"] == 1
    resumed = Path(train["resumed_from"])
    assert resumed.parent == model_dir and 5 <= int(resumed.name.split("-")[1]) < 60
    assert "resuming training from" in res.stderr
    state = json.loads((model_dir / "checkpoint-60" / "trainer_state.json").read_text())
    assert state["global_step"] == 60 and state["max_steps"] == 60
