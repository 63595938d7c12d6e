"""Filters that decide which augmented rows are kept, datatrove style.

Every ``check_*`` returns ``(keep, reason)``: ``(True, "")`` to keep, or ``(False, "<code>:
<detail>")`` to reject, where ``<code>`` is a stable name for counting (see ``reason_code``) and
``<detail>`` says what was wrong in this row. ``validate_paraphrase`` and ``validate_synthetic``
run the checks in a fixed order and return the first rejection. ``NearDupIndex`` finds
near-duplicates (``src.utils.neardup``).

Parsing the LLM's raw output (JSON etc.) is the caller's job; these functions get plain text.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from functools import partial

from src.augment.fluency import check_fluent
from src.utils.neardup import NearDupIndex
from src.utils.patterns import KNOWN_MASKS, MASK, SPEAKER_TAG, TURN, strip_tags_and_masks

Result = tuple[bool, str]
KEEP: Result = (True, "")

NUMBER_RE = re.compile(r"\d+")
LATIN_RE = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
HANGUL_RE = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")

# What an LLM leaks when it does not return just the text: (code detail, regex).
LEAK_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE | re.MULTILINE))
    for name, pattern in (
        ("code fence", r"```"),
        ("markdown bold", r"\*\*|__"),
        ("markdown heading", r"^\s*#{1,6}\s"),
        ("list bullet", r"^\s*(?:[-*•]|\d+[.)])\s"),
        ("label 요약:", r"요약\s*[:：]"),
        ("label 대화:", r"(?:^|\n)\s*(?:대화|대화문|원문|출력|답변|패러프레이즈)\s*[:：]"),
        ("english label", r"\b(?:summary|dialogue|paraphrase|output|answer)\s*:"),
        ("assistant preamble", r"\b(?:here is|here's|as an ai|i'm sorry|sure[,!])"),
        ("korean preamble", r"(?:다음은|아래는)[^\n]{0,20}(?:대화|요약|패러프레이즈)|재작성한|바꾸어 쓴|바꿔 쓴"),
        ("chat template token", r"<\|[^|]*\|>|</?s>|\[/?INST\]|</?think>"),
        ("role label", r"^\s*(?:assistant|user|system)\s*:"),
        ("json braces", r"[{}]"),
    )
)


@dataclass(frozen=True)
class ValidationSettings:
    """Thresholds for ``validate_paraphrase`` / ``validate_synthetic``."""

    min_length_ratio: float = 0.6  # paraphrase chars / original chars, whitespace ignored
    max_length_ratio: float = 1.6  # (tags and masks are not counted)
    min_hangul_ratio: float = 0.5  # words containing Hangul / words with letters
    near_dup_threshold: float = 0.8  # n-gram Jaccard at or above which a text is a near-duplicate
    ngram: int = 3
    ngram_unit: str = "char"  # "char" or "word"
    min_turns: int = 2  # synthetic dialogues: minimum number of turns
    max_summary_ratio: float = 1.0  # synthetic: summary chars / dialogue chars
    min_kiwi_score: float = -5.6  # dialogues: Kiwi log-probability per morpheme (src.augment.fluency); -inf: off
    min_summary_kiwi_score: float = -8.0  # summaries (short texts score lower per morpheme)
    min_sentence_end_share: float = 0.6  # share of turns ending like a sentence

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.min_length_ratio < self.max_length_ratio:
            problems.append("validation: need 0 < min_length_ratio < max_length_ratio.")
        for name in ("min_hangul_ratio", "near_dup_threshold"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"validation: {name} must be in [0, 1].")
        if self.ngram < 1 or self.min_turns < 1 or self.max_summary_ratio <= 0:
            problems.append("validation: ngram, min_turns and max_summary_ratio must be positive.")
        if self.ngram_unit not in ("char", "word"):
            problems.append(f"validation: ngram_unit {self.ngram_unit!r} must be 'char' or 'word'.")
        if problems:
            raise ValueError(" ".join(problems))  # the config keys are checked by src.config.checks

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the settings, for config schemas that mirror this dataclass."""
        return [f.name for f in fields(cls)]


def reason_code(reason: str) -> str:
    """The stable part of a rejection reason (``"masks_changed: ..."`` -> ``"masks_changed"``)."""
    return reason.split(":", 1)[0].strip()


