"""Paid augmentation is never a surprise: how many API requests a run would send, and under which spend cap.

Paraphrase and synthetic requests to an OpenAI-compatible API (``augmentation.backend=api``) cost money
unless the endpoint is this machine (a local vLLM, Ollama or llama.cpp server). Before the first
stage, a run that would send any says how many and which cap applies; ``--dry-run`` prints the same line.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import urlparse

from src.augment.requests import resolve_count
from src.config import AugmentationConfig
from src.utils.secrets import redact_url

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def sends_paid_requests(aug: AugmentationConfig) -> bool:
    """Paraphrases or synthetic dialogues asked of an API endpoint that is not on this machine."""
    host = (urlparse(aug.api.base_url).hostname or "").lower()
    return aug.backend == "api" and (aug.num_paraphrase > 0 or aug.num_synthetic > 0) and host not in LOCAL_HOSTS


def _count(value: float, n_train: Optional[int], what: str) -> str:
    if value <= 0:
        return ""
    if value >= 1 or n_train is not None:
        return f"{resolve_count(value, n_train or 0) if value < 1 else int(value)} {what}"
    return f"{value:g} of the training rows as {what}"


def spend_notice(aug: AugmentationConfig, n_train: Optional[int], key_present: bool) -> Optional[str]:
    """One line: the paid requests this configuration sends and the cap, or None when it sends none."""
    if not sends_paid_requests(aug):
        return None
    parts = [p for p in (_count(aug.num_paraphrase, n_train, "paraphrases"),
                         _count(aug.num_synthetic, n_train, "synthetic dialogues")) if p]
    api = aug.api
    cap = (f"spend cap augmentation.api.max_cost={api.max_cost:g} (estimated at {api.price_input_per_1m:g} in / "
           f"{api.price_output_per_1m:g} out per million tokens)" if api.max_cost > 0
           else "NO spend cap (augmentation.api.max_cost=0)")
    key = "" if key_present else f"; no key in {api.api_key_env} now, so the stage will skip them"
    return (f"augment: up to {' + '.join(parts)} = paid requests to {redact_url(api.base_url)} ({api.model}), {cap}; answers "
            f"already in the journal are not paid again{key}. To send none: --skip-augmentation or "
            "augmentation.num_paraphrase=0 augmentation.num_synthetic=0")
