"""A JSONL journal of finished summaries, so an interrupted inference resumes where it stopped.

One file per output (``submission.journal.jsonl`` next to ``submission.csv``); one line per
finished dialogue, ``{"fname", "summary", "settings"}``, appended and fsynced as each batch
completes. ``settings`` hashes everything that decides a summary (checkpoint, generation and
prompt settings, the input files); rows written under other settings are discarded on load.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Optional

from src.config import Config, to_dict
from src.utils.io import atomic_write_text, file_digest

log = logging.getLogger(__name__)

# batch size and the token budget do not change greedy outputs (tests/inference/test_predictor.py)
_NOT_DECIDING = ("batch_size", "max_batch_tokens", "checkpoint", "predict_dev", "vllm_gpu_memory_utilization")


def settings_hash(cfg: Config, checkpoint: Path, split_file: Path, pool_file: Optional[Path]) -> str:
    """Hash of the checkpoint, the generation/prompt/model settings and the files read."""
    inference = {k: v for k, v in to_dict(cfg.inference).items() if k not in _NOT_DECIDING}
    parts: dict[str, Any] = {
        "inference": inference, "prompt": to_dict(cfg.prompt), "model": to_dict(cfg.model), "seed": cfg.seed,
        "quantization": [cfg.training.use_qlora, cfg.training.quantization, cfg.training.compute_dtype],
        "checkpoint": file_digest(Path(checkpoint)), "split": file_digest(Path(split_file)),
        "pool": file_digest(Path(pool_file)) if pool_file is not None and cfg.prompt.num_fewshot else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def journal_path(output: Path) -> Path:
    """Where the journal of ``output`` lives: ``<name>.journal.jsonl`` in the same folder."""
    return Path(output).with_suffix(".journal.jsonl")


class PredictionJournal:
    """Finished ``fname -> summary`` rows of one output under one settings hash."""

    def __init__(self, path: Path, settings: str) -> None:
        self.path = Path(path)
        self.settings = settings
        self.done: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        stale = torn = 0
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
                fname, summary, settings = str(rec["fname"]), str(rec["summary"]), rec["settings"]
            except (json.JSONDecodeError, KeyError, TypeError):
                torn += 1  # a line cut short by a kill mid-write
                continue
            if settings == self.settings:
                self.done[fname] = summary
            else:
                stale += 1
        if stale or torn:
            log.info("journal %s: dropped %d row(s) from other settings and %d unreadable line(s)",
                     self.path, stale, torn)
            self._rewrite()
        if self.done:
            log.info("journal %s: %d finished summaries reused", self.path, len(self.done))

    def _rewrite(self) -> None:
        if not self.done:
            self.path.unlink(missing_ok=True)
            return
        atomic_write_text(self.path, "".join(self._line(f, s) for f, s in self.done.items()))

    def _line(self, fname: str, summary: str) -> str:
        return json.dumps({"fname": fname, "summary": summary, "settings": self.settings}, ensure_ascii=False) + "\n"

    def append(self, fnames: Iterable[str], summaries: Iterable[str]) -> None:
        """Record finished rows and make them durable before returning."""
        rows = list(zip(fnames, summaries))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(self._line(f, s) for f, s in rows))
            fh.flush()
            os.fsync(fh.fileno())
        self.done.update(rows)

    def remove(self) -> None:
        """Delete the file once the output it stands for is written."""
        self.path.unlink(missing_ok=True)
