"""Scripts generation may not use: ``inference.block_scripts`` becomes ``bad_words_ids`` from the vocabulary.

No DialogSum-ko reference contains CJK ideographs, kana or Cyrillic (checked on the 499 dev
summaries), yet a multilingual model drifts into them now and then; every such token is a certain
ROUGE miss. Each vocabulary entry whose text holds a blocked character becomes a one-token bad word
(the ids are built once per tokenizer and kept for the process).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from src.utils.patterns import script_pattern


@lru_cache(maxsize=8)
def _blocked_ids(tokenizer: Any, scripts: tuple[str, ...]) -> tuple[int, ...]:
    pattern = script_pattern(scripts)
    special = set(tokenizer.all_special_ids)
    found = []
    for token, i in tokenizer.get_vocab().items():
        if i in special:
            continue
        text = tokenizer.convert_tokens_to_string([token])
        if pattern.search(text):
            found.append(i)
    return tuple(sorted(found))


def blocked_token_ids(tokenizer: Any, scripts: tuple[str, ...]) -> tuple[int, ...]:
    """Every vocabulary id whose text holds a character of ``scripts`` (special tokens spared)."""
    return _blocked_ids(tokenizer, tuple(sorted(scripts))) if scripts else ()


def bad_words_ids(tokenizer: Any, scripts: tuple[str, ...]) -> list[list[int]]:
    """``generate(bad_words_ids=...)`` for every vocabulary token holding a character of ``scripts``."""
    return [[i] for i in blocked_token_ids(tokenizer, scripts)]
