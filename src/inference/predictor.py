"""Batched generation with the shared prompt builder: left padding, length-sorted batches, stop at EOS."""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from src.config import Config, InferenceConfig
from src.data.prompt import PromptBuilder, ShotSelector
from src.models.loading import compute_dtype, load_causal_model, load_tokenizer, pick_device

log = logging.getLogger(__name__)

_LEADING_LABEL = re.compile(r"^\s*(요약\s*[:：]|summary\s*[:：]|###\s*response\s*[:：]?)\s*", re.IGNORECASE)
_NEXT_TURN = re.compile(r"\n\s*(###\s|<\|im_start\|>|user\s*:|assistant\s*:)", re.IGNORECASE)


def postprocess(text: str) -> str:
    """Strip, drop a leading label, cut a second turn the model starts, collapse whitespace."""
    text = _NEXT_TURN.split(text, maxsplit=1)[0]
    text = _LEADING_LABEL.sub("", text.strip())
    return re.sub(r"\s+", " ", text).strip()


def fallback_summary(dialogue: str, policy: str) -> str:
    """What replaces an empty output: the first turn of the dialogue, or a fixed placeholder."""
    if policy == "first_turn":
        return re.sub(r"\s+", " ", str(dialogue).split("\n", 1)[0]).strip() or "요약 없음"
    return "요약 없음"


