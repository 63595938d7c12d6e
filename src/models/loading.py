"""Resolving, checking and loading models (hub id, local folder, or the tiny debug model)."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

from src.config import SPLITS, Config, resolve_path
from src.models.debug import build_tiny_causal, build_tiny_seq2seq
from src.models.device import compute_dtype, local_device
from src.models.embedded import base_chat_template, check_embedded, embedded_dir, is_embedded, resolve_embedded
from src.utils.errors import UserError

log = logging.getLogger(__name__)

DEBUG_NAME = "tiny-debug"


def debug_model_dir(cfg: Config) -> Path:
    """Where the tiny debug model of ``model.type`` is cached."""
    kind = "tiny-llama" if cfg.model.type == "causal" else "tiny-bart"
    return resolve_path(cfg.paths.model_dir) / "debug" / kind


def model_location(cfg: Config) -> str:
    """Where ``model.name`` loads from (a folder or a hub id), without building anything."""
    if cfg.model.name == DEBUG_NAME:
        return str(debug_model_dir(cfg))
    if is_embedded(cfg.model.name):
        return str(embedded_dir(resolve_path(cfg.paths.model_dir), cfg.model.name))
    local = resolve_path(cfg.model.name)
    return str(local) if local.is_dir() else cfg.model.name


def debug_texts(cfg: Config) -> list[str]:
    """Text the tiny debug tokenizer is trained on: every dialogue and summary of the configured splits."""
    from src.data.sources import load_split_sources

    texts: list[str] = []
    for split in SPLITS:
        df = load_split_sources(cfg, split).frame
        for col in ("dialogue", "summary"):
            if col in df.columns:
                texts += df[col].dropna().astype(str).tolist()
    return texts


def resolve_model(cfg: Config, texts: Callable[[], list[str]]) -> str:
    """A loadable name or path for ``model.name``; builds the debug or embedded model on first use."""
    if is_embedded(cfg.model.name):
        return resolve_embedded(cfg.model.name, resolve_path(cfg.paths.model_dir))
    if cfg.model.name != DEBUG_NAME:
        return model_location(cfg)
    build = build_tiny_causal if cfg.model.type == "causal" else build_tiny_seq2seq
    return str(build(debug_model_dir(cfg), texts(), seed=cfg.seed))


def check_model_reachable(name: str, revision: Optional[str], token: Optional[str],
                          model_dir: str = "model") -> Optional[str]:
    """None when ``name`` can be loaded, else one line saying what is wrong and what to do."""
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
                f"download it first (hf download {name}) or point model.name at a local folder")
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
    template = base_chat_template(path) if cfg.prompt.use_chat_template and not tok.chat_template else None
    if template:  # the embedded base model's GGUF carries no chat template: the turn format is ours to give
        tok.chat_template = template
        log.info("tokenizer of %s: no chat template; the model's turn format applies (prompt.use_chat_template=true)",
                 path)
    return tok


ENCODING_KWARGS = ("legacy", "add_prefix_space", "add_bos_token", "add_eos_token")  # decide how text is split


def save_tokenizer(tokenizer: Any, folder: Path, probe: list[str]) -> None:
    """Save ``tokenizer`` so that a reload encodes ``probe`` exactly as it does, or raise UserError.

    transformers 5 writes only the init kwargs a tokenizer was given; SOLAR's sentencepiece tokenizer
    was built with ``legacy=True`` by default and reloads with ``legacy=False``, which drops the ``▁``
    after every ``</s>`` (494 of 499 dev prompts changed by a token). The attributes that decide the
    split are pinned into the saved config, and the saved copy is checked on rendered prompts.
    """
    from transformers import AutoTokenizer

    for key in ENCODING_KWARGS:
        value = getattr(tokenizer, key, None)
        if isinstance(value, bool):
            tokenizer.init_kwargs[key] = value
    tokenizer.save_pretrained(str(folder))
    reloaded = AutoTokenizer.from_pretrained(str(folder))
    for text in probe:
        want = tokenizer(text, add_special_tokens=False)["input_ids"]
        got = reloaded(text, add_special_tokens=False)["input_ids"]
        if want != got:
            at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
            raise UserError(f"{folder}: the saved tokenizer encodes a training prompt differently from the training "
                            f"tokenizer (first difference at token {at}: {tokenizer.convert_ids_to_tokens(want[at:at + 2])}"
                            f" vs {reloaded.convert_ids_to_tokens(got[at:at + 2])}); inference would see other prompts "
                            "than training did: report this with the model name")


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


def causal_load_kwargs(cfg: Config, device: str, dtype: Any, quantize: bool) -> dict[str, Any]:
    """``from_pretrained`` arguments: 4-bit (QLoRA) on this process's device when ``quantize``, else a dtype."""
    qcfg = quantization_config(cfg, dtype) if quantize else None
    kwargs: dict[str, Any] = dict(revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code,
                                  token=os.environ.get("HF_TOKEN") or None)
    if cfg.model.attn_implementation:
        kwargs["attn_implementation"] = cfg.model.attn_implementation
    if qcfg is not None:
        # each process of a multi-GPU launch puts its quantized copy on its own GPU (LOCAL_RANK)
        kwargs.update(quantization_config=qcfg, dtype=dtype, device_map={"": local_device(device)})
    else:
        kwargs.update(dtype=dtype if cfg.model.torch_dtype == "auto" else getattr(__import__("torch"), cfg.model.torch_dtype))
    return kwargs


