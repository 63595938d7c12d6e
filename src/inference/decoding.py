"""The decoding parameters every engine reads: a small frozen object built from the resolved settings.

Its fields are exactly the inference keys the schema marks ``decides=generation``
(``src.config.deciding.GENERATION_KEYS``); engines take this, never the whole ``InferenceConfig``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any



@dataclass(frozen=True)
class DecodingParams:
    """Search and sampling settings of one generate call (``max_new_tokens`` already a number)."""

    max_new_tokens: int
    num_beams: int = 1
    no_repeat_ngram_size: int = 0
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0

    @classmethod
    def of(cls, gen: Any) -> "DecodingParams":
        """The engine's view of resolved settings (an ``InferenceConfig`` or another ``DecodingParams``)."""
        if gen.max_new_tokens == "auto":
            raise ValueError("inference.max_new_tokens=auto reached an engine unresolved; resolve the settings first "
                             "(src.inference.settings.resolve_settings)")
        return cls(**{f.name: getattr(gen, f.name) for f in fields(cls)})

