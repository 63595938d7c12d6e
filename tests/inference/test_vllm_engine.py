"""The vLLM backend: a clear message without vLLM, setting checks, and the request mapping (fake vLLM)."""
from __future__ import annotations

import sys
import types
from dataclasses import replace
from types import SimpleNamespace

import pytest

from src.config import InferenceConfig
from src.utils.errors import UserError
from src.inference import vllm_engine as vllm_backend
from src.inference.predictor import Predictor
from tests.inference.conftest import tiny_config


def test_no_vllm_gives_an_install_hint(monkeypatch, tiny_trained: dict) -> None:
    monkeypatch.setattr(vllm_backend, "vllm_available", lambda: False)
    assert vllm_backend.check_backend(tiny_config()) is None
    message = vllm_backend.check_backend(tiny_config(backend="vllm"))
    assert "inference.backend" in message and "pip install vllm" in message
    with pytest.raises(UserError, match="pip install vllm"):
        Predictor.from_checkpoint(tiny_config(backend="vllm"), tiny_trained["path"], pool=None)


def test_settings_vllm_cannot_honour_are_config_rules(monkeypatch) -> None:
    """What vLLM cannot do is refused by the config rules (before anything runs), whether or not it is installed."""
    from src.config import config_problems

    monkeypatch.setattr(vllm_backend, "vllm_available", lambda: True)
    assert vllm_backend.check_backend(tiny_config(backend="vllm")) is None
    assert config_problems(tiny_config(backend="vllm")) == []
    (beams,) = config_problems(tiny_config(backend="vllm", num_beams=4))
    assert "inference.num_beams" in beams
    (ngram,) = config_problems(tiny_config(backend="vllm", no_repeat_ngram_size=3))
    assert "no_repeat_ngram_size" in ngram
    cfg = tiny_config(backend="vllm")
    (kind,) = config_problems(replace(cfg, model=replace(cfg.model, type="seq2seq")))
    assert "causal" in kind


def test_engine_arguments_for_an_adapter(tmp_path) -> None:
    cfg = tiny_config(backend="vllm")
    kw = vllm_backend.engine_kwargs(cfg, tmp_path, {"base_model_name_or_path": "org/base", "r": 12}, "cpu")
    assert kw["model"] == "org/base" and kw["tokenizer"] == "org/base", "the base model's tokenizer, not the adapter's"
    assert kw["enable_lora"] and kw["max_lora_rank"] == 16 and kw["dtype"] == "float32"
    assert kw["max_model_len"] == cfg.prompt.max_prompt_tokens + cfg.inference.max_new_tokens
    assert "quantization" not in kw and "gpu_memory_utilization" not in kw, "a GPU share means RAM on a CPU"
    full = vllm_backend.engine_kwargs(cfg, tmp_path, None, "cpu")
    assert full["model"] == str(tmp_path) == full["tokenizer"] and "enable_lora" not in full


def test_engine_arguments_on_a_gpu_and_the_cpu_environment(tmp_path) -> None:
    cfg = tiny_config(backend="vllm", vllm_gpu_memory_utilization=0.8, vllm_cpu_kv_cache_gb=3,
                      vllm_tensor_parallel_size=2)
    cfg = replace(cfg, training=replace(cfg.training, compute_dtype="auto"))
    kw = vllm_backend.engine_kwargs(cfg, tmp_path, None, "cuda")
    assert kw["gpu_memory_utilization"] == 0.8 and kw["tensor_parallel_size"] == 2
    assert "tensor_parallel_size" not in vllm_backend.engine_kwargs(cfg, tmp_path, None, "cpu")
    assert vllm_backend.engine_kwargs(cfg, tmp_path, None, "cpu")["dtype"] == "float32"
    assert vllm_backend.cpu_environment(cfg, 2) == {"VLLM_CPU_KVCACHE_SPACE": "3", "VLLM_CPU_OMP_THREADS_BIND": "0-1"}
    assert vllm_backend.cpu_environment(cfg, 1)["VLLM_CPU_OMP_THREADS_BIND"] == "0"


