"""Few-shot selection: which training examples go into a prompt (fixed, random, or similar by BM25).

``ShotSelector`` never shows an example itself, its augmented copies (same ``parent_fname``) or a
dev/test row. ``similar`` ranks the pool by BM25 over Kiwi morphemes of the dialogues; the index
is built once per training pool and kept for the life of the process (training, the ROUGE
evaluation during training and the infer stage of the same run share it). Scoring is an inverted
index with ``numpy.bincount``, so a query costs one pass over the postings of its terms.
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Protocol, Sequence

import numpy as np
import pandas as pd

from src.config import PromptConfig
from src.evaluation.morphemes import morpheme_tokens
from src.prompting.builder import Shot

log = logging.getLogger(__name__)

K1, B = 1.5, 0.75  # the usual BM25 constants (Robertson & Zaragoza)
_CACHE: dict[str, "SimilarPool"] = {}


def morphemes(texts: Sequence[str]) -> list[list[str]]:
    """Kiwi morphemes of each text (speaker tags and masks kept whole), punctuation dropped."""
    return [[t for t in tokens if any(c.isalnum() for c in t)] for tokens in morpheme_tokens(list(texts))]


def pool_key(dialogues: Sequence[str]) -> str:
    """A fingerprint of the pool's dialogues: the same pool reuses the same index."""
    digest = hashlib.sha256()
    for text in dialogues:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass
class Bm25Index:
    """Okapi BM25 over a fixed pool of tokenized documents."""

    vocab: dict[str, int]
    offsets: np.ndarray  # postings of term t are post_doc/post_weight[offsets[t]:offsets[t + 1]]
    post_doc: np.ndarray
    post_weight: np.ndarray
    n_docs: int

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]]) -> "Bm25Index":
        """Index ``docs`` (lists of tokens); weights fold idf and length normalisation in."""
        vocab: dict[str, int] = {}
        ids = [np.array([vocab.setdefault(t, len(vocab)) for t in doc], dtype=np.int64) for doc in docs]
        lengths = np.array([len(d) for d in ids], dtype=np.float64)
        avgdl = max(float(lengths.mean()) if len(ids) else 0.0, 1.0)
        terms, docs_of, tfs = [], [], []
        for d, doc_ids in enumerate(ids):
            uniq, counts = np.unique(doc_ids, return_counts=True)
            terms.append(uniq)
            docs_of.append(np.full(len(uniq), d, dtype=np.int64))
            tfs.append(counts.astype(np.float64))
        term = np.concatenate(terms) if terms else np.zeros(0, np.int64)
        doc = np.concatenate(docs_of) if docs_of else np.zeros(0, np.int64)
        tf = np.concatenate(tfs) if tfs else np.zeros(0)
        df = np.bincount(term, minlength=len(vocab)).astype(np.float64)
        idf = np.log1p((len(ids) - df + 0.5) / (df + 0.5))
        weight = idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[doc] / avgdl))
        order = np.argsort(term, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(term, minlength=len(vocab)))])
        return cls(vocab, offsets, doc[order], weight[order], len(ids))

    def scores(self, tokens: Iterable[str]) -> np.ndarray:
        """BM25 score of every document for a query (each distinct query term counted once)."""
        terms = sorted({self.vocab[t] for t in tokens if t in self.vocab})
        if not terms:
            return np.zeros(self.n_docs)
        spans = [slice(self.offsets[t], self.offsets[t + 1]) for t in terms]
        docs = np.concatenate([self.post_doc[s] for s in spans])
        weights = np.concatenate([self.post_weight[s] for s in spans])
        return np.bincount(docs, weights=weights, minlength=self.n_docs)

    def top(self, tokens: Iterable[str], k: int, exclude: Iterable[int] = ()) -> list[int]:
        """Indices of the ``k`` best documents, best first; ties go to the earlier document."""
        scores = self.scores(tokens)
        banned = list(exclude)
        if banned:
            scores[banned] = -np.inf
        k = min(k, self.n_docs - len(set(banned)))
        if k <= 0:
            return []
        kth = np.partition(scores, self.n_docs - k)[self.n_docs - k]  # the k-th best score
        cand = np.flatnonzero(scores >= kth)
        # lexsort's last key is primary: score descending, then index ascending (deterministic ties)
        return [int(i) for i in cand[np.lexsort((cand, -scores[cand]))][:k]]


@dataclass
class SimilarPool:
    """A pool's BM25 index and the morphemes of each pool dialogue (queries from the pool reuse them)."""

    index: Bm25Index
    tokens: list[list[str]]


