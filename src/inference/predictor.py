"""Batched generation with the shared prompt builder: left padding, length-sorted batches, stop at EOS.

A ``Predictor`` turns dialogues into prompt ids with ``PromptBuilder`` (the same ids training used),
hands length-sorted batches to an engine (``TransformersEngine`` here, ``VllmEngine`` in
``vllm_backend``), decodes only the new tokens, post-processes them and returns the summaries
in input order.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import pandas as pd

from src.config import Config, InferenceConfig
from src.data.prompt import PromptBuilder, ShotSelector
from src.errors import UserError
from src.models.loading import compute_dtype, load_causal_model, load_tokenizer, pick_device

log = logging.getLogger(__name__)

_LEADING_LABEL = re.compile(r"^\s*(?:\*\*)?\s*(?:요약|summary|###\s*response)\s*[:：](?:\*\*)?\s*"
                            r"|^\s*###\s*response\s*", re.IGNORECASE)
# a second turn the model starts: a new prompt header, a chat role, a dialogue line, another label
_NEXT_TURN = re.compile(r"\n\s*(?:###\s|<\|im_start\|>|(?:user|assistant|human|system)\s*:|#Person\d+#\s*:"
                        r"|(?:요약|summary)\s*[:：])", re.IGNORECASE)
PLACEHOLDER = "요약 없음"

BatchCallback = Callable[[list[int], list[str]], None]


def postprocess(text: str) -> str:
    """Cut a second turn, strip, drop a leading label, collapse whitespace; speaker tags stay as written."""
    text = _NEXT_TURN.split(text, maxsplit=1)[0]
    text = _LEADING_LABEL.sub("", text.strip(), count=1)
    return re.sub(r"\s+", " ", text).strip()


def fallback_summary(dialogue: str, policy: str) -> str:
    """What replaces an empty output: the first turn of the dialogue, or a fixed placeholder."""
    if policy == "first_turn":
        return re.sub(r"\s+", " ", str(dialogue).strip().split("\n", 1)[0]).strip() or PLACEHOLDER
    return PLACEHOLDER


def check_generation(gen: InferenceConfig) -> list[str]:
    """Generation settings that cannot work, one line each naming the ``inference.*`` key."""
    problems = [f"config key 'inference.{k}' = {getattr(gen, k)}: must be >= {low}"
                for k, low in (("batch_size", 1), ("max_new_tokens", 1), ("num_beams", 1),
                               ("max_batch_tokens", 0), ("no_repeat_ngram_size", 0)) if getattr(gen, k) < low]
    if not 0 < gen.top_p <= 1:
        problems.append(f"config key 'inference.top_p' = {gen.top_p}: must be in (0, 1]")
    if gen.do_sample and gen.temperature <= 0:
        problems.append(f"config key 'inference.temperature' = {gen.temperature}: must be > 0 when do_sample is true "
                        "(or set inference.do_sample=false for greedy)")
    if gen.repetition_penalty <= 0:
        problems.append(f"config key 'inference.repetition_penalty' = {gen.repetition_penalty}: must be > 0")
    return problems


def checked_settings(gen: InferenceConfig, overrides: dict[str, Any]) -> InferenceConfig:
    """``gen`` with per-call overrides applied; unknown names or bad values raise ValueError."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(InferenceConfig)})
    if unknown:
        raise ValueError(f"unknown generation setting(s) {unknown}; use InferenceConfig fields, e.g. num_beams")
    gen = replace(gen, **overrides)
    problems = check_generation(gen)
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
        if fits:
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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures including dialogues/s and generated tokens/s."""
        s = max(self.seconds, 1e-9)
        return {**dataclasses.asdict(self), "seconds": round(self.seconds, 3),
                "dialogues_per_s": round(self.dialogues / s, 3),
                "generated_tokens_per_s": round(self.generated_tokens / s, 1)}


class Engine(Protocol):
    """Generates new token ids for a batch of prompt ids (``chunk_size`` > 0: it batches by itself)."""

    chunk_size: int

    def generate(self, batch: list[list[int]], gen: InferenceConfig, stop_ids: list[int]) -> list[tuple[list[int], bool]]:
        """Per prompt: the new ids before the first stop id, and whether a stop id ended it."""
        ...


def cut_at_stop(row: Sequence[int], stop_ids: Sequence[int], pad_id: Optional[int]) -> tuple[list[int], bool]:
    """The ids before the first stop id and True, or the ids without padding and False."""
    stops = set(stop_ids)
    for k, t in enumerate(row):
        if t in stops:
            return list(row[:k]), True
    return [t for t in row if t != pad_id], False


@dataclass
class TransformersEngine:
    """``model.generate`` on left-padded batches (position ids follow the attention mask)."""

    model: Any
    pad_id: int
    device: str
    chunk_size: int = 0

    def generate(self, batch: list[list[int]], gen: InferenceConfig, stop_ids: list[int]) -> list[tuple[list[int], bool]]:
        """New ids per prompt; on CUDA out-of-memory the batch is halved (greedy outputs do not change)."""
        import torch

        try:
            return self._generate(batch, gen, stop_ids)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise UserError("CUDA out of memory generating a single prompt; lower prompt.max_prompt_tokens or "
                                "inference.max_new_tokens, or set inference.quantize=4bit") from None
            torch.cuda.empty_cache()
            half = len(batch) // 2
            log.warning("CUDA out of memory at %d prompts; retrying as %d + %d (lower inference.batch_size "
                        "or set inference.max_batch_tokens)", len(batch), half, len(batch) - half)
            return self.generate(batch[:half], gen, stop_ids) + self.generate(batch[half:], gen, stop_ids)

    def _generate(self, batch: list[list[int]], gen: InferenceConfig, stop_ids: list[int]) -> list[tuple[list[int], bool]]:
        import torch

        width = max(map(len, batch))
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=self.device)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **generate_kwargs(gen, stop_ids, self.pad_id))
        return [cut_at_stop(row, stop_ids, self.pad_id) for row in out[:, width:].tolist()]


def generate_kwargs(gen: InferenceConfig, stop_ids: list[int], pad_id: int) -> dict[str, Any]:
    """``generate()`` arguments from the inference settings (sampling knobs only when sampling)."""
    kw: dict[str, Any] = dict(max_new_tokens=gen.max_new_tokens, num_beams=gen.num_beams, do_sample=gen.do_sample,
                              eos_token_id=list(stop_ids), pad_token_id=pad_id,
                              repetition_penalty=gen.repetition_penalty)
    if gen.num_beams > 1:
        kw["length_penalty"] = gen.length_penalty
    if gen.no_repeat_ngram_size:
        kw["no_repeat_ngram_size"] = gen.no_repeat_ngram_size
    if gen.do_sample:
        kw.update(temperature=gen.temperature, top_p=gen.top_p, top_k=None)
    else:  # unset the model's own sampling defaults so greedy runs without warnings
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw


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
    engine: Optional[Engine] = None

    def __post_init__(self) -> None:
        if self.engine is None:
            self.engine = TransformersEngine(self.model, self.tokenizer.pad_token_id, self.device)

    @classmethod
    def from_checkpoint(cls, cfg: Config, checkpoint: Path, pool: Optional[pd.DataFrame]) -> "Predictor":
        """Load an adapter (on its base model) or full weights saved by the train stage, on the configured backend."""
        problems = check_generation(cfg.inference)
        if problems:
            raise UserError(*problems)
        check_checkpoint(Path(checkpoint))
        device = pick_device(cfg.model.device)
        tokenizer = load_tokenizer(str(checkpoint), cfg, padding_side="left")
        selector = ShotSelector(pool, cfg.prompt, cfg.seed) if pool is not None and cfg.prompt.num_fewshot else None
        builder = PromptBuilder(tokenizer, cfg.prompt)
        if cfg.inference.backend == "vllm":
            from src.inference.vllm_backend import load_vllm_engine

            return cls(None, tokenizer, builder, selector, cfg.inference, "cuda", engine=load_vllm_engine(cfg, checkpoint))
        model = load_inference_model(cfg, Path(checkpoint), device)
        return cls(model, tokenizer, builder, selector, cfg.inference, device)

    def predict_single(self, dialogue: str, **overrides: Any) -> str:
        """One summary."""
        return self.predict_batch([dialogue], **overrides)[0]

    def predict_batch(self, dialogues: Sequence[str], fnames: Optional[Sequence[str]] = None,
                      on_batch: Optional[BatchCallback] = None, **overrides: Any) -> list[str]:
        """Summaries in input order; ``on_batch(indices, summaries)`` runs as each batch finishes."""
        gen = self._settings(overrides)
        fnames = list(fnames) if fnames is not None else [f"__pred_{i}" for i in range(len(dialogues))]
        start = time.perf_counter()
        prompts = [self._encode(str(d), f) for d, f in zip(dialogues, fnames)]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        stop_ids = self.builder.stop_token_ids
        outputs = run_batches(
            self._batches(order, prompts, gen), len(prompts),
            lambda batch: self.engine.generate([prompts[i] for i in batch], gen, stop_ids),
            lambda i, result: self._finish(result[0], result[1], str(dialogues[i]), fnames[i], gen),
            self.stats, on_batch)
        self.stats.dialogues += len(dialogues)
        self.stats.seconds += time.perf_counter() - start
        return outputs

    def predict_dataframe(self, df: pd.DataFrame, on_batch: Optional[Callable[[list[str], list[str]], None]] = None,
                          **overrides: Any) -> pd.DataFrame:
        """``fname,summary`` for every row of ``df`` (same order); ``on_batch(fnames, summaries)`` per batch."""
        return predict_frame(self.predict_batch, df, on_batch, overrides)

    def create_submission(self, test_df: pd.DataFrame, path: Path, **overrides: Any) -> Path:
        """Predict ``test_df`` and write a validated ``fname,summary`` CSV atomically."""
        from src.inference.submission import write_submission

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
        if self.engine.chunk_size:
            return [order[k:k + self.engine.chunk_size] for k in range(0, len(order), self.engine.chunk_size)]
        # the KV cache holds the new tokens too, so a prompt's width is its length + max_new_tokens
        widths = [len(p) + gen.max_new_tokens for p in prompts]
        return length_batches(order, widths, gen.batch_size, gen.max_batch_tokens)

    def _finish(self, ids: list[int], stopped: bool, dialogue: str, fname: str, gen: InferenceConfig) -> str:
        self.stats.generated_tokens += len(ids) + stopped
        if not stopped and len(ids) >= gen.max_new_tokens:
            self.stats.hit_max_new_tokens += 1
            log.debug("%s: output reached inference.max_new_tokens=%d", fname, gen.max_new_tokens)
        clean = postprocess(self.tokenizer.decode(ids, skip_special_tokens=True))
        if not clean:
            self.stats.empty_outputs += 1
            clean = fallback_summary(dialogue, gen.empty_fallback)
            log.debug("%s: empty output replaced per inference.empty_fallback=%s", fname, gen.empty_fallback)
        return clean


# ---------------------------------------------------------------- loading


def read_adapter_config(checkpoint: Path) -> Optional[dict[str, Any]]:
    """The PEFT adapter config of ``checkpoint``, or None for full weights."""
    path = Path(checkpoint) / "adapter_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_checkpoint(checkpoint: Path) -> None:
    """Fail clearly unless ``checkpoint`` holds an adapter or full model weights."""
    if not checkpoint.is_dir():
        raise UserError(f"inference checkpoint {checkpoint} does not exist; train first, or set inference.checkpoint "
                        "to a final_checkpoint/ or checkpoint-N/ folder")
    if not (checkpoint / "adapter_config.json").is_file() and not (checkpoint / "config.json").is_file():
        raise UserError(f"inference checkpoint {checkpoint} has neither adapter_config.json nor config.json; "
                        "point inference.checkpoint at a final_checkpoint/, checkpoint-N/ or final_merged/ folder")


def wants_4bit(cfg: Config, is_adapter: bool) -> bool:
    """4-bit base: as trained for an adapter under ``inference.quantize=auto``; forced by ``4bit``."""
    if cfg.inference.quantize == "auto":
        return is_adapter and cfg.training.use_qlora and cfg.training.quantization != "none"
    return cfg.inference.quantize == "4bit"


def load_inference_model(cfg: Config, checkpoint: Path, device: str) -> Any:
    """Full weights, or the adapter on its base (4-bit or the compute dtype), merged when unquantized."""
    adapter = read_adapter_config(checkpoint)
    dtype = compute_dtype(cfg.training.compute_dtype, device)
    quantize = wants_4bit(cfg, adapter is not None)
    # load_causal_model quantizes per training.*: make it follow inference.quantize instead
    training = replace(cfg.training, use_qlora=quantize,
                       quantization=cfg.training.quantization if cfg.training.quantization != "none" else "nf4")
    load_cfg = replace(cfg, training=training)
    if adapter is None:
        model = load_causal_model(str(checkpoint), load_cfg, device, dtype, quantize=quantize)
    else:
        model = _load_adapter(load_cfg, checkpoint, adapter, device, dtype, quantize)
    model.eval()
    kind = "full weights" if adapter is None else "adapter on a 4-bit base" if quantize else (
        "adapter merged into the base" if cfg.inference.merge_lora else "adapter on the base")
    log.info("inference model: %s (%s)", checkpoint, kind)
    return model


def _load_adapter(cfg: Config, checkpoint: Path, adapter: dict[str, Any], device: str, dtype: Any, quantize: bool) -> Any:
    from peft import PeftModel

    base = adapter.get("base_model_name_or_path") or cfg.model.name
    if base.startswith(("/", ".")) and not Path(base).is_dir():
        raise UserError(f"{checkpoint / 'adapter_config.json'}: base model folder {base} does not exist; "
                        "restore it or edit base_model_name_or_path to where the base model now lives")
    model = PeftModel.from_pretrained(load_causal_model(base, cfg, device, dtype, quantize=quantize), str(checkpoint))
    if not quantize and cfg.inference.merge_lora:
        model = model.merge_and_unload()  # one matmul per layer instead of base + A·B
    return model
