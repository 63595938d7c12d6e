"""End to end on CPU: ``python -m src.main --debug-small`` runs every stage; resume and skip work."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, run_cli, tmp_paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # full pipeline runs: make test, not make test-fast

STAGES = ["preprocess", "augment", "merge", "train", "tune", "infer", "evaluate"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("e2e")
    res = run_cli(["--debug-small", "--run-name", "r1", *tmp_paths(root)])
    assert res.returncode == 0, res.stderr[-4000:]
    base = root / "model" / "debug" / "tiny-llama" / "model.safetensors"
    return {"root": root, "stderr": res.stderr, "base_sha": sha(base)}


def manifest(root: Path, run: str = "r1") -> dict:
    return json.loads((root / "output" / run / "manifest.json").read_text())


def test_output_tree(debug_run: dict) -> None:
    root = debug_run["root"]
    out, model = root / "output" / "r1", root / "model" / "r1"
    for name in ("submission.csv", "metrics.json", "manifest.json", "config.yaml", "logs/pipeline.log",
                 "dev_predictions.csv", "scores.csv", "report.md"):
        assert (out / name).is_file(), name
    assert (model / "final_checkpoint" / "adapter_model.safetensors").is_file()
    assert (model / "final_checkpoint" / "pipeline_config.yaml").is_file()
    assert list(model.glob("checkpoint-*")), "intermediate checkpoints are kept under model/<run>/"
    assert (root / "clean" / "r1" / "train.csv").is_file()
    assert (root / "augmented" / "r1" / "train_merged.csv").is_file()
    for name in ("pipeline_fingerprint.json", "pipeline_inference.json", "tokenizer_config.json"):
        assert (model / "final_checkpoint" / name).is_file(), name
    assert (out / "train_curves.png").is_file() and (out / "train_log.csv").is_file()


def test_the_log_shows_training_and_inference_and_stays_clean(debug_run: dict) -> None:
    log = (debug_run["root"] / "output" / "r1" / "logs" / "pipeline.log").read_text(encoding="utf-8")
    assert "train step 60/60: loss" in log and "eval_loss" in log
    assert "infer submission: 12 of 12 dialogues (100%)" in log and "infer dev_predictions:" in log
    assert "\r" not in log and "\x1b[" not in log


def test_no_warning_noise_on_the_console(debug_run: dict) -> None:
    for noise in ("is_gradient_checkpointing", "pip install kernels", "per_device_train_batch_size of 1 with"):
        assert noise not in debug_run["stderr"], noise


def test_manifest_records_every_stage(debug_run: dict) -> None:
    m = manifest(debug_run["root"])
    assert m["run_name"] == "r1" and m["seed"] == 42 and m["git_commit"]
    assert m["packages"]["torch"] and m["packages"]["transformers"]
    assert [s for s in STAGES if m["stages"][s]["status"] != "done"] == []
    train = m["stages"]["train"]
    assert train["global_step"] == 60 and train["resumed_from"] is None and train["world_size"] == 1
    assert any("train" in k for k in m["stages"]["merge"]["outputs"])
    infer = m["stages"]["infer"]
    assert infer["throughput"]["dialogues"] == 24 and 0 <= infer["hit_max_new_tokens"] <= 24
    assert all(isinstance(m["stages"][s]["seconds"], float) for s in STAGES)


def test_rl_is_off_unless_asked_and_infer_uses_the_sft_checkpoint(debug_run: dict) -> None:
    m = manifest(debug_run["root"])
    assert m["stages"]["rl"]["status"] == "skipped" and m["stages"]["rl"]["reason"] == "off (rl.enabled is false)"
    sft = str(debug_run["root"] / "model" / "r1" / "final_checkpoint")
    assert m["stages"]["infer"]["checkpoint"] == sft and m["stages"]["tune"]["checkpoint"] == sft
    assert not (debug_run["root"] / "model" / "r1" / "rl").exists()


def test_tune_writes_its_files_and_infer_uses_the_choice(debug_run: dict) -> None:
    """Issue 16: tuning.csv, tuning.png, best_generation.yaml; infer generates with the chosen settings."""
    import yaml

    out = debug_run["root"] / "output" / "r1"
    table = pd.read_csv(out / "tuning.csv")
    assert len(table) >= 2 and {"final", "seconds", "rows"} <= set(table.columns)
    assert (out / "tuning.png").stat().st_size > 0
    best = yaml.safe_load((out / "best_generation.yaml").read_text(encoding="utf-8"))
    chosen = best["inference"]
    m = manifest(debug_run["root"])
    tune = m["stages"]["tune"]
    assert {k: tune["chosen"][k] for k in chosen} == chosen
    # issue 30: the baseline is in the table, scored on every row any setting was scored on; the choice says why
    assert table["baseline"].sum() == 1 and table["chosen"].sum() == 1 and bool(table["chosen"].iloc[0])
    assert table.loc[table["baseline"], "rows"].iloc[0] == table["rows"].max()
    assert {"diff", "ci_low", "ci_high"} <= set(table.columns) and table.loc[~table["baseline"], "diff"].notna().all()
    assert tune["select"] == best["select"] == "confident" and tune["reason"] == best["reason"]
    assert m["stages"]["infer"]["tune_choice"]["reason"] == tune["reason"]
    assert "infer: the tune stage chose" in debug_run["stderr"]
    settings = m["stages"]["infer"]["settings"]
    assert {k: settings[k] for k in chosen if k in settings} == {k: v for k, v in chosen.items() if k in settings}
    tuning_rows = set(pd.read_csv(out / "tuning_rows.csv")["fname"])
    scored = set(pd.read_csv(out / "scores.csv")["fname"])
    assert tuning_rows and not tuning_rows & scored, "the dev score never includes a tuning row"


def test_submission_and_metrics(debug_run: dict) -> None:
    root = debug_run["root"]
    sub = pd.read_csv(root / "output" / "r1" / "submission.csv")
    test = pd.read_csv(REPO / "data" / "debug" / "test.csv")
    assert list(sub.columns) == ["fname", "summary"]
    assert sub["fname"].tolist() == test["fname"].tolist()
    assert sub["summary"].fillna("").str.strip().ne("").all()
    metrics = json.loads((root / "output" / "r1" / "metrics.json").read_text())
    for key in ("rouge1", "rouge2", "rougeL"):
        assert 0.0 <= metrics[key] <= 1.0
    mean = (metrics["rouge1"] + metrics["rouge2"] + metrics["rougeL"]) / 3
    assert metrics["final"] == pytest.approx(100 * mean, abs=1e-6)


def test_lora_changed_and_base_untouched(debug_run: dict) -> None:
    from safetensors.torch import load_file

    root = debug_run["root"]
    adapter = load_file(str(root / "model" / "r1" / "final_checkpoint" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter), "the adapter holds LoRA weights only"
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b), "LoRA B starts at zero: training moved it"
    base = root / "model" / "debug" / "tiny-llama" / "model.safetensors"
    assert sha(base) == debug_run["base_sha"]


def test_no_secret_in_outputs(tmp_path: Path) -> None:
    secret = "up" + "_TESTSECRETabcdefghijklmnop123456"  # split so secret scanners do not flag the file
    res = run_cli(["--debug-small", "--run-name", "sec", "--stages", "preprocess,augment,merge", *tmp_paths(tmp_path)],
                  env={"UPSTAGE_API_KEY": secret, "HF_TOKEN": "hf_" + secret, "WANDB_API_KEY": "w" + secret})
    assert res.returncode == 0, res.stderr[-3000:]
    assert secret not in res.stderr + res.stdout
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def test_resume_finished_run_does_no_work(debug_run: dict) -> None:
    root = debug_run["root"]
    sub = root / "output" / "r1" / "submission.csv"
    before, stages_before = sha(sub), manifest(root)["stages"]
    res = run_cli(["--debug-small", "--run-name", "r1", "--resume", *tmp_paths(root)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert sha(sub) == before
    assert manifest(root)["stages"] == stages_before, "no stage ran again"
    assert res.stderr.count("already done with the same inputs and config") == len(STAGES)


def test_reusing_a_run_needs_resume(debug_run: dict) -> None:
    res = run_cli(["--debug-small", "--run-name", "r1", *tmp_paths(debug_run["root"])])
    assert res.returncode == 2 and "--resume" in res.stderr


def test_skip_training_uses_saved_checkpoint(debug_run: dict) -> None:
    root = debug_run["root"]
    sub = root / "output" / "r1" / "submission.csv"
    before = sha(sub)
    sub.unlink()
    res = run_cli(["--debug-small", "--run-name", "r1", "--resume", "--skip-augmentation", "--skip-training",
                   *tmp_paths(root)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert sha(sub) == before, "greedy decoding from the same checkpoint reproduces the submission"
    assert "stage infer: running" in res.stderr


def test_new_run_from_other_checkpoint(debug_run: dict) -> None:
    root = debug_run["root"]
    ckpt = root / "model" / "r1" / "final_checkpoint"
    tuned = yaml.safe_load((root / "output" / "r1" / "best_generation.yaml").read_text())["inference"]
    res = run_cli(["--debug-small", "--run-name", "r2", "--stages", "infer,evaluate", f"inference.checkpoint={ckpt}",
                   *[f"inference.{key}={value}" for key, value in tuned.items()], *tmp_paths(root)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert (root / "output" / "r2" / "metrics.json").is_file()
    m = manifest(root, "r2")
    assert m["stages"]["train"]["status"] == "skipped" and m["stages"]["infer"]["status"] == "done"
    assert m["stages"]["infer"]["settings"] == manifest(root)["stages"]["infer"]["settings"]
    for name in ("dev_predictions.csv", "submission.csv"):
        assert sha(root / "output" / "r2" / name) == sha(root / "output" / "r1" / name), \
            f"{name}: the checkpoint's prompt settings and pool, with r1's tuned decoding, reproduce it"


def test_inference_only_without_a_run_name_finds_the_trained_checkpoint(debug_run: dict) -> None:
    root = debug_run["root"]
    res = run_cli(["--debug-small", "--skip-augmentation", "--skip-training", *tmp_paths(root)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"inference model: {root / 'model' / 'r1' / 'final_checkpoint'}" in res.stderr


def test_resume_after_a_config_change_trains_again_from_the_start(tmp_path: Path) -> None:
    args = ["--debug-small", "--run-name", "lr", "--stages", "preprocess,merge,train", "training.max_steps=6",
            "training.save_steps=3", *tmp_paths(tmp_path)]
    assert run_cli(args).returncode == 0
    adapter = tmp_path / "model" / "lr" / "final_checkpoint" / "adapter_model.safetensors"
    before = sha(adapter)
    res = run_cli([*args, "--resume", "training.learning_rate=3e-3"])
    assert res.returncode == 0, res.stderr[-3000:]
    train = manifest(tmp_path, "lr")["stages"]["train"]
    assert train["resumed_from"] is None and train["global_step"] == 6
    assert "trained under other settings (training.learning_rate changed)" in res.stderr
    assert sha(adapter) != before
    assert list((tmp_path / "model" / "lr" / "set_aside").glob("checkpoint-6.stale-*")), "moved aside, not deleted"
