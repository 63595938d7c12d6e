"""Which engine generates: ``inference.backend`` and ``inference.output_vocab`` resolved for this machine."""
from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

from src.config import InferenceConfig

log = logging.getLogger(__name__)


def resolve_backend(gen: InferenceConfig, device: str) -> str:
    """``auto``: the continuous engine on a CPU (where it was measured), transformers on an accelerator."""
    if gen.backend != "auto":
        return gen.backend
    return "continuous" if device == "cpu" else "transformers"


def resolve_vocab(gen: InferenceConfig, backend: str, stored: Optional[Sequence[int]]) -> str:
    """``auto``: trimmed for the continuous engine when the checkpoint stores its training ids, else full."""
    if gen.output_vocab != "auto":
        if gen.output_vocab == "trimmed" and not stored:
            log.warning("inference.output_vocab=trimmed but the checkpoint stores no training ids (trained before "
                        "they were recorded, or elsewhere): keeping the prompts' ids and the rule set only")
        return gen.output_vocab
    return "trimmed" if backend == "continuous" and stored else "full"


def make_engine(gen: InferenceConfig, model: Any, tokenizer: Any, device: str,
                stored: Optional[Sequence[int]] = None) -> Any:
    """The transformers or continuous engine over a loaded model (vLLM is built by ``src.inference.vllm_engine``)."""
    backend = resolve_backend(gen, device)
    vocab = resolve_vocab(gen, backend, stored)
    if backend == "continuous":
        from src.inference.continuous import ContinuousEngine

        return ContinuousEngine(model, tokenizer, tokenizer.pad_token_id, slots=gen.slots, output_vocab=vocab,
                                stored_vocab=stored, check_every=gen.vocab_check_every,
                                prefill_tokens=gen.prefill_tokens)
    from src.inference.engine import TransformersEngine

    return TransformersEngine(model, tokenizer.pad_token_id, device, tokenizer=tokenizer, output_vocab=vocab,
                              stored_vocab=stored)
