"""Filters that decide which augmented rows are kept, datatrove style.

Every ``check_*`` returns ``(keep, reason)``: ``(True, "")`` to keep, or ``(False, "<code>:
<detail>")`` to reject, where ``<code>`` is a stable name for counting (see ``reason_code``) and
``<detail>`` says what was wrong in this row. ``validate_paraphrase`` and ``validate_synthetic``
run the checks in a fixed order and return the first rejection. ``NearDupIndex`` finds
near-duplicates by n-gram Jaccard with MinHash/LSH candidate search and exact re-scoring.

Parsing the LLM's raw output (JSON etc.) is the caller's job; these functions get plain text.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from functools import partial

import numpy as np

from src.errors import UserError

Result = tuple[bool, str]
KEEP: Result = (True, "")

TAG_RE = re.compile(r"#Person\d+#")
MASK_RE = re.compile(r"#[A-Za-z]+#")  # no digits, so speaker tags never match
TURN_RE = re.compile(r"^(#Person\d+#): \S")
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
            raise UserError(*problems)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the settings, for config schemas that mirror this dataclass."""
        return [f.name for f in fields(cls)]


def reason_code(reason: str) -> str:
    """The stable part of a rejection reason (``"masks_changed: ..."`` -> ``"masks_changed"``)."""
    return reason.split(":", 1)[0].strip()


def _strip_tags_masks(text: str) -> str:
    return MASK_RE.sub(" ", TAG_RE.sub(" ", text))


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
    return _set_diff_reason("tags_changed", set(TAG_RE.findall(original)), set(TAG_RE.findall(candidate)))


def check_masks_preserved(original: str, candidate: str) -> Result:
    """The candidate keeps every mask token type of the original and invents none."""
    return _set_diff_reason("masks_changed", set(MASK_RE.findall(original)), set(MASK_RE.findall(candidate)))


def _entities(text: str) -> set[str]:
    """Digit runs (``5,500`` -> ``5500``) and Latin-script words (lower-cased), tags/masks ignored."""
    plain = re.sub(r"(?<=\d),(?=\d{3})", "", _strip_tags_masks(text))
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
    return len(re.sub(r"\s+", "", _strip_tags_masks(text)))


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
    words = [w for w in _strip_tags_masks(text).split() if any(ch.isalpha() for ch in w)]
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
    bad = [i + 1 for i, line in enumerate(lines) if not TURN_RE.match(line)]
    if bad:
        return False, f"bad_format: line {bad[0]} is not '#PersonN#: text'"
    if len(lines) < min_turns:
        return False, f"bad_format: {len(lines)} turns < {min_turns}"
    if len({TURN_RE.match(line).group(1) for line in lines}) < 2:
        return False, "bad_format: only one speaker"
    return KEEP


def check_summary_grounded(dialogue: str, summary: str) -> Result:
    """The summary names only speaker tags and masks that occur in the dialogue."""
    unknown = sorted(set(TAG_RE.findall(summary)) - set(TAG_RE.findall(dialogue)))
    unknown += sorted(set(MASK_RE.findall(summary)) - set(MASK_RE.findall(dialogue)))
    if unknown:
        return False, f"summary_ungrounded: {', '.join(unknown)} not in the dialogue"
    return KEEP


# the masks the competition data uses; a synthetic dialogue may only use these
KNOWN_MASKS = frozenset({"#PhoneNumber#", "#Address#", "#DateAndTime#", "#PersonName#", "#Email#", "#CarNumber#",
                         "#PassportNumber#", "#SSN#", "#CardNumber#", "#DateOfBirth#"})


def check_known_masks(text: str, known: frozenset[str] = KNOWN_MASKS) -> Result:
    """Every mask token is one the data uses (a model may invent look-alikes such as ``#liamE#``)."""
    unknown = sorted(set(MASK_RE.findall(text)) - known)
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


def normalize_for_shingles(text: str) -> str:
    """Drop speaker tags (shared by every dialogue), lower-case and collapse whitespace."""
    return " ".join(re.sub(r"#Person\d+#:?", " ", text).lower().split())


