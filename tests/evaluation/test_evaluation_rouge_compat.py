"""The scorer reproduces the rouge 1.0.1 package exactly, quirks included."""
from __future__ import annotations

import random

import pytest
from rouge import Rouge
from rouge.rouge_score import _recon_lcs

from src.evaluation.rouge_compat import lcs_tokens, rouge_f1, split_sentences


def package_f1(hyp: str, ref: str) -> tuple[float, float, float]:
    """The reference implementation, with its ValueError on empty input read as 0."""
    try:
        scores = Rouge().get_scores(hyp, ref)[0]
    except ValueError:
        return (0.0, 0.0, 0.0)
    return tuple(scores[m]["f"] for m in ("rouge-1", "rouge-2", "rouge-l"))


def test_random_texts_match_package_bit_for_bit() -> None:
    # A tiny vocabulary forces repeated tokens and LCS ties, where the back-trace order matters.
    vocab = ["a", "b", "c", "d", ".", "  ", ". ", "x y", "가", "#Person1#"]
    rng = random.Random(0)
    for _ in range(3000):
        hyp = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 14)))
        ref = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 14)))
        assert rouge_f1(hyp, ref) == package_f1(hyp, ref), (hyp, ref)


@pytest.mark.parametrize("hyp, ref", [("", "a b"), ("...", "a b"), ("a b", ""), ("a b", "..")])
def test_inputs_the_package_rejects_score_zero(hyp: str, ref: str) -> None:
    with pytest.raises(ValueError):
        Rouge().get_scores(hyp, ref)
    assert rouge_f1(hyp, ref) == (0.0, 0.0, 0.0)


def test_sentences_split_at_full_stops_and_collapse_spaces() -> None:
    assert split_sentences("a  b. c.\n.") == ["a b", "c", ""]


@pytest.mark.parametrize("ref, hyp", [("a b", "b a"), ("a b c", "c b a"), ("a b a c", "c a b b a")])
def test_lcs_back_trace_picks_the_same_lcs_as_the_package(ref: str, hyp: str) -> None:
    # Several LCSs of equal length exist; ROUGE-L's union depends on which one is returned.
    expected = _recon_lcs(ref.split(), hyp.split())._ngrams
    assert set(lcs_tokens(ref.split(), hyp.split())) == expected


def test_long_sentence_does_not_hit_the_recursion_limit() -> None:
    hyp = " ".join(["반복"] * 3000)
    scores = rouge_f1(hyp, "반복 요약 문장")
    assert 0 < scores[0] < 1 and scores[2] > 0
