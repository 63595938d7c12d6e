"""Building the predictor a checkpoint calls for, prompting as that checkpoint was trained.

The settings come from ``src.inference.settings.resolve_settings`` (the infer and tune stages alike), so
both generate with the same prompt settings, few-shot pool and length cap.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config
from src.inference.predictor import Predictor


def load_predictor(cfg: Config, checkpoint: Path, pool: Optional[pd.DataFrame]) -> Any:
    """The causal ``Predictor`` or, for ``model.type=seq2seq``, the ``Seq2SeqPredictor`` (same API, ``on_batch`` too)."""
    if cfg.model.type == "seq2seq":
        from src.inference.seq2seq import Seq2SeqPredictor

        return Seq2SeqPredictor.from_checkpoint(cfg, checkpoint, pool)
    return Predictor.from_checkpoint(cfg, checkpoint, pool)


def as_trained(cfg: Config, checkpoint: Path, current_pool: Optional[Path]) -> tuple[Config, Optional[Path]]:
    """The settings and few-shot pool that reproduce the checkpoint's training-time prompts, without the tune
    stage's choice (``src.inference.settings.resolve_settings``, where the infer and tune stages build theirs)."""
    from src.inference.settings import resolve_settings

    settings = resolve_settings(cfg, checkpoint, current_pool, None, verify=False)
    return settings.cfg, settings.pool