@dataclass
class GenerationStats:
    """Counts and throughput of one prediction call."""

    dialogues: int = 0
    generated_tokens: int = 0
    hit_max_new_tokens: int = 0
    empty_outputs: int = 0
    trimmed_prompts: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures including dialogues/s and generated tokens/s."""
        s = max(self.seconds, 1e-9)
        return {**self.__dict__, "dialogues_per_s": round(self.dialogues / s, 3),
                "generated_tokens_per_s": round(self.generated_tokens / s, 1)}


@dataclass
class Predictor:
    """Generates summaries for dialogues (seed API: predict_single/batch/dataframe, create_submission)."""

    model: Any
    tokenizer: Any
    builder: PromptBuilder
    selector: Optional[ShotSelector]
    gen: InferenceConfig
    device: str
    stats: GenerationStats = field(default_factory=GenerationStats)

    @classmethod
    def from_checkpoint(cls, cfg: Config, checkpoint: Path, pool: Optional[pd.DataFrame]) -> "Predictor":
        """Load an adapter (on its base model) or full weights saved by the train stage."""
        device = pick_device(cfg.model.device)
        dtype = compute_dtype(cfg.training.compute_dtype, device)
        checkpoint = Path(checkpoint)
        tokenizer = load_tokenizer(str(checkpoint), cfg, padding_side="left")
        adapter_cfg = checkpoint / "adapter_config.json"
        if adapter_cfg.is_file():
            from peft import PeftModel

            base = json.loads(adapter_cfg.read_text())["base_model_name_or_path"]
            model = load_causal_model(base, cfg, device, dtype, quantize=cfg.training.use_qlora)
            model = PeftModel.from_pretrained(model, str(checkpoint))
        else:
            model = load_causal_model(str(checkpoint), cfg, device, dtype, quantize=False)
        model.eval()
        selector = ShotSelector(pool, cfg.prompt, cfg.seed) if pool is not None and cfg.prompt.num_fewshot else None
        return cls(model, tokenizer, PromptBuilder(tokenizer, cfg.prompt), selector, cfg.inference, device)

    def predict_single(self, dialogue: str, **overrides: Any) -> str:
        """One summary."""
        return self.predict_batch([dialogue], **overrides)[0]

    def predict_batch(self, dialogues: Sequence[str], fnames: Optional[Sequence[str]] = None,
                      **overrides: Any) -> list[str]:
        """Summaries in input order; prompts are length-sorted and batched under the token budget."""
        gen = replace(self.gen, **overrides)
        fnames = list(fnames) if fnames is not None else [f"__pred_{i}" for i in range(len(dialogues))]
        start = time.perf_counter()
        prompts = [self._encode(d, f) for d, f in zip(dialogues, fnames)]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        outputs: list[str] = [""] * len(prompts)
        for batch in self._batches(order, prompts, gen):
            for i, text in zip(batch, self._generate([prompts[i] for i in batch], gen)):
                outputs[i] = self._finish(text, dialogues[i], gen)
        self.stats.dialogues += len(dialogues)
        self.stats.seconds += time.perf_counter() - start
        return outputs

    def predict_dataframe(self, df: pd.DataFrame, **overrides: Any) -> pd.DataFrame:
        """``fname,summary`` for every row of ``df`` (same order)."""
        summaries = self.predict_batch(df["dialogue"].astype(str).tolist(), df["fname"].astype(str).tolist(), **overrides)
        return pd.DataFrame({"fname": df["fname"].astype(str).tolist(), "summary": summaries})

    def create_submission(self, test_df: pd.DataFrame, path: Path, **overrides: Any) -> Path:
        """Predict ``test_df`` and write a validated ``fname,summary`` CSV atomically."""
        from src.inference.submission import write_submission

        return write_submission(self.predict_dataframe(test_df, **overrides), test_df, path)

    # ------------------------------------------------------------ internals

    def _encode(self, dialogue: str, fname: str) -> list[int]:
        shots = self.selector.select(fname) if self.selector else []
        enc = self.builder.encode_prompt(dialogue, shots)
        self.stats.trimmed_prompts += enc.trimmed
        return enc.input_ids

    def _batches(self, order: list[int], prompts: list[list[int]], gen: InferenceConfig) -> list[list[int]]:
        """Consecutive length-sorted groups of at most batch_size prompts and max_batch_tokens padded tokens."""
        batches: list[list[int]] = []
        for i in order:
            cur = batches[-1] if batches else None
            longest = len(prompts[cur[0]]) if cur else 0  # sorted longest first
            fits = cur is not None and len(cur) < gen.batch_size and (
                not gen.max_batch_tokens or longest * (len(cur) + 1) <= gen.max_batch_tokens)
            if fits:
                cur.append(i)
            else:
                batches.append([i])
        return batches

    def _generate(self, batch: list[list[int]], gen: InferenceConfig) -> list[str]:
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(map(len, batch))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=self.device)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **self._gen_kwargs(gen))
        new = out[:, width:].tolist()
        stops = set(self.builder.stop_token_ids)
        texts = []
        for row in new:
            cut = next((k for k, t in enumerate(row) if t in stops), None)
            self.stats.hit_max_new_tokens += cut is None and len(row) >= gen.max_new_tokens
            row = row[:cut] if cut is not None else [t for t in row if t != pad]
            self.stats.generated_tokens += len(row) + (cut is not None)
            texts.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return texts

    def _gen_kwargs(self, gen: InferenceConfig) -> dict[str, Any]:
        kw: dict[str, Any] = dict(max_new_tokens=gen.max_new_tokens, num_beams=gen.num_beams, do_sample=gen.do_sample,
                                  eos_token_id=self.builder.stop_token_ids, pad_token_id=self.tokenizer.pad_token_id,
                                  repetition_penalty=gen.repetition_penalty)
        if gen.num_beams > 1:
            kw["length_penalty"] = gen.length_penalty
        if gen.no_repeat_ngram_size:
            kw["no_repeat_ngram_size"] = gen.no_repeat_ngram_size
        if gen.do_sample:
            kw.update(temperature=gen.temperature, top_p=gen.top_p)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        return kw

    def _finish(self, text: str, dialogue: str, gen: InferenceConfig) -> str:
        clean = postprocess(text)
        if not clean:
            self.stats.empty_outputs += 1
            clean = fallback_summary(dialogue, gen.empty_fallback)
        return clean
