"""Devices: which one a run uses, the compute dtype, each process's GPU, and the checks made before anything loads.

``model.device=cuda`` without a visible GPU is an error before any stage runs, not a silent CPU run;
training a model of over ~1B parameters on a CPU needs an explicit ``model.device=cpu``; an attention
backend that is not installed is reported before the data stages run.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Optional

from src.config import Config, resolve_path

log = logging.getLogger(__name__)

CPU_TRAINING_LIMIT = 1e9  # parameters; above it a CPU run takes days, so it must be asked for explicitly
ATTENTION_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def pick_device(requested: str) -> str:
    """cuda, then mps, then cpu for 'auto'; a warning when an asked-for accelerator is absent."""
    import torch

    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "cuda" and not torch.cuda.is_available():
        log.warning("model.device=cuda but no CUDA device is visible; using the CPU")
        return "cpu"
    if requested == "mps" and not has_mps:
        log.warning("model.device=mps but MPS is not available; using the CPU")
        return "cpu"
    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else ("mps" if has_mps else "cpu")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """The CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16 among its flags); False where it cannot be told."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def compute_dtype(setting: str, device: str) -> Any:
    """The one dtype for QLoRA compute, mixed precision and inference: bf16 where supported, else fp16 (CUDA),
    fp32 (CPU); ``native_bf16`` is the same but also bf16 on a CPU that computes bf16 in hardware."""
    import torch

    if setting not in ("auto", "native_bf16"):
        return getattr(torch, setting)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if setting == "native_bf16" and device == "cpu" and cpu_has_native_bf16() else torch.float32


def local_device(device: str) -> str:
    """``cuda`` as this process's GPU under a multi-process launch (``LOCAL_RANK``), else ``device`` unchanged."""
    rank = os.environ.get("LOCAL_RANK")
    return f"cuda:{int(rank)}" if device == "cuda" and rank is not None else device


def model_config(cfg: Config) -> Optional[dict[str, Any]]:
    """``config.json`` of model.name from its folder or the Hugging Face cache (None when neither has it)."""
    local = resolve_path(cfg.model.name)
    path: Optional[str] = str(local / "config.json") if (local / "config.json").is_file() else None
    if path is None and cfg.model.name.count("/") == 1:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(cfg.model.name, "config.json", revision=cfg.model.revision)
        path = cached if isinstance(cached, str) else None
    if path is None:
        return None
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found.get("text_config", found) if isinstance(found, dict) else None


def estimated_parameters(cfg: Config) -> Optional[float]:
    """Parameters of model.name from its config (embeddings + attention + MLP per layer), else from a ``7B``-style name."""
    c = model_config(cfg)
    if c and all(k in c for k in ("hidden_size", "num_hidden_layers", "vocab_size")):
        h, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
        heads = c.get("num_attention_heads") or 1
        kv = (c.get("num_key_value_heads") or heads) / heads
        mlp = 3 * h * (c.get("intermediate_size") or 4 * h)
        embeddings = vocab * h * (1 if c.get("tie_word_embeddings", True) else 2)
        return float(embeddings + layers * ((2 + 2 * kv) * h * h + mlp))
    match = re.search(r"(\d+(?:\.\d+)?)\s*[Bb](?![a-z])", cfg.model.name)
    return float(match.group(1)) * 1e9 if match else None


def device_problems(cfg: Config, training: bool) -> list[str]:
    """The device and attention backend the config asks for, checked on this machine (one line each)."""
    import torch

    problems = []
    requested = cfg.model.device
    if requested == "cuda" and not torch.cuda.is_available():
        problems.append("config key 'model.device' = 'cuda' but no CUDA GPU is visible to torch here; run on a GPU "
                        "machine, or set model.device=auto (or cpu)")
    mps = getattr(torch.backends, "mps", None)
    if requested == "mps" and not (mps is not None and mps.is_available()):
        problems.append("config key 'model.device' = 'mps' but MPS is not available; set model.device=auto or cpu")
    if training and requested == "auto" and pick_device("auto") == "cpu" and cfg.model.name != "tiny-debug":
        n = estimated_parameters(cfg)
        if n is not None and n > CPU_TRAINING_LIMIT:
            problems.append(f"config key 'model.device' = 'auto' means the CPU here (no GPU), and {cfg.model.name} has "
                            f"about {n / 1e9:.1f}B parameters: training it on a CPU would take days; run on a GPU, or "
                            "set model.device=cpu to do it anyway")
    package = ATTENTION_PACKAGES.get(cfg.model.attn_implementation or "")
    if package and importlib.util.find_spec(package) is None:
        problems.append(f"config key 'model.attn_implementation' = {cfg.model.attn_implementation!r} needs the "
                        f"{package} package, which is not installed: pip install {package.replace('_', '-')} "
                        "(CUDA only), or set model.attn_implementation=sdpa")
    return problems
