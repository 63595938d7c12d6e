"""Device and attention checks before any stage; each process's own GPU under a multi-GPU launch."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from src.config import Config, load_config
from src.models.device import device_problems, estimated_parameters, local_device
from src.models.loading import causal_load_kwargs


def with_model(**model: object) -> Config:
    cfg = Config()
    return replace(cfg, model=replace(cfg.model, **model))


def test_cuda_without_a_gpu_is_an_error(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (line,) = device_problems(with_model(name="tiny-debug", device="cuda"), training=True)
    assert "'model.device' = 'cuda' but no CUDA GPU" in line


def test_a_big_model_on_the_cpu_needs_an_explicit_choice(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    solar = with_model(name="upstage/SOLAR-10.7B-Instruct-v1.0")
    assert estimated_parameters(solar) == pytest.approx(10.7e9)
    (line,) = device_problems(solar, training=True)
    assert "about 10.7B parameters" in line and "model.device=cpu" in line
    assert device_problems(replace(solar, model=replace(solar.model, device="cpu")), training=True) == []
    assert device_problems(solar, training=False) == []


def test_a_missing_attention_backend_is_reported(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else real(name, *a))
    (line,) = device_problems(with_model(name="tiny-debug", device="cpu", attn_implementation="flash_attention_2"),
                              training=True)
    assert "'model.attn_implementation' = 'flash_attention_2'" in line and "sdpa" in line


def test_each_rank_loads_its_4bit_base_on_its_own_gpu(monkeypatch) -> None:
    cfg = load_config(None, ["training.use_qlora=true"])
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert causal_load_kwargs(cfg, "cuda", None, quantize=True)["device_map"] == {"": "cuda"}
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert local_device("cuda") == "cuda:1" and local_device("cpu") == "cpu"
    assert causal_load_kwargs(cfg, "cuda", None, quantize=True)["device_map"] == {"": "cuda:1"}
    assert "device_map" not in causal_load_kwargs(cfg, "cuda", None, quantize=False)


def test_native_bf16_follows_the_cpu_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from src.models import device as device_mod

    amx, avx2 = tmp_path / "amx", tmp_path / "avx2"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n", encoding="utf-8")
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n", encoding="utf-8")
    assert device_mod.cpu_has_native_bf16(amx) and not device_mod.cpu_has_native_bf16(avx2)
    assert not device_mod.cpu_has_native_bf16(tmp_path / "missing")
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda native=native: native)
        assert device_mod.compute_dtype("native_bf16", "cpu") == expected
        assert device_mod.compute_dtype("auto", "cpu") == torch.float32, "auto stays fp32 on every CPU"
    assert device_mod.compute_dtype("bfloat16", "cpu") == torch.bfloat16