def load_causal_model(path: str, cfg: Config, device: str, dtype: Any, quantize: bool) -> Any:
    """AutoModelForCausalLM on ``device``; 4-bit (QLoRA) when ``quantize``."""
    from transformers import AutoModelForCausalLM

    kwargs = causal_load_kwargs(cfg, device, dtype, quantize)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model if "quantization_config" in kwargs else model.to(device)  # type: ignore[arg-type]


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


# ---------------------------------------------------------------- inference: a checkpoint's weights

def read_adapter_config(checkpoint: Path) -> Optional[dict[str, Any]]:
    """The PEFT adapter config of ``checkpoint``, or None for full weights."""
    path = Path(checkpoint) / "adapter_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def wants_4bit(cfg: Config, is_adapter: bool) -> bool:
    """4-bit base: as trained for an adapter under ``inference.quantize=auto``; forced by ``4bit``."""
    if cfg.inference.quantize == "auto":
        return is_adapter and cfg.training.use_qlora and cfg.training.quantization != "none"
    return cfg.inference.quantize == "4bit"


def load_inference_model(cfg: Config, checkpoint: Path, device: str) -> Any:
    """Full weights, or the adapter on its base (4-bit or the compute dtype), merged when unquantized."""
    adapter = read_adapter_config(checkpoint)
    dtype = compute_dtype(cfg.training.compute_dtype, device)
    quantize = wants_4bit(cfg, adapter is not None)
    # load_causal_model quantizes per training.*: make it follow inference.quantize instead
    training = replace(cfg.training, use_qlora=quantize,
                       quantization=cfg.training.quantization if cfg.training.quantization != "none" else "nf4")
    load_cfg = replace(cfg, training=training)
    if adapter is None:
        model = load_causal_model(str(checkpoint), load_cfg, device, dtype, quantize=quantize)
    else:
        model = _load_adapter(load_cfg, checkpoint, adapter, device, dtype, quantize)
    model.eval()
    kind = "full weights" if adapter is None else "adapter on a 4-bit base" if quantize else (
        "adapter merged into the base" if cfg.inference.merge_lora else "adapter on the base")
    log.info("inference model: %s (%s)", checkpoint, kind)
    return model


def _load_adapter(cfg: Config, checkpoint: Path, adapter: dict[str, Any], device: str, dtype: Any, quantize: bool) -> Any:
    from peft import PeftModel

    base = adapter.get("base_model_name_or_path") or cfg.model.name
    if base.startswith(("/", ".")) and not Path(base).is_dir():
        raise UserError(f"{checkpoint / 'adapter_config.json'}: base model folder {base} does not exist; "
                        "restore it or edit base_model_name_or_path to where the base model now lives")
    model = PeftModel.from_pretrained(load_causal_model(base, cfg, device, dtype, quantize=quantize), str(checkpoint))
    if not quantize and cfg.inference.merge_lora:
        model = model.merge_and_unload()  # one matmul per layer instead of base + A·B
    return model
