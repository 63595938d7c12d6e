"""The rl stage's reward terms on literal examples: the ROUGE term is the project's scorer, the guards bite."""
from __future__ import annotations

import pytest

from src.config import load_config
from src.evaluation import score_texts
from src.train.rewards import CompletionAudit, fluency, length, reward_functions, rouge, stop

REFERENCE = "#Person1#은 #Person2#에게 병원 예약을 부탁한다."
COMPLETIONS = ["#Person1#은 #Person2#에게 병원 예약을 부탁한다.", "#Person2#가 병원에 전화를 건다.",
               "기차표를 산다.", ""]


@pytest.mark.parametrize("tokenizer", ["mecab", "whitespace"])
def test_the_rouge_term_is_the_competition_score_over_100(tokenizer: str) -> None:
    references = [[REFERENCE]] * len(COMPLETIONS)
    got = rouge(COMPLETIONS, references, tokenizer=tokenizer)
    want = [score_texts([c], [[REFERENCE]], tokenizer=tokenizer)["final"] / 100 for c in COMPLETIONS]
    assert got == pytest.approx(want, abs=1e-12)
    assert got[0] == pytest.approx(1.0, abs=1e-6) and got[-1] == 0.0 and max(got[1:]) < 1


def test_the_rouge_term_averages_over_several_references_as_the_leaderboard_does() -> None:
    refs = [REFERENCE, "병원 예약을 #Person1#이 부탁한다.", "#Person2#는 예약을 돕는다."]
    got = rouge([COMPLETIONS[1]], [refs], tokenizer="mecab")
    assert got == pytest.approx([score_texts([COMPLETIONS[1]], [refs], tokenizer="mecab")["final"] / 100])


def test_completions_are_scored_as_inference_would_write_them() -> None:
    """A leading label and a second turn the model starts are cut before scoring, like postprocess does."""
    raw = "요약: " + REFERENCE + "\n#Person1#: 그리고 또"
    assert rouge([raw], [[REFERENCE]], tokenizer="mecab") == pytest.approx([1.0])


def test_the_length_guard_is_free_inside_the_tolerance_and_bounded() -> None:
    ref = ["하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉 열"]  # 10 words
    texts = ["가 " * 10, "가 " * 11, "가 " * 20, "가 " * 40, ""]
    got = length(texts, [ref] * len(texts), tolerance=0.2)
    assert got == pytest.approx([0.0, 0.0, -0.8, -1.0, -0.8])


def test_the_stop_term_and_the_audit_read_the_completion_ids() -> None:
    audit = CompletionAudit()
    ids = [[5, 6, 2], [5, 6, 7], [2, 5, 2], [9, 2], []]
    got = stop(["x"] * len(ids), ids, stop_ids=frozenset({2}), banned=frozenset({9}), audit=audit)
    assert got == [0.0, -1.0, 0.0, 0.0, -1.0]
    assert audit.as_dict() == {"completions": 5, "stopped": 3, "stop_before_end": 1, "banned_tokens": 1}


def test_the_fluency_guard_costs_only_below_the_floor() -> None:
    fluent = "두 사람은 내일 병원에 가기로 한다."
    reversed_text = fluent[::-1]
    got = fluency([fluent, reversed_text, ""], floor=-8.0)
    assert got[0] == 0.0 and -1.0 <= got[1] < 0 and got[2] == -1.0


def test_terms_with_weight_zero_are_not_run_but_the_stop_term_always_audits() -> None:
    cfg = load_config(None, ["rl.length_weight=0", "rl.no_stop_weight=0"])
    funcs, weights = reward_functions(cfg, [2], [], CompletionAudit())
    assert [f.func.__name__ for f in funcs] == ["rouge", "stop"] and weights == [1.0, 0.0]
    cfg = load_config(None, ["rl.fluency_weight=0.3"])
    funcs, weights = reward_functions(cfg, [2], [], CompletionAudit())
    assert [f.func.__name__ for f in funcs] == ["rouge", "length", "fluency", "stop"] and weights == [1.0, 0.5, 0.3, 1.0]
