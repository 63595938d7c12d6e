"""Trainer callbacks: ROUGE on generated dev summaries at each evaluation, early stopping, checkpoint records.

The ROUGE callback generates with the inference code itself (``Predictor`` on the in-memory
model, the shared prompt builder and the same generation settings), so the checkpoint picked by
``rouge_final`` is the best one for the summaries the infer stage will actually write.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
from transformers import EarlyStoppingCallback, TrainerCallback

from src.config import InferenceConfig
from src.evaluation import score_texts
from src.inference.predictor import Predictor
from src.models.checkpoint import record
from src.prompting.builder import PromptBuilder
from src.prompting.fewshot import ShotSelector

log = logging.getLogger(__name__)


@dataclass
class RougeSample:
    """The dev dialogues scored at each evaluation and how to score them."""

    fnames: list[str]
    dialogues: list[str]
    references: list[str]
    tokenizer: str

    @classmethod
    def from_frame(cls, dev: pd.DataFrame, n: int, seed: int, tokenizer: str) -> "RougeSample":
        """``n`` dev rows drawn once with ``seed`` (the same rows at every evaluation)."""
        rows = dev.sample(n=min(n, len(dev)), random_state=seed) if n < len(dev) else dev
        return cls(rows["fname"].astype(str).tolist(), rows["dialogue"].astype(str).tolist(),
                   rows["summary"].astype(str).tolist(), tokenizer)


@dataclass
class KnownDialogues:
    """A ShotSelector view that knows each sample fname's dialogue (``similar`` ranks by the dialogue)."""

    selector: ShotSelector
    dialogues: dict[str, str]

    def select(self, fname: Optional[str] = None, dialogue: Optional[str] = None) -> list[tuple[str, str]]:
        """The selector's shots for ``fname``, its dialogue filled in when the caller passes none."""
        return self.selector.select(fname, dialogue if dialogue is not None else self.dialogues.get(str(fname)))


class RougeCallback(TrainerCallback):
    """Adds eval_rouge1/2/L and eval_rouge_final to the evaluation metrics (before best-model choice)."""

    def __init__(self, gen: InferenceConfig, sample: RougeSample, tokenizer: Any, builder: PromptBuilder,
                 selector: Optional[ShotSelector], device: str, stored_vocab: Optional[list[int]] = None) -> None:
        self.gen, self.sample, self.tokenizer = gen, sample, tokenizer  # gen: resolved (training_time_settings)
        self.builder, self.selector, self.device = builder, selector, device
        self.stored_vocab = stored_vocab  # the training examples' ids (a trimmed output layer's base)
        self.log_fn: Optional[Callable[[dict[str, float]], None]] = None  # ``bind``: the trainer's log, once it exists

    def bind(self, log_fn: Callable[[dict[str, float]], None]) -> None:
        """Log the scores through ``log_fn`` (the trainer's ``log``: the scores reach the trackers and log lines)."""
        self.log_fn = log_fn

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Optional[dict] = None,
                    model: Any = None, **kwargs: Any) -> None:
        """Generate the sample's summaries, score them, and add the scores to ``metrics``."""
        if metrics is None or model is None:
            return
        start = time.perf_counter()
        scores = self.score(model)
        found = {f"eval_{k}": v for k, v in scores.items()}
        metrics.update(found)
        log.info("step %d: dev ROUGE-1 %.4f ROUGE-2 %.4f ROUGE-L %.4f final %.2f on %d generated summaries (%.1fs)",
                 state.global_step, scores["rouge1"], scores["rouge2"], scores["rougeL"], scores["rouge_final"],
                 len(self.sample.fnames), time.perf_counter() - start)
        if self.log_fn is not None:
            self.log_fn(dict(found))

    def score(self, model: Any) -> dict[str, float]:
        """ROUGE of the model's summaries for the sample, in the competition's units."""
        was_training = model.training
        model.eval()
        try:
            shots = KnownDialogues(self.selector, dict(zip(self.sample.fnames, self.sample.dialogues))) \
                if self.selector is not None else None
            predictor = Predictor(model, self.tokenizer, self.builder, shots, self.gen, self.device,
                                  stored_vocab=self.stored_vocab)
            predictions = predictor.predict_batch(self.sample.dialogues, self.sample.fnames)
        finally:
            model.train(was_training)
        result = score_texts(predictions, [[r] for r in self.sample.references], tokenizer=self.sample.tokenizer)
        return {"rouge1": result["rouge1"], "rouge2": result["rouge2"], "rougeL": result["rougeL"],
                "rouge_final": result["final"]}


def early_stopping(patience: int) -> list[Any]:
    """An EarlyStoppingCallback when ``patience`` > 0 (it watches the best-model metric)."""
    return [EarlyStoppingCallback(early_stopping_patience=patience)] if patience > 0 else []


class CheckpointRecord(TrainerCallback):
    """After each save: the fingerprint and file sizes into ``checkpoint-N``, and umask permissions."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.parts = parts

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Record the folder the Trainer has just written (main process only)."""
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            record(folder, self.parts)
