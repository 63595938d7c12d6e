"""Generation engines behind one protocol: token-id prompts in, new token ids out.

``TransformersEngine`` runs ``model.generate`` on left-padded batches; ``VllmEngine``
(``src.inference.vllm_engine``) hands the same ids to vLLM. A predictor does the prompting,
batching and decoding, so both engines see exactly the prompts training used.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Protocol, Sequence

from src.inference.decoding import DecodingParams
from src.inference.head import Head, full_size_layer
from src.inference.vocab import kept_ids
from src.utils.errors import UserError

log = logging.getLogger(__name__)


class Engine(Protocol):
    """Generates new token ids for a batch of prompt ids (``chunk_size`` > 0: it batches by itself)."""

    chunk_size: int

    def generate(self, batch: list[list[int]], gen: DecodingParams, stop_ids: list[int],
                 banned: Sequence[int] = ()) -> list[tuple[list[int], bool]]:
        """Per prompt: the new ids before the first stop id, and whether a stop id ended it.

        ``banned`` ids are never generated (``inference.block_scripts``, resolved per call).
        """
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
    tokenizer: Any = None  # needed for output_vocab=trimmed only
    output_vocab: str = "full"  # or "trimmed": the kept-id output layer of src.inference.head, vocabulary-wide rows
    stored_vocab: Optional[Sequence[int]] = None

    def generate(self, batch: list[list[int]], gen: DecodingParams, stop_ids: list[int],
                 banned: Sequence[int] = ()) -> list[tuple[list[int], bool]]:
        """New ids per prompt; on CUDA out-of-memory the batch is halved (greedy outputs do not change)."""
        import torch

        try:
            return self._generate(batch, gen, stop_ids, banned)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise UserError("CUDA out of memory generating a single prompt; lower prompt.max_prompt_tokens or "
                                "inference.max_new_tokens, or set inference.quantize=4bit") from None
            torch.cuda.empty_cache()
            half = len(batch) // 2
            log.warning("CUDA out of memory at %d prompts; retrying as %d + %d (lower inference.batch_size "
                        "or set inference.max_batch_tokens)", len(batch), half, len(batch) - half)
            return self.generate(batch[:half], gen, stop_ids, banned) + self.generate(batch[half:], gen, stop_ids, banned)

    def _generate(self, batch: list[list[int]], gen: DecodingParams, stop_ids: list[int],
                  banned: Sequence[int]) -> list[tuple[list[int], bool]]:
        import torch

        width = max(map(len, batch))
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=self.device)
        trimmed = self.output_vocab == "trimmed"
        bad_words = [] if trimmed else [[i] for i in banned]  # a trimmed layer has no banned id to score
        with torch.inference_mode(), self._output_layer(batch, stop_ids, banned, trimmed):
            out = self.model.generate(input_ids=ids, attention_mask=mask,
                                      **generate_kwargs(gen, stop_ids, self.pad_id, bad_words))
        return [cut_at_stop(row, stop_ids, self.pad_id) for row in out[:, width:].tolist()]

    @contextmanager
    def _output_layer(self, batch: list[list[int]], stop_ids: list[int], banned: Sequence[int],
                      trimmed: bool) -> Iterator[None]:
        """With ``trimmed``: the model's output layer replaced for this call by the kept-id one."""
        target = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if not trimmed or not hasattr(target, "lm_head"):
            yield
            return
        original = target.lm_head
        size = original.weight.shape[0]
        target.lm_head = full_size_layer(Head(self.model, kept_ids(self.tokenizer, size, self.stored_vocab, batch,
                                                                   banned, stop_ids)))
        try:
            yield
        finally:
            target.lm_head = original


def generate_kwargs(gen: DecodingParams, stop_ids: list[int], pad_id: int,
                    bad_words: Optional[list[list[int]]] = None) -> dict[str, Any]:
    """``generate()`` arguments from the inference settings (sampling knobs only when sampling)."""
    kw: dict[str, Any] = dict(max_new_tokens=gen.max_new_tokens, num_beams=gen.num_beams, do_sample=gen.do_sample,
                              eos_token_id=list(stop_ids), pad_token_id=pad_id,
                              repetition_penalty=gen.repetition_penalty)
    if gen.num_beams > 1:
        kw["length_penalty"] = gen.length_penalty
    if gen.no_repeat_ngram_size:
        kw["no_repeat_ngram_size"] = gen.no_repeat_ngram_size
    if bad_words:
        kw["bad_words_ids"] = bad_words
    if gen.do_sample:
        kw.update(temperature=gen.temperature, top_p=gen.top_p, top_k=None)
    else:  # unset the model's own sampling defaults so greedy runs without warnings
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw
