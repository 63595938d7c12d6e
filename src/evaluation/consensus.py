"""Consensus selection for MBR decoding and ensembles: per pool, the candidate most like the rest.

The utility of candidate ``i`` against candidate ``j`` is the weighted mean of ROUGE-1/2/L F1
with ``i`` as hypothesis and ``j`` as reference, on the chosen tokenizer, with exactly the
scorer's semantics (``rouge_compat``; ROUGE-L is the package's union LCS, not an
approximation). A candidate's score is its mean utility against the *other* candidates of its
pool; the highest wins and ties go to the earliest candidate (a blank candidate wins only an
all-blank pool, see ``consensus_picks``).

Speed: each distinct text is tokenised once; ROUGE-1/2 are set intersections of token ids;
ROUGE-L's LCS back-traces run batched in numpy (``lcs_batch``), once per distinct
(reference sentence, hypothesis sentence) pair.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from src.evaluation.lcs_batch import lcs_token_sets
from src.evaluation.morphemes import DEFAULT_TOKENIZER, TOKENIZERS, as_text, prepare_texts
from src.evaluation.rouge_compat import _f1, split_sentences

Weights = tuple[float, float, float]
DEFAULT_WEIGHTS: Weights = (1.0, 1.0, 1.0)


def check_weights(weights: Sequence[Any]) -> Weights:
    """``weights`` as three floats; ValueError unless 3 finite non-negative numbers with a positive sum."""
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise ValueError(f"weights {list(weights)!r} are not numbers") from None
    if len(values) != 3:
        raise ValueError(f"expected 3 weights (ROUGE-1, ROUGE-2, ROUGE-L), got {len(values)}")
    if not all(math.isfinite(w) and w >= 0 for w in values) or sum(values) <= 0:
        raise ValueError(f"weights {list(values)} must be finite, non-negative and sum to more than 0")
    return values  # type: ignore[return-value]


@dataclass
class TokenisedTexts:
    """Distinct texts as token ids, with what ROUGE needs precomputed once per text."""

    index: dict[str, int] = field(default_factory=dict)  # text -> text id
    unigrams: list[frozenset[int]] = field(default_factory=list)
    bigrams: list[frozenset[int]] = field(default_factory=list)  # (first id << 32) | second id
    sentences: list[list[int]] = field(default_factory=list)  # text id -> its sentence ids
    sentence_tokens: list[tuple[int, ...]] = field(default_factory=list)  # sentence id -> token ids

    @classmethod
    def build(cls, texts: Sequence[Any], tokenizer: str) -> "TokenisedTexts":
        """Tokenise each distinct text of ``texts`` once (one batched call to the tokenizer)."""
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
        unique = list(dict.fromkeys(as_text(text) for text in texts))
        vocab: dict[str, int] = {}
        sentence_ids: dict[tuple[int, ...], int] = {}
        out = cls()
        for text, prepared in zip(unique, prepare_texts(unique, tokenizer)):
            # The package's rules: sentences at ".", words by split(" ") (a blank sentence is "").
            sentences = [tuple(vocab.setdefault(w, len(vocab)) for w in s.split(" ")) for s in split_sentences(prepared)]
            words = [w for s in sentences for w in s]
            out.index[text] = len(out.unigrams)
            out.unigrams.append(frozenset(words))
            out.bigrams.append(frozenset((a << 32) | b for a, b in zip(words, words[1:])))
            out.sentences.append([sentence_ids.setdefault(s, len(sentence_ids)) for s in sentences])
        out.sentence_tokens = list(sentence_ids)
        return out

    def ids(self, texts: Sequence[Any]) -> list[int]:
        """Text ids of ``texts`` (each must have been in the texts given to ``build``)."""
        return [self.index[as_text(text)] for text in texts]


def _rouge_n(tok: TokenisedTexts, hyp: int, ref: int) -> tuple[float, float]:
    h1, r1, h2, r2 = tok.unigrams[hyp], tok.unigrams[ref], tok.bigrams[hyp], tok.bigrams[ref]
    return _f1(len(h1 & r1), len(h1), len(r1)), _f1(len(h2 & r2), len(h2), len(r2))


def pair_scores(tok: TokenisedTexts, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """(ROUGE-1, ROUGE-2, ROUGE-L) F1 of each (hypothesis id, reference id) pair, shape (pairs, 3).

    Equal, bit for bit, to ``rouge_compat.rouge_f1`` on the prepared texts; a side without a
    sentence scores 0 as there.
    """
    scores = np.zeros((len(pairs), 3))
    sentence_pairs: dict[int, int] = {}  # (ref sentence id << 32) | hyp sentence id -> LCS slot
    needs_lcs: list[tuple[int, list[int]]] = []
    for k, (hyp, ref) in enumerate(pairs):
        if not tok.sentences[hyp] or not tok.sentences[ref]:
            continue  # the package raises here; the scorer reads it as 0
        scores[k, 0], scores[k, 1] = _rouge_n(tok, hyp, ref)
        if hyp == ref:
            # Every sentence is its own LCS, so the union is every token: no table needed.
            count = len(tok.unigrams[hyp])
            scores[k, 2] = _f1(count, count, count)
            continue
        hyp_sentences = tok.sentences[hyp]
        slots = [sentence_pairs.setdefault((r << 32) | h, len(sentence_pairs))
                 for r in tok.sentences[ref] for h in hyp_sentences]
        needs_lcs.append((k, slots))
    mask = (1 << 32) - 1
    traced = lcs_token_sets([(tok.sentence_tokens[key >> 32], tok.sentence_tokens[key & mask])
                             for key in sentence_pairs])
    for k, slots in needs_lcs:
        hyp, ref = pairs[k]
        union = frozenset().union(*(traced[slot] for slot in slots))
        scores[k, 2] = _f1(len(union), len(tok.unigrams[hyp]), len(tok.unigrams[ref]))
    return scores


def pairwise_f1(pairs: Sequence[tuple[Any, Any]], tokenizer: str = DEFAULT_TOKENIZER) -> np.ndarray:
    """(ROUGE-1, ROUGE-2, ROUGE-L) F1 of (hypothesis, reference) text pairs, shape (pairs, 3)."""
    tok = TokenisedTexts.build([text for pair in pairs for text in pair], tokenizer)
    return pair_scores(tok, [(tok.index[as_text(h)], tok.index[as_text(r)]) for h, r in pairs])


def _consensus(
    pools: Sequence[Sequence[Any]], tokenizer: str, weights: Sequence[float]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Mean utilities per pool and, per candidate, whether it has any sentence to score."""
    checked = check_weights(weights)
    w = np.asarray(checked) / sum(checked)
    if any(len(pool) == 0 for pool in pools):
        empty = [str(k) for k, pool in enumerate(pools) if len(pool) == 0]
        raise ValueError(f"pool(s) {', '.join(empty[:10])} have no candidate")
    tok = TokenisedTexts.build([text for pool in pools for text in pool], tokenizer)
    pool_ids = [tok.ids(pool) for pool in pools]
    # Every ordered pair of distinct positions, deduplicated by text ids across all pools.
    listed = list({(a, b) for ids in pool_ids for x, a in enumerate(ids) for y, b in enumerate(ids) if x != y})
    slot = {pair: k for k, pair in enumerate(listed)}
    utility = pair_scores(tok, listed) @ w if listed else np.zeros(0)
    means = []
    for ids in pool_ids:
        size = len(ids)
        if size == 1:
            means.append(np.zeros(1))
            continue
        matrix = np.array([[utility[slot[a, b]] if x != y else 0.0 for y, b in enumerate(ids)]
                           for x, a in enumerate(ids)])
        # Sorting each row first makes equal candidates sum to bit-identical means, so a tie
        # is a tie (and goes to the earliest) regardless of where the duplicates sit.
        means.append(np.sort(matrix, axis=1).sum(axis=1) / (size - 1))
    scorable = [np.array([bool(tok.sentences[i]) for i in ids]) for ids in pool_ids]
    return means, scorable