def shingles(text: str, n: int = 3, unit: str = "char") -> np.ndarray:
    """Sorted unique 32-bit hashes of the ``n``-gram shingles of ``text`` (chars or words).

    Hashing is a deterministic polynomial over code points (or crc32 of words), so results do
    not depend on ``PYTHONHASHSEED``. A text shorter than ``n`` units is one shingle.
    """
    norm = normalize_for_shingles(text)
    if unit == "word":
        units = np.array([zlib.crc32(w.encode()) for w in norm.split()], dtype=np.uint64)
    else:
        units = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if units.size == 0:
        return np.empty(0, dtype=np.uint32)
    width = min(n, units.size)
    count = units.size - width + 1
    hashed = np.zeros(count, dtype=np.uint64)
    for k in range(width):  # uint64 arithmetic wraps mod 2**64, which is what we want here
        hashed = hashed * np.uint64(1_000_003) + units[k:k + count]
    mixed = (hashed ^ (hashed >> np.uint64(29))) * np.uint64(0xBF58476D1CE4E5B9)
    return np.unique((mixed >> np.uint64(32)).astype(np.uint32))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique shingle arrays."""
    if a.size == 0 or b.size == 0:
        return 0.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


class NearDupIndex:
    """Near-duplicate search by n-gram Jaccard over many texts (MinHash + LSH, exact re-score).

    Texts are shingled (``shingles``), MinHash signatures of ``num_perm`` values are split into
    ``bands`` LSH bands, and texts sharing any band bucket with a query are re-scored with the
    exact Jaccard. With the defaults (32 bands of 4 rows) a pair with Jaccard 0.5 becomes a
    candidate with probability 0.87, 0.6 -> 0.985, 0.8 -> 1.0; similarities well below 0.5 may
    be reported as 0.0, which is fine for thresholds >= 0.6.
    """

    def __init__(self, ngram: int = 3, unit: str = "char", num_perm: int = 128,
                 bands: int = 32, seed: int = 0) -> None:
        if num_perm % bands:
            raise ValueError("num_perm must be a multiple of bands")
        self.ngram, self.unit, self.bands = ngram, unit, bands
        self.rows = num_perm // bands
        rng = np.random.default_rng(seed)
        # Multiply-shift hashing ((a*x + b) mod 2**64) >> 32 with odd a: a universal family
        # that needs no modulo, which made signatures ~10x faster than the mod-prime form.
        self._a = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self._b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
        self._keys: list[str] = []
        self._shingles: list[np.ndarray] = []
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]

    def __len__(self) -> int:
        return len(self._keys)

    def _signatures(self, sets: list[np.ndarray]) -> np.ndarray:
        """MinHash signatures (uint32), one row per shingle set; empty sets get all-max rows."""
        sizes = np.array([s.size for s in sets], dtype=np.int64)
        out = np.full((len(sets), self._a.size), np.iinfo(np.uint32).max, dtype=np.uint32)
        nonempty = np.flatnonzero(sizes)
        if nonempty.size == 0:
            return out
        flat = np.concatenate([sets[i] for i in nonempty]).astype(np.uint64)
        starts = np.concatenate(([0], np.cumsum(sizes[nonempty])[:-1]))
        shift = np.uint64(32)
        # One permutation at a time over all shingles: cache-friendly and memory-light,
        # much faster than a (shingles x permutations) matrix.
        for i, (a, b) in enumerate(zip(self._a, self._b)):
            hashed = ((flat * a + b) >> shift).astype(np.uint32)
            out[nonempty, i] = np.minimum.reduceat(hashed, starts)
        return out

    def _band_keys(self, signature: np.ndarray) -> list[bytes]:
        return [signature[i * self.rows:(i + 1) * self.rows].tobytes() for i in range(self.bands)]

    def add(self, key: str, text: str) -> None:
        """Index one text under ``key`` (keys need not be unique; they are only reported)."""
        self.add_many([text], [key])

    def add_many(self, texts: Iterable[str], keys: Iterable[str] | None = None,
                 chunk: int = 4096) -> NearDupIndex:
        """Index many texts (keys default to their running position); returns ``self``."""
        texts = list(texts)
        if keys is None:
            keys = [str(len(self) + i) for i in range(len(texts))]
        keys = [str(k) for k in keys]
        if len(keys) != len(texts):
            raise ValueError("keys and texts differ in length")
        for start in range(0, len(texts), chunk):  # chunks bound the (shingles x perms) matrix
            sets = [shingles(t, self.ngram, self.unit) for t in texts[start:start + chunk]]
            for offset, signature in enumerate(self._signatures(sets)):
                self._insert(keys[start + offset], sets[offset], signature)
        return self

    def _insert(self, key: str, shingle_set: np.ndarray, signature: np.ndarray) -> None:
        doc = len(self._keys)
        self._keys.append(key)
        self._shingles.append(shingle_set)
        if shingle_set.size == 0:
            return  # an empty text is similar to nothing
        for band, bucket_key in zip(self._buckets, self._band_keys(signature)):
            band.setdefault(bucket_key, []).append(doc)

    def _candidates(self, signature: np.ndarray) -> set[int]:
        found: set[int] = set()
        for band, bucket_key in zip(self._buckets, self._band_keys(signature)):
            found.update(band.get(bucket_key, ()))
        return found

    def _score(self, query: np.ndarray, signature: np.ndarray,
               threshold: float) -> list[tuple[str, float]]:
        """Exact Jaccard of ``query`` against its LSH candidates, best first, >= threshold."""
        if query.size == 0:
            return []
        scored = ((self._keys[d], jaccard(query, self._shingles[d])) for d in self._candidates(signature))
        return sorted((hit for hit in scored if hit[1] >= threshold), key=lambda h: (-h[1], h[0]))

    def query(self, text: str, threshold: float) -> list[tuple[str, float]]:
        """``(key, jaccard)`` of indexed texts with Jaccard >= ``threshold``, most similar first."""
        return self.query_many([text], threshold)[0]

    def query_many(self, texts: Iterable[str], threshold: float,
                   chunk: int = 4096) -> list[list[tuple[str, float]]]:
        """``query`` for many texts at once (signatures are computed in vectorised chunks)."""
        texts, results = list(texts), []
        for start in range(0, len(texts), chunk):
            sets = [shingles(t, self.ngram, self.unit) for t in texts[start:start + chunk]]
            for query, signature in zip(sets, self._signatures(sets)):
                results.append(self._score(query, signature, threshold))
        return results

    def add_distinct(self, texts: Iterable[str], keys: Iterable[str],
                     threshold: float) -> list[tuple[str | None, float]]:
        """Add each text unless it is a near-duplicate (>= ``threshold``) of one already indexed.

        Texts are processed in order, so a later text is also compared with earlier texts of
        the same call. Returns, per text, ``(matched key, jaccard)`` when it was skipped or
        ``(None, best jaccard)`` when it was added. Deterministic for the same inputs.
        """
        texts, keys = list(texts), [str(k) for k in keys]
        sets = [shingles(t, self.ngram, self.unit) for t in texts]
        results: list[tuple[str | None, float]] = []
        for query, signature, key in zip(sets, self._signatures(sets), keys):
            hits = self._score(query, signature, 0.0)
            if hits and hits[0][1] >= threshold:
                results.append(hits[0])
                continue
            results.append((None, hits[0][1] if hits else 0.0))
            self._insert(key, query, signature)
        return results

    def most_similar(self, text: str) -> tuple[str | None, float]:
        """The key and Jaccard of the most similar indexed text (``(None, 0.0)`` if none found)."""
        hits = self.query(text, 0.0)
        return hits[0] if hits else (None, 0.0)

    def max_similarity_many(self, texts: Iterable[str]) -> list[float]:
        """``max_similarity`` for many texts; much faster than calling it in a loop."""
        return [hits[0][1] if hits else 0.0 for hits in self.query_many(texts, 0.0)]

    def max_similarity(self, text: str) -> float:
        """Highest Jaccard between ``text`` and any indexed text (0.0 when no LSH candidate)."""
        return self.most_similar(text)[1]

    def is_near_dup(self, text: str, threshold: float) -> bool:
        """True when some indexed text has Jaccard >= ``threshold`` with ``text``."""
        return self.max_similarity(text) >= threshold
