"""The narrow door to generation: resolved settings in, a predictor on the chosen engine out.

``load_predictor`` takes the frozen ``InferenceSettings`` of ``src.inference.settings.resolve_settings`` (the infer
and tune stages, the benchmarks), decides the engine once (``src.inference.backends.choose_engine``) and builds the
causal ``Predictor`` or the ``Seq2SeqPredictor`` with it; ``predictor.choice`` is what the manifest records.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd

from src.config import Config
from src.inference.backends import choose_engine
from src.inference.predictor import Predictor
from src.inference.seq2seq import Seq2SeqPredictor
from src.inference.settings import InferenceSettings, resolve_settings
from src.models.device import pick_device


def load_predictor(settings: InferenceSettings, pool: Optional[pd.DataFrame]) -> Any:
    """The predictor for ``settings.checkpoint`` on the engine chosen for this machine (same API either way)."""
    cfg = settings.cfg
    if settings.checkpoint is None:
        raise ValueError("load_predictor needs settings resolved with a checkpoint")
    choice = choose_engine(cfg.inference.backend, cfg.model.type, pick_device(cfg.model.device))
    kind = Seq2SeqPredictor if choice.name == "seq2seq" else Predictor
    return kind.from_checkpoint(cfg, settings.checkpoint, pool, record=settings.record, choice=choice)


def as_trained(cfg: Config, checkpoint: Path, current_pool: Optional[Path]) -> InferenceSettings:
    """The settings that reproduce the checkpoint's training-time prompts, without the tune stage's choice."""
    return resolve_settings(cfg, checkpoint, current_pool, None, verify=False)
