"""write_report / evaluate_files: the four output files, worst rows first, atomic writes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from src.utils.errors import UserError
from src.evaluation import evaluate_files, score_frames, write_report

REPORT_FILES = {"scores.csv", "metrics.json", "report.md", "score_hist.png"}


def small_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = pd.DataFrame({
        "fname": [f"d{i}" for i in range(12)],
        "dialogue": [f"#Person1#: 질문 {i} | 파이프\n#Person2#: 대답 {i}" for i in range(12)],
        "summary": [f"#Person1#은 {i}번 질문을 합니다." for i in range(12)],
    })
    pred = pd.DataFrame({"fname": ref["fname"], "summary": [f"#Person1#은 {i % 3}번 질문을 합니다." for i in range(12)]})
    return pred, ref


def test_write_report_writes_four_files_worst_first(tmp_path: Path) -> None:
    pred, ref = small_frames()
    metrics, per_row = score_frames(pred, ref, tokenizer="whitespace")
    written = write_report(tmp_path / "out", metrics, per_row)
    assert set(written) == REPORT_FILES
    assert {p.name for p in (tmp_path / "out").iterdir()} == REPORT_FILES  # no temp files left
    scores = pd.read_csv(written["scores.csv"])
    assert scores["final"].is_monotonic_increasing
    assert list(scores.columns[:5]) == ["fname", "rouge1", "rouge2", "rougeL", "final"]
    assert json.loads(Path(written["metrics.json"]).read_text()) == metrics
    assert Path(written["score_hist.png"]).read_bytes()[:4] == b"\x89PNG"
    report = Path(written["report.md"]).read_text(encoding="utf-8")
    assert "score_hist.png" in report and "## 10 worst rows" in report
    worst_rows = [line for line in report.splitlines() if re.match(r"\| d\d+ \|", line)]
    assert len(worst_rows) == 10 and worst_rows[0].startswith(f"| {scores['fname'][0]} |")
    assert "\\| 파이프<br>" in report  # cells stay on one line with pipes escaped


def test_write_report_rejects_a_file_as_folder(tmp_path: Path) -> None:
    pred, ref = small_frames()
    metrics, per_row = score_frames(pred, ref, tokenizer="whitespace")
    (tmp_path / "taken").write_text("x")
    with pytest.raises(UserError, match="existing file"):
        write_report(tmp_path / "taken", metrics, per_row)


def test_evaluate_files_reads_bom_and_keeps_text_like_na(tmp_path: Path) -> None:
    pred, ref = small_frames()
    pred.loc[0, "summary"] = "None"  # a model may really write this; it must not become NaN
    pred.to_csv(tmp_path / "pred.csv", index=False, encoding="utf-8-sig")
    ref.to_csv(tmp_path / "ref.csv", index=False)
    metrics = evaluate_files(tmp_path / "pred.csv", tmp_path / "ref.csv", "whitespace", tmp_path / "out")
    assert metrics["n"] == 12 and set(metrics) == {"rouge1", "rouge2", "rougeL", "final", "n"}
    stored = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert stored["tokenizer"] == "whitespace"
    assert pd.read_csv(tmp_path / "out" / "scores.csv", keep_default_na=False)["prediction"].eq("None").any()


def test_evaluate_files_names_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        evaluate_files(tmp_path / "nope.csv", tmp_path / "also_nope.csv")
    assert len(caught.value.problems) == 2 and "nope.csv" in caught.value.problems[0]
    (tmp_path / "latin.csv").write_bytes("fname,summary\nd0,caf\xe9\n".encode("latin-1"))
    (tmp_path / "ref.csv").write_text("fname,summary\nd0,x\n", encoding="utf-8")
    with pytest.raises(UserError, match="latin.csv: line 2: not UTF-8"):
        evaluate_files(tmp_path / "latin.csv", tmp_path / "ref.csv")


def test_report_has_a_title_all_three_metrics_and_scores_by_length(tmp_path: Path) -> None:
    pred, ref = small_frames()
    pred.to_csv(tmp_path / "pred.csv", index=False)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    evaluate_files(tmp_path / "pred.csv", tmp_path / "ref.csv", "whitespace", tmp_path / "out")
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Evaluation report: pred.csv\n") and "whitespace tokens" in report
    assert "| fname | final | R1 | R2 | RL |" in report
    assert "## Score by dialogue length" in report and "| dialogue characters | dialogues | final | R1 | R2 | RL |" in report


def test_formulas_in_fnames_and_texts_are_neutralised_in_reports_but_scored_as_written(tmp_path: Path) -> None:
    pred, ref = small_frames()
    evil = '=HYPERLINK("http://x.example","click")'
    ref.loc[0, "fname"] = pred.loc[0, "fname"] = evil
    pred.loc[0, "summary"] = "전혀 관계없는 요약"  # the worst row, so the report lists it
    pred.loc[1, "summary"] = "+" + pred.loc[1, "summary"]
    from src.utils.io import atomic_write_csv

    atomic_write_csv(tmp_path / "pred.csv", pred, for_spreadsheets=True)  # as the infer stage writes dev_predictions
    ref.to_csv(tmp_path / "ref.csv", index=False)
    metrics = evaluate_files(tmp_path / "pred.csv", tmp_path / "ref.csv", "whitespace", tmp_path / "out")
    plain, _ = score_frames(pred, ref, tokenizer="whitespace")
    assert metrics == plain, "neutralising is undone when the file is read back"
    raw = (tmp_path / "out" / "scores.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in raw and "\n=HYPERLINK" not in raw and ",=HYPERLINK" not in raw
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| '=HYPERLINK" in report and "| =HYPERLINK" not in report
