"""Batching shared by the causal and seq2seq predictors: length-sorted groups, the batch loop, the counters.

Prompts are sorted longest first and grouped under ``inference.batch_size`` and
``inference.max_batch_tokens`` (padded tokens, new tokens included), so a batch wastes little
padding; each finished batch is handed to ``on_batch`` (the infer stage's journal).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Union

import pandas as pd

from src.config import InferenceConfig, section_problems
from src.inference.decoding import DecodingParams

logger = logging.getLogger(__name__)

BatchCallback = Callable[[list[int], list[str]], None]


def new_token_cap(gen: Union[InferenceConfig, DecodingParams]) -> int:
    """``inference.max_new_tokens`` as a number (``auto`` is resolved with the settings, ``src.inference.settings``)."""
    if not isinstance(gen.max_new_tokens, int):
        raise ValueError("inference.max_new_tokens=auto reached generation unresolved: resolve the settings "
                         "(src.inference.settings.resolve_settings) or pass a number")
    return gen.max_new_tokens


class BatchProgress:
    """Progress of one split's generation: a bar on a terminal, and a log line every tenth of the work."""

    def __init__(self, total: int, label: str) -> None:
        from tqdm import tqdm

        self.total, self.label, self.done = total, label, 0
        self.started = time.perf_counter()
        self.step = max(1, total // 10)
        self.next_line = self.step
        self.bar = tqdm(total=total, desc=label, unit="dialogue", disable=None)  # None: hidden when not a terminal

    def update(self, n: int) -> None:
        """``n`` more dialogues finished."""
        self.done += n
        self.bar.update(n)
        if self.done >= self.next_line or self.done == self.total:
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            logger.info("%s: %d of %d dialogues (%.0f%%), %.2f dialogues/s", self.label, self.done, self.total,
                        100 * self.done / max(self.total, 1), rate)
            self.next_line = self.done + self.step
        if self.done >= self.total:
            self.bar.close()


def checked_settings(gen: InferenceConfig, overrides: dict[str, Any]) -> InferenceConfig:
    """``gen`` with per-call overrides applied; unknown names or bad values raise ValueError."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(InferenceConfig)})
    if unknown:
        raise ValueError(f"unknown generation setting(s) {unknown}; use InferenceConfig fields, e.g. num_beams")
    gen = replace(gen, **overrides)
    problems = section_problems(gen, "inference")
    if problems:
        raise ValueError("; ".join(problems))
    return gen


def predict_frame(predict_batch: Callable[..., list[str]], df: pd.DataFrame,
                  on_batch: Optional[Callable[[list[str], list[str]], None]], overrides: dict[str, Any]) -> pd.DataFrame:
    """``fname,summary`` for ``df`` through any predictor's ``predict_batch``; ``on_batch`` gets fnames."""
    fnames = df["fname"].astype(str).tolist()
    hook = (lambda idx, summaries: on_batch([fnames[i] for i in idx], summaries)) if on_batch else None
    summaries = predict_batch(df["dialogue"].astype(str).tolist(), fnames, on_batch=hook, **overrides)
    return pd.DataFrame({"fname": fnames, "summary": summaries})


def length_batches(order: list[int], lengths: list[int], batch_size: int, max_batch_tokens: int) -> list[list[int]]:
    """Consecutive groups of ``order`` (longest first): at most batch_size items and max_batch_tokens padded tokens."""
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        fits = cur is not None and len(cur) < batch_size and (
            not max_batch_tokens or lengths[cur[0]] * (len(cur) + 1) <= max_batch_tokens)
        if fits and cur is not None:
            cur.append(i)
        else:
            batches.append([i])
    return batches


def run_batches(batches: list[list[int]], n: int, generate: Callable[[list[int]], list[Any]],
                finish: Callable[[int, Any], str], stats: "GenerationStats",
                on_batch: Optional[Callable[[list[int], list[str]], None]]) -> list[str]:
    """Generate batch by batch, post-process each result into its input slot, report each finished batch."""
    outputs = [""] * n
    for batch in batches:
        for i, result in zip(batch, generate(batch)):
            outputs[i] = finish(i, result)
        stats.batches += 1
        if on_batch is not None:
            on_batch(batch, [outputs[i] for i in batch])
    return outputs


@dataclass
class GenerationStats:
    """Counts and throughput of the prediction calls made so far."""

    dialogues: int = 0
    generated_tokens: int = 0
    hit_max_new_tokens: int = 0
    empty_outputs: int = 0
    trimmed_prompts: int = 0
    batches: int = 0
    seconds: float = 0.0
    kept_vocab: int = 0  # ids the output layer scored (0: the engine does not say)
    vocab_checks: int = 0  # decode steps checked against the full output layer
    vocab_escapes: int = 0  # rows whose best id under the full layer had been dropped
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0

    def add_engine(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """What an engine's cumulative counters gained during one call."""
        self.kept_vocab = max(self.kept_vocab, int(after.get("kept_vocab", 0)))
        for key in ("vocab_checks", "vocab_escapes", "prefill_seconds", "decode_seconds"):
            setattr(self, key, getattr(self, key) + after.get(key, 0) - before.get(key, 0))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures including dialogues/s and generated tokens/s."""
        s = max(self.seconds, 1e-9)
        return {**dataclasses.asdict(self), "seconds": round(self.seconds, 3),
                "prefill_seconds": round(self.prefill_seconds, 3), "decode_seconds": round(self.decode_seconds, 3),
                "dialogues_per_s": round(self.dialogues / s, 3),
                "generated_tokens_per_s": round(self.generated_tokens / s, 1)}