def consensus_scores(
    pools: Sequence[Sequence[Any]], tokenizer: str = DEFAULT_TOKENIZER, weights: Sequence[float] = DEFAULT_WEIGHTS
) -> list[np.ndarray]:
    """Each candidate's mean utility against the other candidates of its pool (0 in a pool of one)."""
    return _consensus(pools, tokenizer, weights)[0]


def consensus_picks(
    pools: Sequence[Sequence[Any]], tokenizer: str = DEFAULT_TOKENIZER, weights: Sequence[float] = DEFAULT_WEIGHTS
) -> tuple[list[int], list[np.ndarray]]:
    """Per pool, the index of the highest mean utility (ties: earliest) and the mean utilities.

    A blank candidate (no sentence after tokenisation, e.g. ``""`` or ``"..."``) scores 0
    against everything; it is picked only when the whole pool is blank, so a tie at 0 between
    a blank and a text (a pool of one text and blanks) goes to the text, which can score.
    """
    means, scorable = _consensus(pools, tokenizer, weights)
    picks = []
    for scores, usable in zip(means, scorable):
        ranked = np.where(usable, scores, -np.inf) if usable.any() else scores
        picks.append(int(np.argmax(ranked)))
    return picks, means


def select_consensus(
    pools: Sequence[Sequence[Any]], tokenizer: str = DEFAULT_TOKENIZER, weights: Sequence[float] = DEFAULT_WEIGHTS
) -> list[int]:
    """Index, per pool, of the candidate with the highest mean utility against the rest (ties: earliest)."""
    return consensus_picks(pools, tokenizer, weights)[0]
