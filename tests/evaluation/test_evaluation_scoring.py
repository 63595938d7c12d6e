"""score_frames / score_texts: matching by fname, references, empty rows and errors."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from rouge import Rouge

from src.utils.errors import UserError
from src.evaluation import TOKENIZERS, prepare_texts, score_frames, score_texts

KEYS = ("rouge1", "rouge2", "rougeL")


def package_row(hyp: str, refs: list[str]) -> list[float]:
    """Per-row F1s by the rouge package, averaged over references; blank prediction is 0."""
    if not hyp.strip():
        return [0.0, 0.0, 0.0]
    per_ref = [Rouge().get_scores(hyp, ref)[0] for ref in refs]
    return [sum(s[m]["f"] for s in per_ref) / len(refs) for m in ("rouge-1", "rouge-2", "rouge-l")]


def package_metrics(hyps: list[str], refs: list[list[str]]) -> dict:
    rows = [package_row(h, r) for h, r in zip(hyps, refs)]
    means = [sum(row[k] for row in rows) / len(rows) for k in range(3)]
    return {**dict(zip(KEYS, means)), "final": 100 * sum(means) / 3, "n": len(rows)}


def assert_close(got: dict, expected: dict) -> None:
    assert got["n"] == expected["n"]
    for key in (*KEYS, "final"):
        assert math.isclose(got[key], expected[key], abs_tol=1e-6), (key, got[key], expected[key])


def test_tokenizers_are_the_documented_three() -> None:
    assert TOKENIZERS == ("mecab", "kiwi", "whitespace")


def test_whitespace_equals_rouge_package_on_korean_dev(dev_ko: pd.DataFrame, dev_pred: pd.DataFrame) -> None:
    metrics, per_row = score_frames(dev_pred, dev_ko, tokenizer="whitespace")
    expected = package_metrics(dev_pred["summary"].tolist(), [[s] for s in dev_ko["summary"]])
    assert_close(metrics, expected)
    assert 0.1 < metrics["rouge1"] < 0.9  # the perturbation keeps scores non-trivial
    assert metrics["final"] == pytest.approx(per_row["final"].mean(), abs=1e-9)


def test_shuffled_prediction_rows_give_identical_scores(dev_ko: pd.DataFrame, dev_pred: pd.DataFrame) -> None:
    shuffled = dev_pred.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert shuffled["fname"].tolist() != dev_pred["fname"].tolist()
    for tokenizer in TOKENIZERS:
        in_order, rows_in_order = score_frames(dev_pred, dev_ko, tokenizer=tokenizer)
        out_of_order, rows_shuffled = score_frames(shuffled, dev_ko, tokenizer=tokenizer)
        assert in_order == out_of_order
        pd.testing.assert_frame_equal(rows_in_order, rows_shuffled)


def test_three_references_average_per_dialogue(test_en: pd.DataFrame) -> None:
    ref = test_en.head(120)
    pred = pd.DataFrame({"fname": ref["fname"], "summary": [d.split("\n")[0] for d in ref["dialogue"]]})
    metrics, per_row = score_frames(pred.iloc[::-1], ref, tokenizer="whitespace")
    refs = ref[["summary1", "summary2", "summary3"]].values.tolist()
    assert_close(metrics, package_metrics(pred["summary"].tolist(), refs))
    assert {"reference1", "reference2", "reference3"} <= set(per_row.columns)


def test_korean_three_references_by_hand() -> None:
    refs = [["#Person1#은 책을 빌립니다.", "#Person1#이 책을 대출합니다.", "#Person2#는 책을 빌려줍니다."]]
    hyp = ["#Person1#은 책을 빌립니다."]
    assert_close(score_texts(hyp, refs, tokenizer="whitespace"), package_metrics(hyp, refs))


def test_kiwi_mode_is_rouge_on_morphemes(dev_ko: pd.DataFrame, dev_pred: pd.DataFrame) -> None:
    hyps, refs = dev_pred["summary"].tolist()[:60], dev_ko["summary"].tolist()[:60]
    joined_hyps, joined_refs = prepare_texts(hyps, "kiwi"), prepare_texts(refs, "kiwi")
    expected = package_metrics(joined_hyps, [[r] for r in joined_refs])
    assert_close(score_texts(hyps, [[r] for r in refs], tokenizer="kiwi"), expected)


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
@pytest.mark.parametrize("blank", ["", "   \n ", float("nan"), None])
def test_blank_prediction_scores_zero(tokenizer: str, blank: object) -> None:
    pred = pd.DataFrame({"fname": ["a", "b"], "summary": [blank, "#Person1#은 책을 빌립니다."]})
    ref = pd.DataFrame({"fname": ["a", "b"], "summary": ["#Person1#은 책을 빌립니다."] * 2})
    metrics, per_row = score_frames(pred, ref, tokenizer=tokenizer)
    row = per_row.set_index("fname")
    assert row.loc["a", list(KEYS)].tolist() == [0.0, 0.0, 0.0]
    assert row.loc["b", "final"] == pytest.approx(100.0, abs=1e-4)
    assert per_row["fname"].iloc[0] == "a"  # worst first
    assert metrics["final"] == pytest.approx(50.0, abs=1e-4)


def test_blank_reference_scores_zero_and_is_skipped_among_several() -> None:
    assert score_texts(["책을 빌립니다."], [[""]], tokenizer="whitespace")["final"] == 0.0
    with_gap = score_texts(["책을 빌립니다."], [["책을 빌립니다.", float("nan")]], tokenizer="whitespace")
    assert with_gap["final"] == pytest.approx(100.0, abs=1e-4)


def test_missing_and_extra_fnames_are_listed() -> None:
    pred = pd.DataFrame({"fname": ["dev_0", "dev_9", "dev_8"], "summary": ["x", "y", "z"]})
    ref = pd.DataFrame({"fname": ["dev_0", "dev_1", "dev_2"], "summary": ["x", "y", "z"]})
    with pytest.raises(UserError) as caught:
        score_frames(pred, ref, tokenizer="whitespace", pred_name="pred.csv", ref_name="ref.csv")
    problems = caught.value.problems
    assert len(problems) == 2
    assert "no prediction for 2 fname(s)" in problems[0] and "dev_1, dev_2" in problems[0]
    assert "2 fname(s) not in ref.csv" in problems[1] and "dev_9, dev_8" in problems[1]
    assert all(p.startswith("pred.csv") for p in problems)


def test_duplicates_and_missing_columns_are_errors() -> None:
    ref = pd.DataFrame({"fname": ["a", "b"], "summary": ["x", "y"]})
    with pytest.raises(UserError, match="appear more than once: a"):
        score_frames(pd.DataFrame({"fname": ["a", "a", "b"], "summary": ["x"] * 3}), ref)
    with pytest.raises(UserError) as caught:
        score_frames(pd.DataFrame({"fname": ["a"], "text": ["x"]}), pd.DataFrame({"id": ["a"]}), ref_name="r.csv")
    assert len(caught.value.problems) == 2 and "r.csv" in caught.value.problems[1]


def test_long_fname_lists_are_truncated() -> None:
    ref = pd.DataFrame({"fname": [f"d{i}" for i in range(50)], "summary": ["x"] * 50})
    pred = pd.DataFrame({"fname": ["d0"], "summary": ["x"]})
    with pytest.raises(UserError, match=r"no prediction for 49 fname\(s\).*\(\+29 more\)"):
        score_frames(pred, ref, tokenizer="whitespace")


def test_score_texts_accepts_plain_string_references() -> None:
    metrics = score_texts(["책을 빌립니다."], ["책을 빌립니다."], tokenizer="whitespace")
    assert set(metrics) == {"rouge1", "rouge2", "rougeL", "final", "n"}
    assert metrics["n"] == 1 and metrics["final"] == pytest.approx(100.0, abs=1e-4)
