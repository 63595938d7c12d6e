"""Mecab mode: the leaderboard's scorer, checked against the rouge package on Mecab-joined text."""
from __future__ import annotations

import json
import math
from pathlib import Path

import mecab
import pandas as pd
import pytest
from rouge import Rouge

from src.evaluation import DEFAULT_TOKENIZER, mecab_tokens, score_frames
from src.evaluation.morphemes import get_mecab
from tests.conftest import need_shared
from tests.evaluation.test_evaluation_cli import run_cli

KEYS = ("rouge1", "rouge2", "rougeL")


def oracle_metrics(hyps: list[str], refs: list[list[str]]) -> dict:
    """The organisers' recipe written out independently: a fresh MeCab, the package, means."""
    tagger = mecab.MeCab()
    rows = []
    for hyp, row in zip(hyps, refs):
        joined_hyp = " ".join(tagger.morphs(hyp))
        per_ref = [Rouge().get_scores(joined_hyp, " ".join(tagger.morphs(ref)))[0] for ref in row]
        rows.append([sum(s[m]["f"] for s in per_ref) / len(per_ref) for m in ("rouge-1", "rouge-2", "rouge-l")])
    means = [sum(r[k] for r in rows) / len(rows) for k in range(3)]
    return {**dict(zip(KEYS, means)), "final": 100 * sum(means) / 3, "n": len(rows)}


def assert_close(got: dict, expected: dict) -> None:
    assert got["n"] == expected["n"]
    for key in (*KEYS, "final"):
        assert math.isclose(got[key], expected[key], abs_tol=1e-9), (key, got[key], expected[key])


def test_mecab_is_the_default_and_loaded_once() -> None:
    assert DEFAULT_TOKENIZER == "mecab"
    assert get_mecab() is get_mecab()


def test_mecab_cuts_speaker_tags_and_masks_as_measured() -> None:
    # The leaderboard applies Mecab to the raw text, so we do too: tags are not protected.
    tokens = mecab_tokens(["#Person1#가 #PhoneNumber#로 전화했다.", "Bye, #Person2#.", ""])
    assert tokens[0] == ["#", "Person", "1", "#", "가", "#", "PhoneNumber", "#", "로", "전화", "했", "다", "."]
    assert tokens[1] == ["Bye", ",", "#", "Person", "2", "#."]  # "#." stays one morpheme before a full stop
    assert tokens[2] == []


def test_mecab_equals_package_on_all_korean_dev_rows(dev_ko: pd.DataFrame, dev_pred: pd.DataFrame) -> None:
    metrics, per_row = score_frames(dev_pred.iloc[::-1], dev_ko, tokenizer="mecab")
    expected = oracle_metrics(dev_pred["summary"].tolist(), [[s] for s in dev_ko["summary"]])
    assert_close(metrics, expected)
    assert metrics["n"] == 499 and 0.1 < metrics["rouge1"] < 0.9  # non-trivial scores


def test_mecab_equals_package_on_three_reference_english_rows(test_en: pd.DataFrame) -> None:
    ref = test_en.head(150)
    pred = pd.DataFrame({"fname": ref["fname"], "summary": [d.split("\n")[0] for d in ref["dialogue"]]})
    metrics, per_row = score_frames(pred, ref, tokenizer="mecab")
    refs = ref[["summary1", "summary2", "summary3"]].values.tolist()
    assert_close(metrics, oracle_metrics(pred["summary"].tolist(), refs))
    assert 0.0 < metrics["rouge2"] < metrics["rouge1"] < 1.0


@pytest.mark.slow
def test_cli_default_is_mecab_and_all_reports_three(tmp_path: Path, dev_ko_path: Path, dev_pred: pd.DataFrame) -> None:
    dev_pred.head(40).to_csv(tmp_path / "pred.csv", index=False)
    pd.read_csv(dev_ko_path).head(40).to_csv(tmp_path / "ref.csv", index=False)
    args = ("--pred", str(tmp_path / "pred.csv"), "--ref", str(tmp_path / "ref.csv"))
    default = run_cli(*args)
    together = run_cli(*args, "--tokenizer", "all", "--out", str(tmp_path / "out"))
    assert default.returncode == 0 and together.returncode == 0, default.stderr + together.stderr
    side_by_side = json.loads(together.stdout.strip().splitlines()[-1])
    assert list(side_by_side) == ["mecab", "kiwi", "whitespace"]
    assert json.loads(default.stdout.strip().splitlines()[-1]) == side_by_side["mecab"]
    finals = [side_by_side[t]["final"] for t in side_by_side]
    assert len(set(finals)) == 3 and all(0 < f < 100 for f in finals)
    for tokenizer in side_by_side:
        stored = json.loads((tmp_path / "out" / tokenizer / "metrics.json").read_text(encoding="utf-8"))
        assert stored["tokenizer"] == tokenizer and stored["final"] == side_by_side[tokenizer]["final"]


def test_499_dev_rows_in_mecab_mode(tmp_path: Path, dev_ko_path: Path, dev_pred: pd.DataFrame) -> None:
    """Shuffled predictions are matched by fname (the time it takes: python -m benchmarks.scoring_speed)."""
    dev_pred.sample(frac=1.0, random_state=5).to_csv(tmp_path / "pred.csv", index=False)
    done = run_cli("--pred", str(tmp_path / "pred.csv"), "--ref", str(dev_ko_path), "--tokenizer", "mecab")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["n"] == 499


def test_missing_shared_file_fails_under_ci_and_skips_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "absent.csv"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not found"):
        need_shared(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        need_shared(missing)
    assert need_shared(Path(__file__)) == Path(__file__)
