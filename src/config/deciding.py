"""Which config keys decide a summary, read from the ``decides`` metadata of the schema's fields (declared once there).

The settings log and ``--dry-run`` list, the manifest's ``settings``, the prediction journals' keys, the
infer and tune stage fingerprints and the training fingerprint's generation part all derive from these.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from src.config.fields import ENGINE, GENERATION, OUTPUT
from src.config.generation import InferenceConfig


def inference_keys(*kinds: str) -> tuple[str, ...]:
    """The inference.* field names whose ``decides`` is one of ``kinds``, in schema order."""
    return tuple(f.name for f in dataclasses.fields(InferenceConfig) if f.metadata.get("decides") in kinds)


GENERATION_KEYS = inference_keys(GENERATION)  # what every engine reads (src.inference.decoding.DecodingParams)
DECIDING_KEYS = inference_keys(GENERATION, OUTPUT)  # everything that changes a summary
MANIFEST_KEYS = inference_keys(GENERATION, OUTPUT, ENGINE)  # what the manifest records (how they were computed too)


def inference_values(gen: InferenceConfig, keys: tuple[str, ...] = DECIDING_KEYS) -> dict[str, Any]:
    """The values of ``keys`` (default: those that decide a summary) as plain data (sections as dicts)."""
    return {k: _plain(getattr(gen, k)) for k in keys}


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value
