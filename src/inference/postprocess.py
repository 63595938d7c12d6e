"""Post-processing of generated summaries: cut a second turn, drop a leading label, tidy whitespace,
and (``inference.cut_unfinished``) drop a last sentence the length cap cut off mid-way.

The model sometimes goes on after its summary (a new prompt header, a chat role, a dialogue line)
or opens with a label (``요약:``); neither belongs in the submission. Every DialogSum-ko reference
ends its sentences with a full stop, so a trailing fragment without one is a sentence cut by
``inference.max_new_tokens`` and scores worse than nothing. An empty result is replaced per
``inference.empty_fallback``.
"""
from __future__ import annotations

import re

from src.utils.patterns import SPEAKER_TAG

_LEADING_LABEL = re.compile(r"^\s*(?:\*\*)?\s*(?:요약|summary|###\s*response)\s*[:：](?:\*\*)?\s*"
                            r"|^\s*###\s*response\s*", re.IGNORECASE)
# a second turn the model starts: a new prompt header, a chat role, a dialogue line, another label
_NEXT_TURN = re.compile(r"\n\s*(?:###\s|<\|im_start\|>|(?:user|assistant|human|system)\s*:|" + SPEAKER_TAG.pattern + r"\s*:"
                        r"|(?:요약|summary)\s*[:：])", re.IGNORECASE)
PLACEHOLDER = "요약 없음"
_SENTENCE_END = re.compile(r"[.!?。](?=\s|$)")


def postprocess(text: str, cut_unfinished: bool = False) -> str:
    """Cut a second turn, strip, drop a leading label, collapse whitespace; speaker tags stay as written."""
    text = _NEXT_TURN.split(text, maxsplit=1)[0]
    text = _LEADING_LABEL.sub("", text.strip(), count=1)
    text = re.sub(r"\s+", " ", text).strip()
    return drop_unfinished(text) if cut_unfinished else text


def drop_unfinished(text: str) -> str:
    """``text`` up to its last sentence end, when something unfinished follows it (a lone fragment stays)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends or ends[-1] == len(text):
        return text
    return text[: ends[-1]].strip()


def fallback_summary(dialogue: str, policy: str) -> str:
    """What replaces an empty output: the first turn of the dialogue, or a fixed placeholder."""
    if policy == "first_turn":
        return re.sub(r"\s+", " ", str(dialogue).strip().split("\n", 1)[0]).strip() or PLACEHOLDER
    return PLACEHOLDER
