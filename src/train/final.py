"""The folder a training run ends with: ``final_checkpoint/`` (and ``final_merged/`` when asked).

It holds the weights (adapter or full model), the tokenizer (saved so that it encodes exactly as the
training tokenizer did, and checked on a rendered prompt), the resolved config, the training
fingerprint (``src.train.checkpoints``) and ``pipeline_inference.json``: what inference needs to
rebuild the training-time prompts (model type, prompt settings, few-shot pool path and digest)
and the generation cap ``inference.max_new_tokens: auto`` resolves to.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from src.config import Config, to_dict
from src.models.loading import save_tokenizer
from src.models.provenance import INFERENCE_INFO
from src.train.checkpoints import finish_from, finished, record, resume_checkpoint
from src.utils.io import atomic_write_json, atomic_write_text, follow_umask

log = logging.getLogger(__name__)

MARGIN_TOKENS = 8  # headroom above the 99.5th percentile of the training summaries' completion tokens


def summary_lengths(lengths: list[int]) -> dict[str, Any]:
    """Percentiles of completion-token counts, the cap ``max_new_tokens: auto`` means, and the histogram."""
    ordered = sorted(lengths)
    if not ordered:
        return {"n": 0, "auto_max_new_tokens": 128, "histogram": {}}

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.999999))]

    p995 = pct(0.995)
    hist: dict[str, int] = {}
    for n in ordered:
        hist[str(n)] = hist.get(str(n), 0) + 1
    return {"n": len(ordered), "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "p99_5": p995,
            "max": ordered[-1], "auto_max_new_tokens": p995 + max(MARGIN_TOKENS, round(0.1 * p995)), "histogram": hist}


def write_config(cfg: Config, folder: Path) -> None:
    """The resolved pipeline config next to the weights it produced."""
    import yaml

    atomic_write_text(Path(folder) / "pipeline_config.yaml", yaml.safe_dump(to_dict(cfg), allow_unicode=True,
                                                                             sort_keys=False))


def write_inference_info(folder: Path, cfg: Config, pool: Optional[Path], pool_digest: Optional[str],
                         lengths: dict[str, Any], output_ids: Optional[list[int]] = None) -> None:
    """What inference reads from the checkpoint to prompt exactly as training did (and, with ``output_ids``, the
    training examples' distinct ids: the trimmed output layer's base, ``src.inference.vocab``)."""
    info: dict[str, Any] = {
        "model_type": cfg.model.type, "model_name": cfg.model.name, "prompt": to_dict(cfg.prompt), "seed": cfg.seed,
        "fewshot_pool": {"path": str(pool) if pool else None, "digest": pool_digest},
        "completion_tokens": lengths}
    if output_ids is not None:
        info["output_vocab"] = output_ids
    atomic_write_json(Path(folder) / INFERENCE_INFO, info)


def finalize(folder: Path, cfg: Config, tokenizer: Any, probe: list[str], parts: dict[str, Any],
             pool: Optional[Path], pool_digest: Optional[str], lengths: dict[str, Any],
             output_ids: Optional[list[int]] = None) -> Path:
    """Tokenizer (pinned, verified on ``probe``), config, inference info and fingerprint into a saved model folder."""
    save_tokenizer(tokenizer, folder, probe)
    write_config(cfg, folder)
    write_inference_info(folder, cfg, pool, pool_digest, lengths, output_ids)
    record(folder, parts)
    follow_umask(folder)
    return folder


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
        from src.train.checkpoints import CheckpointRecord
        from src.train.progress import FiniteLoss, TrainingLog

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
