"""What the train stage hands a trainer: ``TrainJob`` (where, whether to resume, the fingerprint, the pool).

The folder a training run ends with, ``final_checkpoint/``, is written through the checkpoint contract
(``src.models.checkpoint.finalize``): weights, the tokenizer, the resolved config, the record inference reads and
the training fingerprint.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.models.checkpoint import finalize, finish_from, finished, resume_checkpoint
from src.train.callbacks import CheckpointRecord
from src.train.progress import FiniteLoss, TrainingLog

log = logging.getLogger(__name__)


@dataclass
class TrainJob:
    """What the train stage hands a trainer besides the data: where, whether to resume, the fingerprint, the pool."""

    out_dir: Path
    resume: bool
    parts: dict[str, Any]
    pool: Optional[Path] = None  # the training file: the few-shot pool inference must use too
    pool_digest: Optional[str] = None
    checkpoint: Optional[Path] = None  # set by ``finish``: the checkpoint training continues from
    report_dir: Optional[Path] = None  # the run folder: train_log.csv and train_curves.png go here
    explicit: frozenset[str] = frozenset()  # keys set on the command line (the training-time generation settings)

    def callbacks(self, cfg: Config) -> list[Any]:
        """What every trainer of the pipeline gets: checkpoint records, loss lines and curves, the NaN stop."""
        return [CheckpointRecord(self.parts), TrainingLog(self.report_dir), FiniteLoss(cfg.training.learning_rate)]

    def finish(self, cfg: Config, tokenizer: Any, probe: list[str], lengths: dict[str, Any],
               output_ids: Optional[list[int]] = None) -> Optional[dict[str, Any]]:
        """Pick the checkpoint to continue from; when it already holds the whole run, make the final folder
        from it without another step and return the manifest fields (else None: train)."""
        if not self.resume:
            return None
        self.checkpoint = resume_checkpoint(self.out_dir, self.parts)
        if self.checkpoint is None:
            log.info("no complete checkpoint of these settings in %s: training from the start", self.out_dir)
            return None
        if not finished(self.checkpoint, cfg.training.max_steps, cfg.training.num_train_epochs):
            log.info("resuming training from %s", self.checkpoint)
            return None
        log.info("%s already holds the whole run: final_checkpoint is made from it, no step is trained", self.checkpoint)
        final = self.out_dir / "final_checkpoint"
        fields = finish_from(self.checkpoint, final)
        self.finalize(final, cfg, tokenizer, probe, lengths, output_ids)
        return {**fields, "resumed_from": str(self.checkpoint), "final_checkpoint": str(final),
                "max_new_tokens_auto": lengths.get("auto_max_new_tokens")}

    def finalize(self, folder: Path, cfg: Config, tokenizer: Any, probe: list[str],
                 lengths: Optional[dict[str, Any]], output_ids: Optional[list[int]] = None) -> Path:
        """``finalize`` with this job's fingerprint and pool (``output_ids``: the causal training examples' ids)."""
        return finalize(folder, cfg, tokenizer, probe, self.parts, self.pool, self.pool_digest, lengths or {},
                        output_ids)
