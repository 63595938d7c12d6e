"""A JSONL journal of finished summaries, so an interrupted inference resumes where it stopped.

One file per output (``submission.journal.jsonl`` next to ``submission.csv``); one line per
finished dialogue, ``{"fname", "summary", "settings"}`` (under MBR also ``"single"``: the main decode, candidate 0,
so a resumed run still writes ``dev_predictions_single.csv``), appended and fsynced as each batch
completes (``src.utils.journal``). ``settings`` hashes everything that decides a summary (checkpoint, generation and
prompt settings, the input files); rows written under other settings are discarded on load.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Optional

from src.config import Config, to_dict
from src.config.deciding import DECIDING_KEYS
from src.models.checkpoint import content_digest
from src.utils.io import file_digest, json_digest
from src.utils.journal import JsonlJournal

log = logging.getLogger(__name__)



def prediction_key(cfg: Config, checkpoint: Path, split_file: Path, pool_file: Optional[Path],
                  extra: Any = None) -> str:
    """Hash of the checkpoint, the generation/prompt/model settings, the files read and ``extra`` (MBR's runs)."""
    # the keys the schema marks as deciding a summary: batch size, slots and token budgets do not change greedy
    # outputs (tests/inference/test_predictor.py, test_continuous.py)
    inference = {k: v for k, v in to_dict(cfg.inference).items() if k in DECIDING_KEYS}
    parts: dict[str, Any] = {
        "inference": inference, "prompt": to_dict(cfg.prompt), "model": to_dict(cfg.model), "seed": cfg.seed,
        "quantization": [cfg.training.use_qlora, cfg.training.quantization, cfg.training.compute_dtype],
        "checkpoint": content_digest(Path(checkpoint)), "split": file_digest(Path(split_file)),
        "pool": file_digest(Path(pool_file)) if pool_file is not None and cfg.prompt.num_fewshot else None,
        "extra": extra,
    }
    return json_digest(parts)


def journal_path(output: Path) -> Path:
    """Where the journal of ``output`` lives: ``<name>.journal.jsonl`` in the same folder."""
    return Path(output).with_suffix(".journal.jsonl")


class PredictionJournal:
    """Finished ``fname -> summary`` rows of one output under one settings hash (``src.utils.journal`` lines), and
    ``fname -> single`` (the main decode before MBR) for the rows journaled with it."""

    def __init__(self, path: Path, settings: str) -> None:
        self.file = JsonlJournal(path)
        self.path = self.file.path
        self.settings = settings
        self.done: dict[str, str] = {}
        self.singles: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        records, torn = self.file.read()
        stale = 0
        for rec in records:
            if "fname" not in rec or "summary" not in rec:
                torn += 1
            elif rec.get("settings") == self.settings:
                self.done[str(rec["fname"])] = str(rec["summary"])
                if "single" in rec:
                    self.singles[str(rec["fname"])] = str(rec["single"])
            else:
                stale += 1
        if stale or torn:
            log.info("journal %s: dropped %d row(s) from other settings and %d unreadable line(s)",
                     self.path, stale, torn)
            self.file.rewrite(self._records(self.done.items()))
        if self.done:
            log.info("journal %s: %d finished summaries reused", self.path, len(self.done))

    def _records(self, rows: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"fname": f, "summary": s, "settings": self.settings,
                 **({"single": self.singles[f]} if f in self.singles else {})} for f, s in rows]

    def append(self, fnames: Iterable[str], summaries: Iterable[str], singles: Optional[Iterable[str]] = None) -> None:
        """Record finished rows (with ``singles``, each row's main decode before MBR) and make them durable before
        returning."""
        rows = list(zip(fnames, summaries))
        if singles is not None:
            self.singles.update(zip([f for f, _ in rows], singles))
        self.file.append(self._records(rows))
        self.done.update(rows)

    def remove(self) -> None:
        """Delete the file once the output it stands for is written."""
        self.file.remove()
