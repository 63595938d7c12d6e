"""Defensive parsing of LLM replies: code fences, prose around the answer, JSON wrappers, escaped newlines.

``parse_paraphrase`` returns the dialogue of a paraphrase reply; ``parse_synthetic`` the
(dialogue, summary) of a synthetic reply. Both return None when nothing usable is there; judging
whether the text is good is the validators' job.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from src.utils.patterns import TAG_COLON

_FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)


def strip_fences(text: str) -> str:
    """The inside of the first Markdown code fence, or ``text`` unchanged."""
    match = _FENCE.search(text)
    return match.group(1).strip() if match else text.strip()


def _unescape_newlines(text: str) -> str:
    # Models sometimes emit the two characters '\' 'n' instead of a line break.
    if "\n" not in text.strip() and "\\n" in text:
        return text.replace("\\r\\n", "\n").replace("\\n", "\n")
    return text


def normalize_dialogue(text: str) -> str:
    """One turn per line as '#PersonN#: text'; blank lines and tag decoration removed."""
    lines = []
    for raw in _unescape_newlines(text).splitlines():
        line = TAG_COLON.sub(lambda m: f"{m.group(1)}: ", raw.strip().strip('"').strip(), count=1)
        if line:
            lines.append(line.rstrip())
    return "\n".join(lines)


def _turn_block(lines: list[str]) -> list[str]:
    """From the first tagged line through the last one, dropping prose before and after."""
    tagged = [i for i, line in enumerate(lines) if TAG_COLON.match(line.strip())]
    if not tagged:
        return lines
    return lines[tagged[0]:tagged[-1] + 1]


def parse_paraphrase(text: Optional[str]) -> Optional[str]:
    """The dialogue in a paraphrase reply (fences, prose, JSON wrappers, escaped newlines handled)."""
    if not text or not text.strip():
        return None
    body = strip_fences(text)
    if body.lstrip().startswith("{"):
        obj = _json_object(body)
        body = _dialogue_text(_pick(obj, _DIALOGUE_KEYS)) if obj else body
    lines = _unescape_newlines(body).splitlines()
    dialogue = normalize_dialogue("\n".join(_turn_block(lines)))
    return dialogue or None


_DIALOGUE_KEYS = ("dialogue", "dialog", "conversation", "대화")
_SUMMARY_KEYS = ("summary", "요약")
_SPEAKER_KEYS = ("speaker", "role", "name", "person", "화자")
_TEXT_KEYS = ("text", "utterance", "content", "message", "line", "발화")
_LOOSE_SPEAKER = re.compile(r"^#?\s*person\s*(\d+)\s*#?$", re.IGNORECASE)


def _pick(obj: dict, keys: tuple[str, ...]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    return next((lowered[k] for k in keys if k in lowered), None)


def _json_object(text: str) -> Optional[dict]:
    """The JSON object in ``text`` (after fences and leading prose), repaired if it has trailing commas."""
    import ast

    body = strip_fences(text)
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end <= start:
        return None
    candidate = body[start:end + 1]
    for attempt in (candidate, re.sub(r",\s*([}\]])", r"\1", candidate)):
        try:
            obj = json.loads(attempt, strict=False)  # strict=False: raw newlines inside strings
        except json.JSONDecodeError:
            continue
        return obj if isinstance(obj, dict) else None
    try:  # a Python-style dict with single quotes
        obj = ast.literal_eval(candidate)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _speaker_tag(speaker: Any) -> str:
    text = str(speaker).strip()
    match = _LOOSE_SPEAKER.match(text) or (re.fullmatch(r"(\d+)", text))
    return f"#Person{match.group(1)}#" if match else text


def _turn_text(turn: Any) -> str:
    if isinstance(turn, dict):
        speaker, said = _pick(turn, _SPEAKER_KEYS), _pick(turn, _TEXT_KEYS)
        if said is None and len(turn) == 1:  # {"#Person1#": "..."}
            speaker, said = next(iter(turn.items()))
        return f"{_speaker_tag(speaker)}: {said}" if speaker is not None else str(said or "")
    if isinstance(turn, (list, tuple)) and len(turn) == 2:
        return f"{_speaker_tag(turn[0])}: {turn[1]}"
    return str(turn)


def _dialogue_text(value: Any) -> str:
    """A dialogue given as a string, a list of turns, or an object holding a list of turns."""
    if isinstance(value, dict):
        value = _pick(value, ("turns", "utterances", "lines", *_DIALOGUE_KEYS)) or list(value.values())
    if isinstance(value, (list, tuple)):
        value = "\n".join(_turn_text(t) for t in value)
    return normalize_dialogue(str(value)) if value is not None else ""


def parse_synthetic(text: Optional[str]) -> Optional[tuple[str, str]]:
    """(dialogue, summary) from a synthetic reply, or None when either is missing or empty."""
    if not text or not text.strip():
        return None
    obj = _json_object(text)
    if obj is None:
        return None
    dialogue = _dialogue_text(_pick(obj, _DIALOGUE_KEYS))
    summary = _pick(obj, _SUMMARY_KEYS)
    if isinstance(summary, (list, tuple)):
        summary = " ".join(map(str, summary))
    summary = " ".join(_unescape_newlines(str(summary or "")).split())
    return (dialogue, summary) if dialogue and summary else None
