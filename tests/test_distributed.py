"""Data-parallel training with two CPU processes (gloo): only rank 0 writes, the manifest records world_size."""
from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, free_port, run_cli, tmp_paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # full pipeline runs: make test, not make test-fast


def test_two_process_cpu_training(tmp_path: Path) -> None:
    paths = tmp_paths(tmp_path)
    res = run_cli(["--debug-small", "--run-name", "ddp", "--stages", "preprocess", *paths])
    assert res.returncode == 0, res.stderr[-3000:]
    accelerate = Path(sys.executable).with_name("accelerate")
    # accelerate's --cpu launcher starts a single process unless mpirun is installed; --multi_gpu on a
    # machine without GPUs starts two torchrun workers, and model.device=cpu makes them use gloo.
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "src.main", "--debug-small", "--run-name", "ddp", "--resume", "--stages", "train", *paths,
           "training.use_qlora=false", "training.max_steps=6", "training.save_steps=3"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    manifest = json.loads((tmp_path / "output" / "ddp" / "manifest.json").read_text())
    train = manifest["stages"]["train"]
    assert train["status"] == "done" and train["world_size"] == 2 and manifest["world_size"] == 2
    assert train["global_step"] == 6
    # 6 steps x batch 4 x 2 ranks = 48 examples = the whole debug train set once
    state = json.loads((tmp_path / "model" / "ddp" / "checkpoint-6" / "trainer_state.json").read_text())
    assert abs(state["epoch"] - 1.0) < 1e-6
    assert (tmp_path / "model" / "ddp" / "final_checkpoint" / "adapter_model.safetensors").is_file()


def test_multi_process_refuses_data_stages(tmp_path: Path) -> None:
    res = run_cli(["--debug-small", "--run-name", "ddp2", *tmp_paths(tmp_path)], env={"WORLD_SIZE": "2", "RANK": "0"})
    assert res.returncode == 2 and "--stages train" in res.stderr


def test_shipped_accelerate_configs_parse() -> None:
    import yaml

    configs = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))
    kinds = {yaml.safe_load(p.read_text())["distributed_type"] for p in configs}
    assert kinds == {"MULTI_GPU", "FSDP", "DEEPSPEED"}
    stages = {yaml.safe_load(p.read_text()).get("deepspeed_config", {}).get("zero_stage") for p in configs}
    assert {2, 3} <= stages