class _FakeLLM:
    """Answers each token prompt with its first two ids reversed, then a stop id (or runs to the cap)."""

    def __init__(self, stop: int) -> None:
        self.stop, self.calls = stop, []

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append((prompts, params, lora_request))
        outs = []
        for i, p in enumerate(prompts):
            ids = p["prompt_token_ids"][-3:][::-1] + ([self.stop] if i % 2 == 0 else [])
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, finish_reason="stop" if i % 2 == 0 else "length")]))
        return outs


def test_vllm_engine_with_the_predictor(monkeypatch, tiny_trained: dict) -> None:
    fake = types.ModuleType("vllm")
    fake.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)
    t = tiny_trained
    stop = t["builder"].stop_token_ids[0]
    llm = _FakeLLM(stop)
    engine = vllm_backend.VllmEngine(llm, lora="LORA")
    gen = InferenceConfig(max_new_tokens=3)
    pred = Predictor(None, t["tokenizer"], t["builder"], None, gen, "cuda", engine=engine)
    dialogues = t["dev"]["dialogue"].head(5).tolist()
    out = pred.predict_batch(dialogues)
    prompts, params, lora = llm.calls[0]
    assert len(llm.calls) == 1 and len(prompts) == 5 and lora == "LORA"
    expected = sorted((t["builder"].encode_prompt(d).input_ids for d in dialogues), key=len, reverse=True)
    assert [p["prompt_token_ids"] for p in prompts] == expected, "the same prompt ids, longest first"
    assert params == {"n": 1, "max_tokens": 3, "stop_token_ids": t["builder"].stop_token_ids,
                      "repetition_penalty": 1.0, "temperature": 0.0, "top_p": 1.0}
    assert len(out) == 5 and all(s.strip() for s in out)
    assert pred.stats.hit_max_new_tokens == 2 and pred.stats.generated_tokens == 5 * 3 + 3


def test_sampling_params_when_sampling() -> None:
    kw = vllm_backend.sampling_kwargs(InferenceConfig(do_sample=True, temperature=0.7, top_p=0.9), [2], seed=5)
    assert kw["temperature"] == 0.7 and kw["top_p"] == 0.9 and kw["seed"] == 5


def test_no_per_request_seed_when_none() -> None:
    kw = vllm_backend.sampling_kwargs(InferenceConfig(do_sample=True), [2], seed=None)
    assert "seed" not in kw and kw["temperature"] == InferenceConfig().temperature


@pytest.mark.parametrize("device, expected", [("cuda", 1234), ("cpu", None)])
def test_sampled_requests_carry_torchs_seed_on_gpu_only(monkeypatch, device, expected) -> None:
    """MBR seeds each sampled candidate with torch.manual_seed: on a GPU vLLM gets that seed per request;
    on a CPU none (vLLM 0.32's CPU runner crashes on a seeded request whose chunked prefill drops a token)."""
    import torch

    fake = types.ModuleType("vllm")
    fake.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)
    llm = _FakeLLM(2)
    engine = vllm_backend.VllmEngine(llm, device=device)
    torch.manual_seed(1234)
    engine.generate([[5, 6, 7]], InferenceConfig(do_sample=True, max_new_tokens=3), [2])
    assert llm.calls[0][1].get("seed") == expected


def test_banned_ids_become_a_logit_bias() -> None:
    kw = vllm_backend.sampling_kwargs(InferenceConfig(), [2], seed=0, banned=(11, 12))
    assert kw["logit_bias"] == {11: -100.0, 12: -100.0}
    assert "logit_bias" not in vllm_backend.sampling_kwargs(InferenceConfig(), [2], seed=0)


def test_a_backend_that_does_not_apply_to_seq2seq_is_a_config_error() -> None:
    from src.config import config_problems

    for backend in ("continuous", "vllm"):
        cfg = tiny_config(backend=backend)
        (problem,) = config_problems(replace(cfg, model=replace(cfg.model, type="seq2seq")))
        assert problem.startswith(f"config key 'inference.backend' = '{backend}' does not apply to model.type=seq2seq")
    for backend in ("auto", "transformers"):
        cfg = tiny_config(backend=backend)
        assert config_problems(replace(cfg, model=replace(cfg.model, type="seq2seq"))) == []