def _set_diff_reason(code: str, expected: set[str], got: set[str]) -> Result:
    """Reject when the two sets differ, naming what is missing and what is extra."""
    missing, extra = sorted(expected - got), sorted(got - expected)
    if not missing and not extra:
        return KEEP
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
        [f"extra {', '.join(extra)}"] if extra else [])
    return False, f"{code}: {'; '.join(parts)}"


def check_tags_preserved(original: str, candidate: str) -> Result:
    """The candidate uses exactly the speaker tags of the original (``#Person1#`` ...)."""
    return _set_diff_reason("tags_changed", set(SPEAKER_TAG.findall(original)), set(SPEAKER_TAG.findall(candidate)))


def check_masks_preserved(original: str, candidate: str) -> Result:
    """The candidate keeps every mask token type of the original and invents none."""
    return _set_diff_reason("masks_changed", set(MASK.findall(original)), set(MASK.findall(candidate)))


def _entities(text: str) -> set[str]:
    """Digit runs (``5,500`` -> ``5500``) and Latin-script words (lower-cased), tags/masks ignored."""
    plain = re.sub(r"(?<=\d),(?=\d{3})", "", strip_tags_and_masks(text))
    return set(NUMBER_RE.findall(plain)) | {w.lower() for w in LATIN_RE.findall(plain)}


def check_entities_preserved(original: str, candidate: str) -> Result:
    """Every number and Latin-script name of the original still appears in the candidate."""
    missing = sorted(_entities(original) - _entities(candidate))
    if missing:
        return False, f"entities_missing: {', '.join(missing[:10])}"
    return KEEP


def check_no_leak(text: str) -> Result:
    """No instructions, labels, markdown or chat-template tokens leaked into the text."""
    for name, pattern in LEAK_PATTERNS:
        match = pattern.search(text)
        if match:
            return False, f"leak: {name} ({match.group(0).strip()!r})"
    return KEEP


def _length(text: str) -> int:
    """Content length: characters without whitespace, speaker tags or masks."""
    return len(re.sub(r"\s+", "", strip_tags_and_masks(text)))


def check_length_ratio(original: str, candidate: str, lo: float = 0.6, hi: float = 1.6) -> Result:
    """Candidate length / original length is within [lo, hi] (see ``_length`` for the unit)."""
    if _length(original) == 0:
        return False, "length_ratio: original is empty"
    ratio = _length(candidate) / _length(original)
    if not lo <= ratio <= hi:
        return False, f"length_ratio: {ratio:.2f} outside [{lo}, {hi}]"
    return KEEP


def hangul_ratio(text: str) -> float:
    """Share of words (whitespace-separated, with a letter) that contain Hangul.

    Counted per word, not per character: one Hangul syllable carries as much as several Latin
    letters, so ``TV를 샀어요`` should not look half foreign. Tags and masks are ignored.
    """
    words = [w for w in strip_tags_and_masks(text).split() if any(ch.isalpha() for ch in w)]
    if not words:
        return 0.0
    return sum(bool(HANGUL_RE.search(w)) for w in words) / len(words)


def check_hangul_ratio(text: str, min_ratio: float = 0.5) -> Result:
    """At least ``min_ratio`` of the words contain Hangul (see ``hangul_ratio``)."""
    ratio = hangul_ratio(text)
    if ratio < min_ratio:
        return False, f"low_hangul: {ratio:.2f} < {min_ratio}"
    return KEEP


def check_dialogue_format(dialogue: str, min_turns: int = 2) -> Result:
    """Every line is a turn ``#PersonN#: text``; at least ``min_turns`` turns and two speakers."""
    lines = [line for line in dialogue.split("\n") if line.strip()]
    turns = [TURN.match(line) for line in lines]
    bad = [i + 1 for i, turn in enumerate(turns) if turn is None]
    if bad:
        return False, f"bad_format: line {bad[0]} is not '#PersonN#: text'"
    if len(lines) < min_turns:
        return False, f"bad_format: {len(lines)} turns < {min_turns}"
    if len({turn.group(1) for turn in turns if turn is not None}) < 2:
        return False, "bad_format: only one speaker"
    return KEEP


