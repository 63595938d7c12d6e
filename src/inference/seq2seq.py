"""Batched generation for encoder-decoder models (the ``seq2seq`` engine), with the same public API as ``Predictor``.

It generates with the settings it is given: ``src.inference.settings.resolve_settings`` has already put the
KoBART baseline's ``seq2seq.*`` defaults, the tune stage's choice and the command line's keys in place.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd

from src.config import Config, InferenceConfig
from src.utils.errors import UserError
from src.inference.batching import (BatchCallback, GenerationStats, checked_settings, length_batches, new_token_cap,
                                    predict_frame,
                                    run_batches)
from src.inference.backends import EngineChoice, choose_engine
from src.inference.constraints import bad_words_ids
from src.inference.decoding import DecodingParams
from src.inference.postprocess import fallback_summary, postprocess
from src.models.device import compute_dtype, pick_device
from src.inference.submission import write_submission
from src.models.seq2seq import decode_summary, encode_source, load_seq2seq

log = logging.getLogger(__name__)


@dataclass
class Seq2SeqPredictor:
    """Generates summaries with an encoder-decoder (predict_single/batch/dataframe, create_submission)."""

    model: Any
    tokenizer: Any
    gen: InferenceConfig
    encoder_max_len: int
    early_stopping: bool
    device: str
    stats: GenerationStats = field(default_factory=GenerationStats)
    choice: EngineChoice = EngineChoice("seq2seq", "model.type=seq2seq")
    engine: Optional[Any] = None  # model.generate is the engine

    @classmethod
    def from_checkpoint(cls, cfg: Config, checkpoint: Path, pool: Optional[pd.DataFrame] = None,
                        record: Optional[dict[str, Any]] = None,
                        choice: Optional[EngineChoice] = None) -> "Seq2SeqPredictor":
        """Load a model folder saved by the train stage, generating with ``cfg.inference`` as given (resolved settings;
        ``pool`` and ``record`` are unused: no few-shot prompts or stored ids here)."""
        checkpoint = Path(checkpoint)
        if not (checkpoint / "config.json").is_file():
            raise UserError(f"{checkpoint}: no config.json; point inference.checkpoint at a seq2seq model folder "
                            "(e.g. model/<run>/final_checkpoint) or run the train stage")
        import torch

        gen = cfg.inference
        if gen.max_new_tokens == "auto":  # called directly with unresolved settings
            gen = replace(gen, max_new_tokens=cfg.seq2seq.generation_max_length)
        device = pick_device(cfg.model.device)
        dtype = compute_dtype(cfg.training.compute_dtype, device)
        if cfg.model.torch_dtype != "auto":
            dtype = getattr(torch, cfg.model.torch_dtype)
        model, tokenizer = load_seq2seq(str(checkpoint), cfg, device, dtype, cfg.model.special_tokens)
        model.eval()
        log.info("seq2seq generation: max_length %d, num_beams %d, no_repeat_ngram_size %d, early_stopping %s",
                 gen.max_new_tokens, gen.num_beams, gen.no_repeat_ngram_size, cfg.seq2seq.early_stopping)
        return cls(model, tokenizer, gen, cfg.seq2seq.encoder_max_len, cfg.seq2seq.early_stopping, device,
                   choice=choice or choose_engine(gen.backend, "seq2seq", device))

    def predict_single(self, dialogue: str, **overrides: Any) -> str:
        """One summary."""
        return self.predict_batch([dialogue], **overrides)[0]

    def predict_batch(self, dialogues: Sequence[str], fnames: Optional[Sequence[str]] = None,
                      on_batch: Optional[BatchCallback] = None, **overrides: Any) -> list[str]:
        """Summaries in input order; ``on_batch(indices, summaries)`` runs as each batch finishes.

        ``fnames`` is accepted for parity with ``Predictor`` (no few-shot examples to pick here).
        """
        gen = self._settings(overrides)
        start = time.perf_counter()
        sources = [self._encode(d) for d in dialogues]
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
        widths = [len(s) + new_token_cap(gen) for s in sources]  # encoder tokens + decoder cap
        outputs = run_batches(length_batches(order, widths, gen.batch_size, gen.max_batch_tokens), len(sources),
                              lambda batch: self._generate([sources[i] for i in batch], gen),
                              lambda i, text: self._finish(text, dialogues[i], gen), self.stats, on_batch)
        self.stats.dialogues += len(dialogues)
        self.stats.seconds += time.perf_counter() - start
        return outputs

    def predict_dataframe(self, df: pd.DataFrame, on_batch: Optional[Callable[[list[str], list[str]], None]] = None,
                          **overrides: Any) -> pd.DataFrame:
        """``fname,summary`` for every row of ``df`` (same order); ``on_batch(fnames, summaries)`` per batch."""
        return predict_frame(self.predict_batch, df, on_batch, overrides)

    def create_submission(self, test_df: pd.DataFrame, path: Path, **overrides: Any) -> Path:
        """Predict ``test_df`` and write a validated ``fname,summary`` CSV atomically."""
        return write_submission(self.predict_dataframe(test_df, **overrides), test_df, path)

    # ------------------------------------------------------------ internals

    def _settings(self, overrides: dict[str, Any]) -> InferenceConfig:
        return checked_settings(self.gen, overrides)

    def _encode(self, dialogue: str) -> list[int]:
        ids, cut = encode_source(self.tokenizer, dialogue, self.encoder_max_len)
        self.stats.trimmed_prompts += cut
        return ids

    def _generate(self, batch: list[list[int]], gen: InferenceConfig) -> list[str]:
        import torch

        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        width = max(map(len, batch))
        ids = torch.tensor([p + [pad] * (width - len(p)) for p in batch], device=self.device)
        mask = torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in batch], device=self.device)
        with torch.inference_mode():
            blocked = bad_words_ids(self.tokenizer, gen.block_scripts)
            out = self.model.generate(input_ids=ids, attention_mask=mask, pad_token_id=pad,
                                      **seq2seq_generate_kwargs(DecodingParams.of(gen), self.early_stopping),
                                      **({"bad_words_ids": blocked} if blocked else {}))
        texts = []
        for row in out[:, 1:].tolist():  # position 0 is the decoder start token
            cut = next((k for k, t in enumerate(row) if t == eos), None)
            used = 1 + (cut + 1 if cut is not None else len(row))  # BART forces </s> at the cap, so count the length
            self.stats.hit_max_new_tokens += used >= new_token_cap(gen)
            row = row[:cut] if cut is not None else [t for t in row if t != pad]
            self.stats.generated_tokens += len(row) + (cut is not None)
            texts.append(decode_summary(self.tokenizer, row))
        return texts

    def _finish(self, text: str, dialogue: str, gen: InferenceConfig) -> str:
        clean = postprocess(text, gen.cut_unfinished)
        if not clean:
            self.stats.empty_outputs += 1
            clean = fallback_summary(dialogue, gen.empty_fallback)
        return clean


def seq2seq_generate_kwargs(gen: DecodingParams, early_stopping: bool) -> dict[str, Any]:
    """``generate()`` arguments; the length cap is ``max_length`` (decoder start token included), as in the baseline."""
    kw: dict[str, Any] = dict(max_length=gen.max_new_tokens, num_beams=gen.num_beams, do_sample=gen.do_sample,
                              no_repeat_ngram_size=gen.no_repeat_ngram_size, repetition_penalty=gen.repetition_penalty,
                              length_penalty=gen.length_penalty, early_stopping=early_stopping and gen.num_beams > 1)
    if gen.do_sample:
        kw.update(temperature=gen.temperature, top_p=gen.top_p)
    return kw
