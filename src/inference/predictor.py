"""Batched generation with the shared prompt builder: left padding, length-sorted batches, stop at EOS.

A ``Predictor`` turns dialogues into prompt ids with ``PromptBuilder`` (the same ids training used),
hands length-sorted batches to an engine (``src.inference.engine``), decodes only the new tokens,
post-processes them (``src.inference.postprocess``) and returns the summaries in input order.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd

from src.config import Config, InferenceConfig
from src.inference.batching import (BatchCallback, GenerationStats, checked_settings, length_batches, new_token_cap,
                                    predict_frame, run_batches)
from src.inference.backends import EngineChoice, choose_engine, make_engine
from src.inference.constraints import blocked_token_ids
from src.inference.decoding import DecodingParams
from src.inference.engine import Engine
from src.inference.postprocess import fallback_summary, postprocess
from src.inference.submission import write_submission
from src.inference.settings import resolve_max_new_tokens
from src.models.checkpoint import check_checkpoint, read_inference_info
from src.models.device import pick_device
from src.models.loading import load_inference_model, load_tokenizer
from src.prompting.builder import PromptBuilder
from src.prompting.fewshot import ShotSelector, ShotSource

log = logging.getLogger(__name__)


@dataclass
class Predictor:
    """Generates summaries for dialogues (seed API: predict_single/batch/dataframe, create_submission)."""

    model: Any
    tokenizer: Any
    builder: PromptBuilder
    selector: Optional[ShotSource]
    gen: InferenceConfig
    device: str
    stats: GenerationStats = field(default_factory=GenerationStats)
    engine: Optional[Engine] = None

    stored_vocab: Optional[Sequence[int]] = None  # the training data's ids, recorded with the checkpoint
    choice: Optional[EngineChoice] = None  # which engine (src.inference.backends.choose_engine)

    def __post_init__(self) -> None:
        if self.gen.max_new_tokens == "auto":  # built directly, without resolved settings: the default cap
            self.gen = resolve_max_new_tokens(self.gen, {})
        if self.engine is None:
            choice = self.choice or choose_engine(self.gen.backend, "causal", self.device)
            if choice.name == "vllm":  # vLLM loads its own weights; a model in memory (the ROUGE callback) cannot
                choice = EngineChoice("transformers", "inference.backend=vllm loads its own weights: a model already "
                                                      "in memory generates with transformers")
            self.choice = choice
            self.engine = make_engine(self.choice, self.gen, self.model, self.tokenizer, self.device, self.stored_vocab)

    @property
    def backend(self) -> Engine:
        """The engine (set in ``__post_init__``: the given one, else the chosen one on ``model``)."""
        assert self.engine is not None
        return self.engine

    @classmethod
    def from_checkpoint(cls, cfg: Config, checkpoint: Path, pool: Optional[pd.DataFrame],
                        record: Optional[dict[str, Any]] = None, choice: Optional[EngineChoice] = None) -> "Predictor":
        """Load an adapter (on its base model) or full weights saved by the train stage, on the chosen engine.

        The pipeline passes resolved settings (``cfg``), the checkpoint's ``record`` and the engine ``choice``
        (``src.inference.factory.load_predictor``); called directly, the record is read here and ``auto`` capped.
        """
        check_checkpoint(Path(checkpoint))
        if record is None:
            record = read_inference_info(Path(checkpoint))
            cfg = replace(cfg, inference=resolve_max_new_tokens(cfg.inference, record))
        device = pick_device(cfg.model.device)
        choice = choice or choose_engine(cfg.inference.backend, cfg.model.type, device)
        tokenizer = load_tokenizer(str(checkpoint), cfg, padding_side="left")
        selector = ShotSelector(pool, cfg.prompt, cfg.seed) if pool is not None and cfg.prompt.num_fewshot else None
        builder = PromptBuilder(tokenizer, cfg.prompt)
        if choice.name == "vllm":
            from src.inference.vllm_engine import load_vllm_engine

            return cls(None, tokenizer, builder, selector, cfg.inference, device,
                       engine=load_vllm_engine(cfg, checkpoint, device), choice=choice)
        model = load_inference_model(cfg, Path(checkpoint), device)
        return cls(model, tokenizer, builder, selector, cfg.inference, device, stored_vocab=record.get("output_vocab"),
                   choice=choice)

    def predict_single(self, dialogue: str, **overrides: Any) -> str:
        """One summary."""
        return self.predict_batch([dialogue], **overrides)[0]

    def predict_batch(self, dialogues: Sequence[str], fnames: Optional[Sequence[str]] = None,
                      on_batch: Optional[BatchCallback] = None, **overrides: Any) -> list[str]:
        """Summaries in input order; ``on_batch(indices, summaries)`` runs as each batch finishes."""
        gen = self._settings(overrides)
        decoding = DecodingParams.of(gen)
        fnames = list(fnames) if fnames is not None else [f"__pred_{i}" for i in range(len(dialogues))]
        start = time.perf_counter()
        prompts = [self._encode(str(d), f) for d, f in zip(dialogues, fnames)]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        stop_ids = self.builder.stop_token_ids
        banned = blocked_token_ids(self.tokenizer, gen.block_scripts)  # per call: overrides may change it
        before = dict(getattr(self.backend, "counts", {}))
        outputs = run_batches(
            self._batches(order, prompts, gen), len(prompts),
            lambda batch: self.backend.generate([prompts[i] for i in batch], decoding, stop_ids, banned),
            lambda i, result: self._finish(result[0], result[1], str(dialogues[i]), fnames[i], gen),
            self.stats, on_batch)
        self.stats.add_engine(before, getattr(self.backend, "counts", {}))
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

    def _encode(self, dialogue: str, fname: str) -> list[int]:
        shots = self.selector.select(fname, dialogue) if self.selector else []
        enc = self.builder.encode_prompt(dialogue, shots)
        self.stats.trimmed_prompts += enc.trimmed
        return enc.input_ids

    def _batches(self, order: list[int], prompts: list[list[int]], gen: InferenceConfig) -> list[list[int]]:
        """Consecutive length-sorted groups under batch_size and max_batch_tokens (an engine may ask for chunks)."""
        chunk = self.backend.chunk_size
        if chunk:
            return [order[k:k + chunk] for k in range(0, len(order), chunk)]
        # the KV cache holds the new tokens too, so a prompt's width is its length + max_new_tokens
        widths = [len(p) + new_token_cap(gen) for p in prompts]
        return length_batches(order, widths, gen.batch_size, gen.max_batch_tokens)

    def _finish(self, ids: list[int], stopped: bool, dialogue: str, fname: str, gen: InferenceConfig) -> str:
        self.stats.generated_tokens += len(ids) + stopped
        if not stopped and len(ids) >= new_token_cap(gen):
            self.stats.hit_max_new_tokens += 1
            log.debug("%s: output reached inference.max_new_tokens=%d", fname, gen.max_new_tokens)
        clean = postprocess(self.tokenizer.decode(ids, skip_special_tokens=True), gen.cut_unfinished)
        if not clean:
            self.stats.empty_outputs += 1
            clean = fallback_summary(dialogue, gen.empty_fallback)
            log.debug("%s: empty output replaced per inference.empty_fallback=%s", fname, gen.empty_fallback)
        return clean
