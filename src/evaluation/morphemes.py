"""Tokenization before ROUGE: raw whitespace tokens or Kiwi morphemes.

Whitespace tokens punish Korean particles: ``#Person2#는`` and ``#Person2#가`` share no token.
Morphemes split the particle off, so the speaker tag still matches. Speaker tags and masks
(``#Person1#``, ``#PhoneNumber#``, any ``#\\w+#``) are handed to Kiwi as pre-tokenized spans,
so each stays one token and the particle after it is still analysed in context.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from src.patterns import HASH_TOKEN
from src.utils.threads import worker_threads

log = logging.getLogger(__name__)

TOKENIZERS = ("kiwi", "whitespace")

_kiwi: Any = None  # one Kiwi per process: loading its model takes about a second


def as_text(value: Any) -> str:
    """A cell as text: NaN, NA and None become ``""`` so they count as empty."""
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return ""
    return str(value)


def get_kiwi() -> Any:
    """The process-wide Kiwi analyser, created on first use."""
    global _kiwi
    if _kiwi is None:
        from kiwipiepy import Kiwi  # heavy import, only when morphemes are asked for

        started = time.perf_counter()
        # one worker per thread this process may use (src.utils.threads); more than 8 buys nothing here
        _kiwi = Kiwi(num_workers=min(worker_threads(), 8))
        log.info("loaded Kiwi in %.1f s", time.perf_counter() - started)
    return _kiwi


def _mask_spans(text: str) -> list[tuple[int, int, str]]:
    # NNP: a proper noun, so Kiwi reads the following 는/가/에게 as a particle.
    return [(m.start(), m.end(), "NNP") for m in HASH_TOKEN.finditer(text)]


def morpheme_tokens(texts: list[str]) -> list[list[str]]:
    """Kiwi morpheme forms of each text, masks and speaker tags kept whole.

    Texts are deduplicated and analysed in one batched call.
    """
    texts = [as_text(text) for text in texts]
    unique = list(dict.fromkeys(texts))
    analysed = get_kiwi().tokenize(unique, pretokenized=_mask_spans)
    # A form never contains whitespace in practice; splitting guarantees it for the scorer.
    by_text = {
        text: [part for token in tokens for part in token.form.split()]
        for text, tokens in zip(unique, analysed)
    }
    return [by_text[text] for text in texts]


def prepare_texts(texts: list[str], tokenizer: str) -> list[str]:
    """Texts rewritten so that ``rouge`` whitespace semantics score them in ``tokenizer`` units.

    ``whitespace`` returns the texts unchanged; ``kiwi`` joins each text's morphemes with
    single spaces (a ``.`` morpheme still ends a sentence for ROUGE-L).
    """
    if tokenizer == "whitespace":
        return [as_text(text) for text in texts]
    if tokenizer == "kiwi":
        return [" ".join(tokens) for tokens in morpheme_tokens(texts)]
    raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