def check_summary_grounded(dialogue: str, summary: str) -> Result:
    """The summary names only speaker tags and masks that occur in the dialogue."""
    unknown = sorted(set(SPEAKER_TAG.findall(summary)) - set(SPEAKER_TAG.findall(dialogue)))
    unknown += sorted(set(MASK.findall(summary)) - set(MASK.findall(dialogue)))
    if unknown:
        return False, f"summary_ungrounded: {', '.join(unknown)} not in the dialogue"
    return KEEP


def check_known_masks(text: str, known: frozenset[str] = KNOWN_MASKS) -> Result:
    """Every mask token is one the data uses (a model may invent look-alikes such as ``#liamE#``)."""
    unknown = sorted(set(MASK.findall(text)) - known)
    return (False, f"unknown_mask: {', '.join(unknown)}") if unknown else KEEP


def check_not_near_dup(text: str, index: NearDupIndex | None, threshold: float) -> Result:
    """The text is not a near-duplicate (Jaccard >= threshold) of anything in ``index``."""
    if index is None or len(index) == 0:
        return KEEP
    key, similarity = index.most_similar(text)
    if similarity >= threshold:
        return False, f"near_duplicate: jaccard {similarity:.2f} with {key}"
    return KEEP


def _first_rejection(checks: Iterable[Callable[[], Result]]) -> Result:
    """Run checks in order and return the first rejection, else ``KEEP``.

    Checks are zero-argument callables so the near-duplicate search (the costly one, last)
    only runs for rows that passed everything else.
    """
    for check in checks:
        keep, reason = check()
        if not keep:
            return False, reason
    return KEEP


def validate_paraphrase(
    original: str, candidate: str, index: NearDupIndex | None, settings: ValidationSettings
) -> Result:
    """Decide whether a paraphrased dialogue is kept; returns the first rejection reason.

    ``index`` should hold the train, dev and test dialogues (the parent included: a
    paraphrase that is nearly a copy of its parent adds nothing). ``None`` skips that check.
    """
    if not candidate.strip():
        return False, "empty: no text"
    format_required = check_dialogue_format(original, 1)[0]
    checks = (
        partial(check_no_leak, candidate),
        partial(check_dialogue_format, candidate, 1) if format_required else (lambda: KEEP),
        partial(check_tags_preserved, original, candidate),
        partial(check_masks_preserved, original, candidate),
        partial(check_entities_preserved, original, candidate),
        partial(check_length_ratio, original, candidate, settings.min_length_ratio, settings.max_length_ratio),
        partial(check_hangul_ratio, candidate, settings.min_hangul_ratio),
        partial(check_fluent, candidate, settings.min_kiwi_score, settings.min_sentence_end_share),
        partial(check_not_near_dup, candidate, index, settings.near_dup_threshold),
    )
    return _first_rejection(checks)


def validate_synthetic(
    dialogue: str, summary: str, index: NearDupIndex | None, settings: ValidationSettings
) -> Result:
    """Decide whether a synthetic (dialogue, summary) pair is kept; first rejection reason."""
    if not dialogue.strip() or not summary.strip():
        return False, "empty: dialogue or summary is empty"
    checks = (
        partial(check_no_leak, dialogue),
        partial(check_no_leak, summary),
        partial(check_dialogue_format, dialogue, settings.min_turns),
        partial(check_summary_grounded, dialogue, summary),
        partial(check_known_masks, dialogue),
        partial(check_hangul_ratio, dialogue, settings.min_hangul_ratio),
        partial(check_hangul_ratio, summary, settings.min_hangul_ratio),
        partial(check_length_ratio, dialogue, summary, 0.0, settings.max_summary_ratio),
        partial(check_fluent, dialogue, settings.min_kiwi_score, settings.min_sentence_end_share),
        partial(check_fluent, summary, settings.min_summary_kiwi_score, 0.0, False, "min_summary_kiwi_score"),
        partial(check_not_near_dup, dialogue, index, settings.near_dup_threshold),
    )
    return _first_rejection(checks)


def build_index(
    texts: Iterable[str], keys: Iterable[str] | None = None,
    settings: ValidationSettings = ValidationSettings(),
) -> NearDupIndex:
    """A ``NearDupIndex`` over ``texts`` with the n-gram settings of ``settings``."""
    index = NearDupIndex(ngram=settings.ngram, unit=settings.ngram_unit)
    index.add_many(texts, keys)
    return index
