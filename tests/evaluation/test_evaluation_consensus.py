"""Consensus selection: exact package ROUGE on every pair, literal pools, ties, edge pools, speed."""
from __future__ import annotations

import random
import time

import numpy as np
import pandas as pd
import pytest
from rouge import Rouge

from benchmarks.consensus_throughput import make_pools
from src.evaluation.consensus import check_weights, consensus_scores, pairwise_f1, select_consensus
from src.evaluation.lcs_batch import BUCKET, lcs_token_sets
from src.evaluation.morphemes import prepare_texts
from src.evaluation.rouge_compat import lcs_tokens, rouge_f1

SELECTION_BUDGET_S = 30.0  # the limit for 499 dialogues x 16 candidates on 2 cores


def test_batched_lcs_traces_the_package_lcs() -> None:
    # Tiny alphabets force equal-length LCS ties, where the back-trace order decides the tokens;
    # lengths past BUCKET and a long pair exercise padding and several table shapes.
    rng = random.Random(3)
    pairs = [(tuple(rng.randrange(v) for _ in range(rng.randint(0, 3 * BUCKET))),
              tuple(rng.randrange(v) for _ in range(rng.randint(0, 3 * BUCKET))))
             for v in (1, 2, 3, 5) for _ in range(1500)]
    pairs.append((tuple(range(300)) * 2, tuple(range(299, -1, -1))))
    expected = [frozenset(lcs_tokens(list(ref), list(hyp))) for ref, hyp in pairs]
    assert lcs_token_sets(pairs) == expected
    assert sum(1 for e in expected if e) > 4000  # most pairs really went through a table


def test_pairwise_scores_equal_rouge_f1_bit_for_bit_on_tricky_texts() -> None:
    vocab = ["a", "b", "c", "d", ".", "  ", ". ", "x y", "가", "#Person1#"]
    rng = random.Random(0)
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 14))) for _ in range(120)]
    pairs = [(rng.choice(texts), rng.choice(texts)) for _ in range(3000)] + [(t, t) for t in texts[:30]]
    got = pairwise_f1(pairs, "whitespace")
    assert got.tolist() == [list(rouge_f1(h, r)) for h, r in pairs]


def test_pairwise_mecab_scores_equal_the_package_on_dev(dev_ko: pd.DataFrame) -> None:
    pools = make_pools(dev_ko["summary"].tolist()[:12], dev_ko["dialogue"].tolist()[:12], 6)
    pairs = [(a, b) for pool in pools for a in pool for b in pool if a != b]
    joined = dict(zip({t for p in pairs for t in p}, prepare_texts(list({t for p in pairs for t in p}), "mecab")))
    expected = [[s[m]["f"] for m in ("rouge-1", "rouge-2", "rouge-l")]
                for s in (Rouge().get_scores(joined[h], joined[r])[0] for h, r in pairs)]
    got = pairwise_f1(pairs, "mecab")
    assert len(pairs) > 300 and got.tolist() == expected


def test_consensus_candidate_wins() -> None:
    pool = ["the cat lay on a mat", "the cat sat on the mat", "a dog ran in the park", "the cat sat on a mat"]
    assert select_consensus([pool], "whitespace") == [3]
    korean = ["#Person1#은 내일 회의에 갑니다.", "#Person1#은 내일 회의에 참석합니다.",
              "#Person2#는 오늘 쇼핑을 합니다.", "#Person1#은 내일 중요한 회의에 참석합니다."]
    assert select_consensus([korean], "mecab") == [1]


def test_weights_change_the_pick_as_computed_by_hand() -> None:
    # ROUGE-1 means 0.452/0.595/0.714, ROUGE-L means 0.310/0.452/0.429, no bigram shared at all.
    pool = ["e d c", "c a b", "a c b e"]
    assert select_consensus([pool], "whitespace", (1, 0, 0)) == [2]
    assert select_consensus([pool], "whitespace", (0, 0, 1)) == [1]
    assert select_consensus([pool], "whitespace", (0, 1, 0)) == [0]  # all zero: the earliest
    means = consensus_scores([pool], "whitespace", (1, 0, 0))[0]
    assert means == pytest.approx([(1 / 3 + 4 / 7) / 2, (1 / 3 + 6 / 7) / 2, (4 / 7 + 6 / 7) / 2], abs=1e-7)


def test_ties_go_to_the_earliest_candidate() -> None:
    assert select_consensus([["x y z", "a b c", "a b c"]], "whitespace") == [1]
    assert select_consensus([["a b c", "a b d", "a b c", "a b d"]], "whitespace") == [0]
    duplicates_apart = ["p q r s", "a b c d", "p q r s", "a b c d", "a b c e"]
    scores = consensus_scores([duplicates_apart], "whitespace")[0]
    assert scores[1] == scores[3] and select_consensus([duplicates_apart], "whitespace") == [1]


def test_pools_of_one_and_two() -> None:
    assert select_consensus([["only one"]], "whitespace") == [0]
    assert consensus_scores([["only one"]], "whitespace")[0].tolist() == [0.0]
    assert select_consensus([["a b c", "a b d"], ["a b d", "a b c"]], "whitespace") == [0, 0]


def test_empty_candidates_never_win_a_pool_with_text() -> None:
    pools = [["", "the cat sat", "the cat sat on"], ["  ", "...", ""], [float("nan"), None, "a b"], ["", "a b"]]
    assert select_consensus(pools, "whitespace") == [1, 0, 2, 1]
    assert select_consensus(pools, "mecab") == [1, 0, 2, 1]
    # The text ties the blanks at 0 (it has nothing to agree with) and still wins.
    assert consensus_scores(pools, "whitespace")[2].tolist() == [0.0, 0.0, 0.0]


def test_bad_arguments_raise() -> None:
    for bad in ([1, 1], [1, -1, 1], [0, 0, 0], ["x", 1, 1], [float("nan"), 1, 1]):
        with pytest.raises(ValueError):
            check_weights(bad)
    assert check_weights(["1", "2", "0"]) == (1.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="no candidate"):
        select_consensus([["a"], []], "whitespace")
    with pytest.raises(ValueError, match="unknown tokenizer"):
        select_consensus([["a"]], "spaces")


@pytest.mark.parametrize("tokenizer", ["whitespace", "kiwi"])
def test_other_tokenizers_match_rouge_f1_on_their_prepared_texts(tokenizer: str, dev_ko: pd.DataFrame) -> None:
    pools = make_pools(dev_ko["summary"].tolist()[20:26], dev_ko["dialogue"].tolist()[20:26], 5)
    pairs = [(a, b) for pool in pools for a in pool for b in pool if a != b]
    prepared = dict(zip({t for p in pairs for t in p}, prepare_texts(list({t for p in pairs for t in p}), tokenizer)))
    assert pairwise_f1(pairs, tokenizer).tolist() == [list(rouge_f1(prepared[h], prepared[r])) for h, r in pairs]


@pytest.mark.slow
def test_499_dialogues_x_16_candidates_within_budget(dev_ko: pd.DataFrame) -> None:
    pools = make_pools(dev_ko["summary"].tolist(), dev_ko["dialogue"].tolist(), 16)
    started = time.perf_counter()
    picks = select_consensus(pools, "mecab")
    seconds = time.perf_counter() - started
    print(f"499 x 16 candidates, mecab: {seconds:.1f} s")
    assert len(picks) == 499 and seconds < SELECTION_BUDGET_S
    # Candidate 0 is the reference and the others are edits of it: it is the centre of most pools.
    assert np.mean(np.array(picks) == 0) > 0.9