def similar_pool(dialogues: Sequence[str]) -> SimilarPool:
    """The index of a pool of dialogues: built on first use, then taken from the process cache."""
    key = pool_key(dialogues)
    if key not in _CACHE:
        start = time.perf_counter()
        tokens = morphemes(dialogues)
        _CACHE[key] = SimilarPool(Bm25Index.build(tokens), tokens)
        log.info("few-shot index: BM25 over Kiwi morphemes of %d dialogues (%d terms) built in %.1fs",
                 len(dialogues), len(_CACHE[key].index.vocab), time.perf_counter() - start)
    return _CACHE[key]


class ShotSource(Protocol):
    """Anything that picks few-shot examples for a prompt (``ShotSelector``, or a view of one)."""

    def select(self, fname: Optional[str] = None, dialogue: Optional[str] = None) -> list[Shot]:
        """The shots for the example ``fname`` with this ``dialogue``."""
        ...


class ShotSelector:
    """Picks few-shot examples from the training pool; never the example itself, never dev/test.

    "Itself" covers its augmented copies too: pool rows sharing a ``parent_fname`` (paraphrases,
    speaker swaps) or the same dialogue text are one family, and a prompt never shows its family.
    """

    def __init__(self, pool: pd.DataFrame, cfg: PromptConfig, seed: int) -> None:
        self.cfg, self.seed = cfg, seed
        pool = pool.reset_index(drop=True)
        self.fnames = pool["fname"].astype(str).tolist()
        self.shots: list[Shot] = list(zip(pool["dialogue"].astype(str), pool["summary"].astype(str)))
        parents = pool["parent_fname"].fillna("").astype(str) if "parent_fname" in pool.columns else None
        self.family = [p or f for p, f in zip(parents, self.fnames)] if parents is not None else list(self.fnames)
        self.row_of = {f: i for i, f in enumerate(self.fnames)}
        self.family_rows: dict[str, set[int]] = {}
        self.dialogue_rows: dict[str, set[int]] = {}
        for i, (fam, (dialogue, _)) in enumerate(zip(self.family, self.shots)):
            self.family_rows.setdefault(fam, set()).add(i)
            self.dialogue_rows.setdefault(dialogue, set()).add(i)
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        # fixed exemplars: short enough to fit whole, the same for every prompt (train and inference)
        self.fixed = [i for i in order if len(self.shots[i][0]) <= cfg.few_shot_max_chars] or order
        self._similar: Any = None

    def select(self, fname: Optional[str] = None, dialogue: Optional[str] = None) -> list[Shot]:
        """``prompt.num_fewshot`` shots for the example ``fname`` (deterministic per seed and fname).

        ``similar`` ranks the pool by BM25 against ``dialogue`` (needed unless ``fname`` is a pool row).
        """
        n = self.cfg.num_fewshot
        if n == 0 or not self.shots:
            return []
        banned = self._family_rows(fname, dialogue)
        if self.cfg.fewshot_selection == "random":
            digest = hashlib.sha256(f"{self.seed}:{fname}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            picks = rng.sample(range(len(self.shots)), min(n + len(banned), len(self.shots)))
        elif self.cfg.fewshot_selection == "similar":
            picks = self._similar_rows(fname, dialogue, n, banned)
        else:
            picks = self.fixed[: n + len(banned)]
        return [self.shots[i] for i in picks if i not in banned][:n]

    def _family_rows(self, fname: Optional[str], dialogue: Optional[str]) -> set[int]:
        """Pool rows that are the example itself: same fname, same family, same dialogue."""
        row = self.row_of.get(str(fname)) if fname is not None else None
        family = self.family[row] if row is not None else str(fname)
        banned = set(self.family_rows.get(family, ())) | ({row} if row is not None else set())
        if dialogue is not None:
            banned |= self.dialogue_rows.get(dialogue, set())
        return banned

    def _similar_rows(self, fname: Optional[str], dialogue: Optional[str], n: int, banned: set[int]) -> list[int]:
        if self._similar is None:
            self._similar = similar_pool([d for d, _ in self.shots])
        row = self.row_of.get(str(fname)) if fname is not None else None
        if row is not None and (dialogue is None or dialogue == self.shots[row][0]):
            tokens = self._similar.tokens[row]
        elif dialogue is not None:
            tokens = morphemes([dialogue])[0]
        else:
            raise ValueError(f"prompt.fewshot_selection=similar needs the dialogue of {fname!r}: "
                             "call select(fname, dialogue)")
        return self._similar.index.top(tokens, n, banned)
