"""Scripts generation may not use: ``inference.block_scripts`` becomes ``bad_words_ids`` from the vocabulary.

No DialogSum-ko reference contains CJK ideographs, kana or Cyrillic (checked on the 499 dev
summaries), yet a multilingual model drifts into them now and then; every such token is a certain
ROUGE miss. Each vocabulary entry whose text holds a blocked character becomes a one-token bad word
(the ids are built once per tokenizer and kept for the process).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

SCRIPTS = {
    "han": r"\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "kana": r"\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "cyrillic": r"\u0400-\u052f",
}


def script_pattern(scripts: tuple[str, ...]) -> re.Pattern[str]:
    """A character class matching any character of ``scripts``."""
    return re.compile("[" + "".join(SCRIPTS[s] for s in scripts) + "]")


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
