"""Checkpoints the train stage writes: what a folder holds, and loading it for inference.

A checkpoint is an adapter (``adapter_config.json``, loaded on its base model: 4-bit as trained
with QLoRA, else in the compute dtype and merged) or full weights (``config.json``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.utils.errors import UserError
from src.models.device import compute_dtype
from src.models.loading import load_causal_model

log = logging.getLogger(__name__)


def read_adapter_config(checkpoint: Path) -> Optional[dict[str, Any]]:
    """The PEFT adapter config of ``checkpoint``, or None for full weights."""
    path = Path(checkpoint) / "adapter_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_checkpoint(checkpoint: Path) -> None:
    """Fail clearly unless ``checkpoint`` holds an adapter or full model weights."""
    if not checkpoint.is_dir():
        raise UserError(f"inference checkpoint {checkpoint} does not exist; train first, or set inference.checkpoint "
                        "to a final_checkpoint/ or checkpoint-N/ folder")
    if not (checkpoint / "adapter_config.json").is_file() and not (checkpoint / "config.json").is_file():
        raise UserError(f"inference checkpoint {checkpoint} has neither adapter_config.json nor config.json; "
                        "point inference.checkpoint at a final_checkpoint/, checkpoint-N/ or final_merged/ folder")


def verified_checkpoint(checkpoint: Path) -> Path:
    """``checkpoint`` when its files match the sha256 recorded with it (or it records none: trained elsewhere);
    else, with a warning, the newest intact ``checkpoint-N`` of the same run; UserError when there is none."""
    from src.train.checkpoints import FINGERPRINT_FILE, checkpoints, content_problem, problem_with

    checkpoint = Path(checkpoint)
    if not (checkpoint / FINGERPRINT_FILE).is_file():
        return checkpoint
    problem = content_problem(checkpoint, trainer_state=checkpoint.name.startswith("checkpoint-"))
    if problem is None:
        return checkpoint
    for other in checkpoints(checkpoint.parent):
        if other != checkpoint and problem_with(other) is None:
            log.warning("inference checkpoint %s is damaged (%s): using %s, the newest intact checkpoint of the run "
                        "(retrain with --resume to rebuild it)", checkpoint, problem, other)
            return other
    raise UserError(f"inference checkpoint {checkpoint}: {problem}, and the run has no intact checkpoint-N to use "
                    "instead; retrain (--resume continues from the last intact one) or set inference.checkpoint")


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
