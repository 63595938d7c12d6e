"""What the infer stage does: predict dev and test with one Predictor and write the files."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from src.config import Config
from src.data.loading import load_split
from src.inference.predictor import Predictor
from src.inference.submission import write_submission
from src.utils.io import atomic_write_csv

log = logging.getLogger(__name__)


def predict_splits(cfg: Config, inputs: dict[str, Optional[Path]], outputs: dict[str, Path], run_dir: Path) -> dict[str, Any]:
    """Predict the dev set (if asked) and the test set; return settings and throughput for the manifest."""
    pool = load_split(inputs["train"], "train") if inputs.get("train") and cfg.prompt.num_fewshot else None
    if cfg.model.type == "seq2seq":
        from src.inference.seq2seq import Seq2SeqPredictor as predictor_cls
    else:
        predictor_cls = Predictor
    predictor = predictor_cls.from_checkpoint(cfg, inputs["checkpoint"], pool)
    if "dev_predictions" in outputs:
        dev = load_split(inputs["dev"], "dev")
        atomic_write_csv(outputs["dev_predictions"], predictor.predict_dataframe(dev))
    test = load_split(inputs["test"], "test")
    write_submission(predictor.predict_dataframe(test), test, outputs["submission"])
    stats = predictor.stats.as_dict()
    if stats["hit_max_new_tokens"]:
        log.warning("%d outputs hit inference.max_new_tokens=%d: the stop token may not be learnt",
                    stats["hit_max_new_tokens"], cfg.inference.max_new_tokens)
    if stats["empty_outputs"]:
        log.warning("%d empty outputs replaced per inference.empty_fallback=%s", stats["empty_outputs"],
                    cfg.inference.empty_fallback)
    log.info("inference: %d dialogues in %.1fs (%.2f dialogues/s, %.1f generated tokens/s)", stats["dialogues"],
             stats["seconds"], stats["dialogues_per_s"], stats["generated_tokens_per_s"])
    return {"throughput": stats, "checkpoint": str(inputs["checkpoint"]),
            "generation": {k: getattr(cfg.inference, k) for k in ("batch_size", "max_new_tokens", "num_beams",
                                                                  "do_sample", "no_repeat_ngram_size")}}
