"""Near-duplicate search by character (or word) n-gram Jaccard: MinHash signatures, LSH bands, exact re-score.

Used by the validators (an augmented text must not near-copy train, dev or test) and by the merge
stage (leak and duplicate removal). Hashing is deterministic, so results do not depend on
``PYTHONHASHSEED``.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterable

import numpy as np

from src.utils.patterns import SPEAKER_TAG


def normalize_for_shingles(text: str) -> str:
    """Drop speaker tags (shared by every dialogue), lower-case and collapse whitespace."""
    return " ".join(re.sub(SPEAKER_TAG.pattern + ":?", " ", text).lower().split())


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
