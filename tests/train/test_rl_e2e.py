"""The rl stage through ``python -m src.main --debug-small``: GRPO after SFT, tune and infer on its checkpoint,
SFT vs RL in the report, resume after SIGKILL, a stale checkpoint set aside."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import kill_at_first_checkpoint, run_cli, tmp_paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # full pipeline runs: make test, not make test-fast

ALL = "preprocess,merge,train,rl,tune,infer,evaluate"
SHORT_SFT = ["training.max_steps=20", "training.save_steps=20", "training.eval_steps=20"]


def manifest(root: Path, run: str) -> dict:
    return json.loads((root / "output" / run / "manifest.json").read_text())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def rl_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("rl")
    res = run_cli(["--debug-small", "--run-name", "rl", "--stages", ALL, *SHORT_SFT, *tmp_paths(root)])
    assert res.returncode == 0, res.stderr[-4000:]
    return {"root": root, "stderr": res.stderr, "args": ["--debug-small", "--run-name", "rl", *SHORT_SFT,
                                                         *tmp_paths(root)]}


def test_rl_trains_after_sft_and_tune_and_infer_use_its_checkpoint(rl_run: dict) -> None:
    root = rl_run["root"]
    m = manifest(root, "rl")
    rl, final = m["stages"]["rl"], root / "model" / "rl" / "rl" / "final_checkpoint"
    assert rl["status"] == "done" and rl["global_step"] == 4 and rl["resumed_from"] is None
    assert rl["init_checkpoint"] == str(root / "model" / "rl" / "final_checkpoint")
    assert m["stages"]["tune"]["checkpoint"] == str(final) and m["stages"]["infer"]["checkpoint"] == str(final)
    assert rl["audit"]["completions"] == 4 * 2 * 4 and rl["audit"]["stop_before_end"] == 0
    assert rl["audit"]["banned_tokens"] == 0 and rl["prompts_left_out"] == 0
    assert "rl step 4/4: reward" in (root / "output" / "rl" / "logs" / "pipeline.log").read_text(encoding="utf-8")


def test_the_rl_checkpoint_prompts_as_the_sft_one_and_holds_only_the_trained_adapter(rl_run: dict) -> None:
    from safetensors.torch import load_file

    model = rl_run["root"] / "model" / "rl"
    sft, final = model / "final_checkpoint", model / "rl" / "final_checkpoint"
    info = [json.loads((p / "pipeline_inference.json").read_text()) for p in (sft, final)]
    assert info[0]["prompt"] == info[1]["prompt"] and info[0]["fewshot_pool"] == info[1]["fewshot_pool"]
    assert info[0]["completion_tokens"] == info[1]["completion_tokens"]
    assert (final / "pipeline_fingerprint.json").is_file() and not (final / "ref").exists()
    before, after = (load_file(str(p / "adapter_model.safetensors")) for p in (sft, final))
    assert before.keys() == after.keys() and any((before[k] != after[k]).any() for k in before), "GRPO moved LoRA"
    assert list((model / "rl").glob("checkpoint-*/pipeline_fingerprint.json")), "GRPO checkpoints are recorded"


def test_rl_curves_and_the_sft_vs_rl_comparison_are_reported(rl_run: dict) -> None:
    out = rl_run["root"] / "output" / "rl"
    log = pd.read_csv(out / "rl_log.csv")
    assert log["step"].dropna().astype(int).tolist()[:4] == [1, 2, 3, 4]
    assert {"reward", "reward_std", "kl", "completions/mean_length", "rewards/rouge/mean"} <= set(log.columns)
    assert (out / "rl_curves.png").stat().st_size > 1000
    dev = manifest(rl_run["root"], "rl")["stages"]["rl"]["dev"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert dev["rows"] == 4 and metrics["sft_dev_final"] == dev["sft"]["final"]
    assert metrics["rl_dev_final"] == dev["rl"]["final"] and metrics["checkpoint"].endswith("rl/final_checkpoint")
    assert "sft_dev_final" in (out / "report.md").read_text(encoding="utf-8")


def test_naming_rl_turns_it_on_so_a_resume_does_no_work(rl_run: dict) -> None:
    root = rl_run["root"]
    saved = yaml.safe_load((root / "output" / "rl" / "config.yaml").read_text(encoding="utf-8"))
    assert saved["rl"]["enabled"] is True
    stages_before = manifest(root, "rl")["stages"]
    res = run_cli([*rl_run["args"], "--resume", "--skip-augmentation"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert manifest(root, "rl")["stages"] == stages_before, "no stage ran again"
    assert "stage rl: already done with the same inputs and config" in res.stderr


def test_resume_after_an_rl_change_sets_the_stale_checkpoint_aside(rl_run: dict) -> None:
    root = rl_run["root"]
    adapter = root / "model" / "rl" / "rl" / "final_checkpoint" / "adapter_model.safetensors"
    before = sha(adapter)
    res = run_cli([*rl_run["args"], "--resume", "--stages", "rl", "rl.learning_rate=3e-3"])
    assert res.returncode == 0, res.stderr[-3000:]
    rl = manifest(root, "rl")["stages"]["rl"]
    assert rl["resumed_from"] is None and rl["global_step"] == 4 and sha(adapter) != before
    assert "trained under other settings (rl.learning_rate changed)" in res.stderr
    assert list((root / "model" / "rl" / "rl" / "set_aside").glob("checkpoint-4.stale-*")), "moved aside, not deleted"


def test_sigkill_during_grpo_then_resume_ends_at_the_planned_step(tmp_path: Path) -> None:
    args = ["--debug-small", "--run-name", "kill", "--stages", "preprocess,merge,train,rl", "training.max_steps=10",
            "training.save_steps=10", "training.eval_steps=10", "rl.max_steps=12", "rl.save_steps=2", "rl.eval_rows=0",
            *tmp_paths(tmp_path)]
    rl_dir = tmp_path / "model" / "kill" / "rl"
    kill_at_first_checkpoint(args, rl_dir)  # a GRPO checkpoint (SFT's are in model/kill/)
    assert not (rl_dir / "final_checkpoint").exists(), "killed before the end of GRPO"
    res = run_cli(["--resume", *args])
    assert res.returncode == 0, res.stderr[-4000:]
    rl = manifest(tmp_path, "kill")["stages"]["rl"]
    assert rl["status"] == "done" and rl["global_step"] == 12
    resumed = Path(rl["resumed_from"])
    assert resumed.parent == rl_dir and 2 <= int(resumed.name.split("-")[1]) < 12
    assert "resuming GRPO from" in res.stderr and "stage train: already done" in res.stderr
    state = json.loads((rl_dir / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12 and state["max_steps"] == 12
    log = pd.read_csv(tmp_path / "output" / "kill" / "rl_log.csv")
    assert log["step"].dropna().astype(int).tolist()[:12] == list(range(1, 13)), "the curve covers both runs"
