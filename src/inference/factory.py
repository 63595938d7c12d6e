"""Building the predictor a checkpoint calls for, prompting as that checkpoint was trained.

Used by the infer stage and the tune stage alike, so both generate with the same prompt settings,
few-shot pool and length cap (``src.models.provenance``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config
from src.inference.predictor import Predictor
from src.models.provenance import fewshot_pool, read_inference_info, settings_for_inference


def load_predictor(cfg: Config, checkpoint: Path, pool: Optional[pd.DataFrame]) -> Any:
    """The causal ``Predictor`` or, for ``model.type=seq2seq``, the ``Seq2SeqPredictor`` (same API, ``on_batch`` too)."""
    if cfg.model.type == "seq2seq":
        from src.inference.seq2seq import Seq2SeqPredictor

        return Seq2SeqPredictor.from_checkpoint(cfg, checkpoint, pool)
    return Predictor.from_checkpoint(cfg, checkpoint, pool)


def as_trained(cfg: Config, checkpoint: Path, current_pool: Optional[Path]) -> tuple[Config, Optional[Path]]:
    """The settings and few-shot pool that reproduce the checkpoint's training-time prompts (``src.models.provenance``)."""
    info = read_inference_info(checkpoint)
    cfg = settings_for_inference(cfg, checkpoint, info)
    return cfg, fewshot_pool(cfg, info, current_pool)
