"""The doctor's environment checks (``src.doctor_checks``), each on literal cases: pass, skip with the reason,
fail with the fix; secrets never shown."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from src import doctor_checks as checks
from src.config import load_config


def debug_cfg(*overrides: str):
    return load_config(None, list(overrides), debug_small=True)


def test_version_tuple() -> None:
    assert checks.version_tuple("12.8") == (12, 8) and checks.version_tuple("2.13.0+cpu") == (2, 13)


def test_tested_ranges_read_from_requirements(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\ntorch==2.13.0\ntrl>=1.16,<1.17   # why\n\nPeft>=0.20\n", encoding="utf-8")
    assert checks.tested_ranges(req) == {"torch": "==2.13.0", "trl": "<1.17,>=1.16", "peft": ">=0.20"}
    assert checks.tested_ranges()["transformers"]  # the shipped file names it


def test_package_outside_range_or_missing_fails_with_the_pip_line() -> None:
    import yaml

    status, detail = checks.check_package("pyyaml", ">=999")
    assert status == "fail" and yaml.__version__ in detail and "pip install 'pyyaml>=999'" in detail
    assert checks.check_package("pyyaml", ">=1")[0] == "pass"
    status, detail = checks.check_package("no-such-package-xyz", ">=1")
    assert status == "fail" and detail.startswith("not installed")


def test_cpu_torch_on_a_gpu_machine_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(checks, "nvidia_smi_cuda", lambda: "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    status, detail = checks.check_torch()
    assert status == "fail" and "CPU build" in detail and "CUDA 12.8" in detail


def test_api_key_presence_only(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = debug_cfg("augmentation.backend=api", "augmentation.num_paraphrase=2")
    stages = ("preprocess", "augment")
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    status, detail = checks.check_api_key(cfg, stages)
    assert status == "fail" and "UPSTAGE_API_KEY is not set" in detail
    monkeypatch.setenv("UPSTAGE_API_KEY", "sk-very-secret-123")
    status, detail = checks.check_api_key(cfg, stages)
    assert status == "pass" and "sk-very-secret" not in detail and "value not shown" in detail
    assert checks.check_api_key(debug_cfg(), stages)[0] == "skip"


def test_flash_attention_asked_on_cpu_fails_and_unasked_skips() -> None:
    status, detail = checks.check_flash(debug_cfg("model.attn_implementation=flash_attention_2"))
    assert status == "fail" and "model.attn_implementation=sdpa" in detail
    assert checks.check_flash(debug_cfg())[0] == "skip"


def test_vllm_only_when_asked() -> None:
    from src.inference.vllm_engine import vllm_available

    assert checks.check_vllm(debug_cfg())[0] == "skip"
    status, detail = checks.check_vllm(debug_cfg("inference.backend=vllm"))
    assert status == ("pass" if vllm_available() else "fail")
    if not vllm_available():
        assert "make setup-vllm" in detail


def test_disk_too_small_for_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = debug_cfg("model.name=nobody/Some-Model-70B", "model.device=cpu")
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda path: SimpleNamespace(free=50 * 2**30))
    status, detail = checks.check_disk(cfg)
    assert status == "fail" and "~70.0B parameters to download" in detail and "HF_HOME" in detail
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda path: SimpleNamespace(free=500 * 2**30))
    assert checks.check_disk(cfg)[0] == "pass"


def test_model_not_cached_offline_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status, detail = checks.check_model_source(debug_cfg("model.name=nobody/not-cached-model"))
    assert status == "fail" and "HF_HUB_OFFLINE" in detail
    assert checks.check_model_source(debug_cfg())[0] == "pass"


def test_preflight_reports_the_runs_own_problems(tmp_path: Path) -> None:
    cfg = debug_cfg(f"paths.data_dir={tmp_path / 'missing'}")
    status, detail = checks.check_preflight(cfg, ("preprocess", "merge", "train"))
    assert status == "fail" and "missing" in detail
    assert checks.check_preflight(debug_cfg(), ("preprocess", "merge", "train"))[0] == "pass"


def test_driver_cuda_version_read_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert checks.nvidia_smi_cuda() == "12.4"
    fake.unlink()
    assert checks.nvidia_smi_cuda() is None


def test_cuda_runtime_newer_than_the_driver_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(checks, "nvidia_smi_cuda", lambda: "11.8")
    status, detail = checks.check_cuda()
    assert status == "fail" and "runtime 12.8" in detail and "CUDA 11.8" in detail and "update the" in detail


def test_no_gpu_skips_cuda_and_bf16_saying_why() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the checks run for real")
    status, detail = checks.check_cuda()
    assert status == "skip" and "no CUDA GPU visible" in detail
    status, detail = checks.check_bf16(debug_cfg())
    assert status == "skip" and "GPU check" in detail and "float32" in detail
