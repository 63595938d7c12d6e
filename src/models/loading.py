"""Resolving, checking and loading models (hub id, local folder, or the tiny debug model)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

from src.config import Config, resolve_path

log = logging.getLogger(__name__)

DEBUG_NAME = "tiny-debug"


def debug_model_dir(cfg: Config) -> Path:
    """Where the tiny debug model of ``model.type`` is cached."""
    kind = "tiny-llama" if cfg.model.type == "causal" else "tiny-bart"
    return resolve_path(cfg.paths.model_dir) / "debug" / kind


def resolve_model(cfg: Config, texts: Callable[[], list[str]]) -> str:
    """A loadable name or path for ``model.name``; builds the debug or embedded model on first use."""
    from src.models.embedded import is_embedded, resolve_embedded

    if is_embedded(cfg.model.name):
        return resolve_embedded(cfg.model.name, resolve_path(cfg.paths.model_dir))
    if cfg.model.name != DEBUG_NAME:
        local = resolve_path(cfg.model.name)
        return str(local) if local.is_dir() else cfg.model.name
    from src.models.debug import build_tiny_causal, build_tiny_seq2seq

    build = build_tiny_causal if cfg.model.type == "causal" else build_tiny_seq2seq
    return str(build(debug_model_dir(cfg), texts(), seed=cfg.seed))


def check_model_reachable(name: str, revision: Optional[str], token: Optional[str],
                          model_dir: str = "model") -> Optional[str]:
    """None when ``name`` can be loaded, else one line saying what is wrong and what to do."""
    from src.models.embedded import check_embedded, is_embedded

    if name == DEBUG_NAME:
        return None
    if is_embedded(name):
        return check_embedded(name, resolve_path(model_dir))
    local = resolve_path(name)
    if local.is_dir():
        return None if (local / "config.json").is_file() else (
            f"config key 'model.name' = {name!r}: folder has no config.json; point it at a saved model folder")
    if local.exists() or name.startswith((".", "/")) or name.count("/") != 1:
        return (f"config key 'model.name' = {name!r}: neither a local model folder nor a hub id (owner/name); "
                "fix the path or the id")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json", revision=revision)
    if isinstance(cached, str):
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return (f"config key 'model.name' = {name!r}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                f"download it first (huggingface-cli download {name}) or point model.name at a local folder")
    return _check_hub(name, revision, token)


def _check_hub(name: str, revision: Optional[str], token: Optional[str]) -> Optional[str]:
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        model_info(name, revision=revision, token=token, timeout=15)
        return None
    except GatedRepoError:
        return (f"config key 'model.name' = {name!r}: gated on the hub; accept its licence on the model page and "
                "set HF_TOKEN (environment or .env)")
    except RepositoryNotFoundError:
        return f"config key 'model.name' = {name!r}: no such model on the hub (or private: set HF_TOKEN); check the id"
    except Exception as exc:  # network errors come in many classes; all mean "cannot reach"
        return (f"config key 'model.name' = {name!r}: the hub is unreachable ({type(exc).__name__}); check the network, "
                "or download the model elsewhere and set model.name to its folder")


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


def compute_dtype(setting: str, device: str) -> Any:
    """The one dtype for QLoRA compute and mixed precision: bf16 where supported, else fp16 (CUDA), fp32 (CPU)."""
    import torch

    if setting != "auto":
        return getattr(torch, setting)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_tokenizer(path: str, cfg: Config, padding_side: str = "right") -> Any:
    """The model's tokenizer with a pad token (pad != EOS where possible, so EOS is never masked)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code,
                                        token=os.environ.get("HF_TOKEN") or None)
    if tok.pad_token is None:
        candidates = [t for t in ("<|finetune_right_pad_id|>", "<pad>", "<|pad|>", "<unk>") if t in tok.get_vocab()]
        tok.pad_token = candidates[0] if candidates else tok.eos_token
        log.info("tokenizer had no pad token; using %r", tok.pad_token)
    tok.padding_side = padding_side
    return tok


def quantization_config(cfg: Config, dtype: Any) -> Any:
    """BitsAndBytesConfig for QLoRA, or None when training.use_qlora is off."""
    t = cfg.training
    if not t.use_qlora or t.quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if t.quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=t.quantization,
                              bnb_4bit_use_double_quant=t.bnb_4bit_use_double_quant, bnb_4bit_compute_dtype=dtype)


def load_causal_model(path: str, cfg: Config, device: str, dtype: Any, quantize: bool) -> Any:
    """AutoModelForCausalLM on ``device``; 4-bit (QLoRA) when ``quantize``."""
    from transformers import AutoModelForCausalLM

    qcfg = quantization_config(cfg, dtype) if quantize else None
    kwargs: dict[str, Any] = dict(revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code,
                                  token=os.environ.get("HF_TOKEN") or None)
    if cfg.model.attn_implementation:
        kwargs["attn_implementation"] = cfg.model.attn_implementation
    if qcfg is not None:
        kwargs.update(quantization_config=qcfg, dtype=dtype, device_map={"": device})
    else:
        weights = dtype if cfg.model.torch_dtype == "auto" else getattr(__import__("torch"), cfg.model.torch_dtype)
        kwargs.update(dtype=weights)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model if qcfg is not None else model.to(device)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
