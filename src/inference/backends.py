"""Which engine generates: decided once per run by ``choose_engine`` and recorded in the manifest as it is.

The four engines are ``continuous`` (slots refilled as sequences finish), ``transformers``
(``model.generate`` on left-padded batches), ``vllm`` (its own environment) and ``seq2seq``
(``model.generate`` on an encoder-decoder). ``inference.backend`` names one for causal models or says
``auto``; for an encoder-decoder only ``auto`` and ``transformers`` apply (``src.config.checks`` refuses the
others before anything runs).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from src.config import InferenceConfig

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class EngineChoice:
    """The engine a run generates with, and why (the manifest's ``engine.choice`` and ``engine.why``)."""

    name: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        """As the manifest records it."""
        return {"choice": self.name, "why": self.why}


def choose_engine(backend: str, model_type: str, device: str) -> EngineChoice:
    """The one decision, from ``inference.backend``, ``model.type`` and the device: seq2seq for an encoder-decoder;
    the named backend; ``auto``: continuous on a CPU (where it was measured), transformers on an accelerator."""
    if model_type == "seq2seq":
        return EngineChoice("seq2seq", f"model.type=seq2seq: model.generate on the encoder-decoder "
                                       f"(inference.backend={backend})")
    if backend != "auto":
        return EngineChoice(backend, f"inference.backend={backend}")
    if device == "cpu":
        return EngineChoice("continuous", "inference.backend=auto on a CPU")
    return EngineChoice("transformers", f"inference.backend=auto on {device}")


def resolve_vocab(gen: InferenceConfig, engine: str, stored: Optional[Sequence[int]]) -> str:
    """``auto``: trimmed for the continuous engine when the checkpoint stores its training ids, else full."""
    if gen.output_vocab != "auto":
        if gen.output_vocab == "trimmed" and not stored:
            log.warning("inference.output_vocab=trimmed but the checkpoint stores no training ids (trained before "
                        "they were recorded, or elsewhere): keeping the prompts' ids and the rule set only")
        return gen.output_vocab
    return "trimmed" if engine == "continuous" and stored else "full"


def make_engine(choice: EngineChoice, gen: InferenceConfig, model: Any, tokenizer: Any, device: str,
                stored: Optional[Sequence[int]] = None) -> Any:
    """The transformers or continuous engine over a loaded model (vLLM is built by ``src.inference.vllm_engine``)."""
    vocab = resolve_vocab(gen, choice.name, stored)
    if choice.name == "continuous":
        from src.inference.continuous import ContinuousEngine

        return ContinuousEngine(model, tokenizer, tokenizer.pad_token_id, slots=gen.slots, output_vocab=vocab,
                                stored_vocab=stored, check_every=gen.vocab_check_every,
                                prefill_tokens=gen.prefill_tokens)
    if choice.name != "transformers":
        raise ValueError(f"make_engine builds the continuous and transformers engines, not {choice.name!r}")
    from src.inference.engine import TransformersEngine

    return TransformersEngine(model, tokenizer.pad_token_id, device, tokenizer=tokenizer, output_vocab=vocab,
                              stored_vocab=stored)


def engine_record(choice: EngineChoice, engine: Any) -> dict[str, Any]:
    """The manifest's ``engine``: the choice as made, and the built engine's output layer and slots."""
    return {**choice.as_dict(), "backend": type(engine).__name__, "output_vocab": getattr(engine, "output_vocab", "full"),
            "slots": getattr(engine, "slots", None)}

