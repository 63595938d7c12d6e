"""What a checkpoint trained by this pipeline says about itself, and what inference takes from it.

``final_checkpoint/pipeline_inference.json`` (written by ``src.train.final``) records the model type,
the prompt settings, the few-shot pool (path and digest) and the training summaries' token lengths.
Inference from that checkpoint (in its own run or in a new one) prompts exactly as training did:
the prompt settings and the pool come from the checkpoint (keys that differ from the current config
are named in one log line), ``inference.max_new_tokens: auto`` becomes the recorded cap, and a
checkpoint of the other model type is refused with one line.
"""
from __future__ import annotations

import json
import logging
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Optional

from src.config import Config, InferenceConfig, PromptConfig, build_config
from src.utils.errors import UserError
from src.utils.io import file_digest

log = logging.getLogger(__name__)

INFERENCE_INFO = "pipeline_inference.json"  # written by src.train.final: what inference needs from training
DEFAULT_MAX_NEW_TOKENS = 128  # for a checkpoint trained elsewhere, without the training summaries' lengths


def read_inference_info(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's ``pipeline_inference.json`` ({} for a checkpoint this pipeline did not write)."""
    path = Path(checkpoint) / INFERENCE_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{path}: unreadable; retrain, or delete the file to use the current config's prompt "
                        "settings") from None
    return info if isinstance(info, dict) else {}


def resolve_max_new_tokens(gen: InferenceConfig, info: dict[str, Any]) -> InferenceConfig:
    """``max_new_tokens: auto`` as the cap stored with the checkpoint (the training summaries' 99.5th percentile
    plus a margin); a number is kept, with a warning when it would cut more than 1% of the training summaries."""
    lengths = info.get("completion_tokens") or {}
    if gen.max_new_tokens == "auto":
        if "auto_max_new_tokens" not in lengths:
            log.warning("inference.max_new_tokens=auto but the checkpoint records no summary lengths (trained "
                        "elsewhere?): using %d", DEFAULT_MAX_NEW_TOKENS)
        return replace(gen, max_new_tokens=int(lengths.get("auto_max_new_tokens", DEFAULT_MAX_NEW_TOKENS)))
    hist = lengths.get("histogram") or {}
    total = sum(hist.values())
    cut = sum(c for n, c in hist.items() if int(n) > int(gen.max_new_tokens)) / total if total else 0.0
    if cut > 0.01:
        log.warning("inference.max_new_tokens=%s cuts %.1f%% of the training summaries (99.5th percentile %s "
                    "tokens): use inference.max_new_tokens=auto", gen.max_new_tokens, 100 * cut, lengths.get("p99_5"))
    return gen


def checkpoint_type(checkpoint: Path, info: dict[str, Any]) -> Optional[str]:
    """causal or seq2seq, as recorded or as the weights' config says; None when nothing tells."""
    if info.get("model_type"):
        return str(info["model_type"])
    config = Path(checkpoint) / "config.json"
    if config.is_file():
        try:
            encoder_decoder = bool(json.loads(config.read_text(encoding="utf-8")).get("is_encoder_decoder"))
        except (OSError, ValueError):
            return None
        return "seq2seq" if encoder_decoder else "causal"
    return "causal" if (Path(checkpoint) / "adapter_config.json").is_file() else None


def settings_for_inference(cfg: Config, checkpoint: Path, info: dict[str, Any]) -> Config:
    """``cfg`` with the checkpoint's prompt settings; a checkpoint of the other model type is a UserError."""
    kind = checkpoint_type(checkpoint, info)
    if kind is not None and kind != cfg.model.type:
        raise UserError(f"inference checkpoint {checkpoint} holds a {kind} model but model.type={cfg.model.type}: "
                        f"set model.type={kind} (or point inference.checkpoint at a {cfg.model.type} checkpoint)")
    saved = info.get("prompt")
    if not saved or not cfg.inference.prompt_from_checkpoint:
        return cfg
    prompt = _prompt_from(saved)
    differ = [f"prompt.{f.name}" for f in fields(PromptConfig) if getattr(prompt, f.name) != getattr(cfg.prompt, f.name)]
    if differ:
        log.warning("inference prompts as the checkpoint was trained; these keys differ from the current config and "
                    "take the checkpoint's values: %s (set inference.prompt_from_checkpoint=false to use yours)",
                    ", ".join(differ))
    return replace(cfg, prompt=prompt)


def _prompt_from(saved: dict[str, Any]) -> PromptConfig:
    known = {f.name for f in fields(PromptConfig)}
    flat = {f"prompt.{k}": (v, "checkpoint") for k, v in saved.items() if k in known}
    return build_config(flat).prompt


def fewshot_pool(cfg: Config, info: dict[str, Any], current: Optional[Path]) -> Optional[Path]:
    """The training file the checkpoint drew few-shot examples from (checked by digest); else ``current``."""
    if not cfg.prompt.num_fewshot:
        return None
    recorded = info.get("fewshot_pool") or {}
    path, digest = recorded.get("path"), recorded.get("digest")
    if path and Path(path).is_file() and (digest is None or file_digest(Path(path)) == digest):
        return Path(path)
    if current is not None and digest is not None and current.is_file() and file_digest(current) == digest:
        return current
    if path:
        log.warning("the few-shot pool the checkpoint was trained with (%s) is gone or changed; using %s, so prompts "
                    "may differ from training", path, current)
    return current


def trained_with(folder: Path) -> dict[str, Any]:
    """The inference info of a complete final checkpoint ({} when it is not one)."""
    info = read_inference_info(folder) if (folder / "pipeline_fingerprint.json").is_file() else {}
    return info if info else {}


def newest_final(model_root: Path, cfg: Config) -> Optional[Path]:
    """The newest complete ``<run>/final_checkpoint`` trained with ``model.name`` and ``model.type``."""
    found = []
    for folder in Path(model_root).glob("*/final_checkpoint"):
        info = trained_with(folder)
        if info.get("model_name") == cfg.model.name and info.get("model_type") == cfg.model.type:
            found.append(folder)
    return max(found, key=lambda p: (p / "pipeline_fingerprint.json").stat().st_mtime) if found else None

