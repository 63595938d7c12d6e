"""python -m src.compare: the paired difference, its interval against an independent bootstrap of src.evaluate's
per-row scores, "not sure", split agreement, the side-by-side rows, the report and the error exits."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.compare import main
from src.main import entry_point
from tests.conftest import need_shared, run_main, write_table
from tests.evaluation.conftest import DEV_KO, perturb


def write(path: Path, rows: list[tuple[str, str]], columns: tuple[str, ...] = ("fname", "summary")) -> str:
    return write_table(path, rows, columns)


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    return run_main(main, capsys, *argv)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dev_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """Real Korean dev rows: A = src.evaluation's test perturbations of the references, B = the first turn of each
    dialogue with its speaker prefix cut; both against the dev references."""
    dev = pd.read_csv(need_shared(DEV_KO))
    folder = tmp_path_factory.mktemp("dev")
    a = [(f, perturb(s, d, i)) for i, (f, s, d) in enumerate(zip(dev["fname"], dev["summary"], dev["dialogue"]))]
    b = [(f, d.split("\n")[0].split(": ", 1)[-1]) for f, d in zip(dev["fname"], dev["dialogue"])]
    return write(folder / "a.csv", a), write(folder / "b.csv", b), str(DEV_KO)


def evaluate_rows(pred: str, ref: str, out: Path) -> pd.Series:
    """Per-row final scores exactly as python -m src.evaluate writes them (its scores.csv), by fname."""
    from src.evaluate import main as evaluate_main

    assert evaluate_main(["--pred", pred, "--ref", ref, "--out", str(out)]) == 0
    scores = pd.read_csv(out / "scores.csv")
    return scores.set_index("fname")["final"]


def test_interval_matches_an_independent_bootstrap_of_evaluate_rows(dev_files: tuple[str, str, str], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    a, b, ref = dev_files
    code, stdout, _ = run(capsys, "--pred", a, b, "--ref", ref, "--seed", "3")
    assert code == 0
    result = last_json(stdout)
    rows_a, rows_b = evaluate_rows(a, ref, tmp_path / "a"), evaluate_rows(b, ref, tmp_path / "b")
    capsys.readouterr()
    order = pd.read_csv(ref)["fname"]  # the references' order, so the same resample indices pick the same rows
    diffs = (rows_a.reindex(order) - rows_b.reindex(order)).to_numpy()
    evaluated_a = json.loads((tmp_path / "a" / "metrics.json").read_text(encoding="utf-8"))["final"]
    assert result["n"] == len(diffs) == 499
    assert result["final_a"] == pytest.approx(evaluated_a, abs=1e-9)
    assert result["diff"] == pytest.approx(diffs.mean(), abs=1e-6)
    # the same construction by hand: numpy resamples of the rows, percentile interval
    index = np.random.default_rng(3).integers(0, len(diffs), size=(2000, len(diffs)))
    means = diffs[index].mean(axis=1)
    assert result["ci_low"] == pytest.approx(np.percentile(means, 2.5), abs=1e-4)
    assert result["ci_high"] == pytest.approx(np.percentile(means, 97.5), abs=1e-4)
    assert result["p_a_better"] == pytest.approx((means > 0).mean(), abs=1e-9)
    # a bootstrap with another generator (python's random) agrees within Monte Carlo error
    rng = random.Random(11)
    other = sorted(sum(diffs[rng.randrange(len(diffs))] for _ in diffs) / len(diffs) for _ in range(2000))
    width = result["ci_high"] - result["ci_low"]
    assert abs(result["ci_low"] - other[50]) < 0.1 * width and abs(result["ci_high"] - other[1949]) < 0.1 * width
    assert result["ci_low"] < result["diff"] < result["ci_high"]


def test_not_sure_when_the_interval_contains_zero(dev_files: tuple[str, str, str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    a, _, ref = dev_files
    frame = pd.read_csv(a)
    # B differs from A in two dialogues only: one better (the reference itself), one worse (blank)
    dev = pd.read_csv(ref)
    frame_b = frame.copy()
    frame_b.loc[0, "summary"] = dev.loc[0, "summary"]
    frame_b.loc[1, "summary"] = ""
    b = tmp_path / "b.csv"
    frame_b.to_csv(b, index=False)
    code, stdout, _ = run(capsys, "--pred", a, str(b), "--ref", ref, "--tokenizer", "whitespace")
    assert code == 0
    result = last_json(stdout)
    assert result["ci_low"] <= 0 <= result["ci_high"] and result["not_sure"] is True
    assert "not sure" in stdout.splitlines()[-2] or "verdict: not sure" in stdout
    assert "not sure" in result["verdict"]
    assert 0 < result["p_a_better"] < 1


def test_a_clear_winner_and_the_side_by_side_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fnames = [f"d{i}" for i in range(40)]
    refs = [f"the cat number {i} sat on the mat today" for i in range(40)]
    ref = write(tmp_path / "ref.csv", list(zip(fnames, refs)))
    a = write(tmp_path / "a.csv", [(f, r.replace("today", "yesterday")) for f, r in zip(fnames, refs)])
    b = write(tmp_path / "b.csv", [(f, "a dog" if i == 7 else r.replace("sat on the mat", "ran"))
                                   for i, (f, r) in enumerate(zip(fnames, refs))])
    code, stdout, err = run(capsys, "--pred", a, b, "--ref", ref, "--tokenizer", "whitespace", "--show", "2",
                            "--out", str(tmp_path / "report"))
    assert code == 0, err
    result = last_json(stdout)
    assert result["diff"] > 0 and result["ci_low"] > 0 and result["p_a_better"] == 1.0
    assert result["split_agreement"] == 1.0, "every half board of 20 dialogues picks A"
    assert result["final_a"] > result["final_b"] and result["n"] == 40 and not result["not_sure"]
    lines = stdout.splitlines()
    assert lines[0].startswith("A = ") and any(line.startswith("final ") for line in lines)
    assert "A is better than B" in stdout
    assert "- d7:" in stdout, "the most different dialogue is shown first"
    assert stdout.index("- d7:") < stdout.index("    A: the cat number 7")
    assert set(result["metrics"]) == {"rouge1", "rouge2", "rougeL"}
    report = tmp_path / "report"
    assert json.loads((report / "compare.json").read_text(encoding="utf-8")) == result
    rows = pd.read_csv(report / "rows.csv")
    assert rows["fname"].iloc[0] == "d7" and len(rows) == 40
    assert {"final_a", "final_b", "final_diff", "prediction_a", "prediction_b", "reference"} <= set(rows.columns)
    assert "Where A and B differ most" in (report / "report.md").read_text(encoding="utf-8")


def test_identical_files_are_a_tie(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref = write(tmp_path / "ref.csv", [("x", "one two three"), ("y", "four five six")])
    a = write(tmp_path / "a.csv", [("y", "four six"), ("x", "one two")])
    code, stdout, _ = run(capsys, "--pred", a, a, "--ref", ref, "--tokenizer", "whitespace")
    result = last_json(stdout)
    assert code == 0 and result["diff"] == 0 and result["ci_low"] == result["ci_high"] == 0
    assert result["p_a_better"] == 0 and result["split_agreement"] == 1.0 and "not sure" in stdout


@pytest.mark.parametrize("case, expected", [
    ("missing", "b.csv: no prediction for 1 fname(s) of"),
    ("extra", "b.csv: 1 fname(s) not in"),
    ("duplicate", "b.csv: 1 fname(s) appear more than once: y"),
    ("columns", "b.csv: needs columns 'fname' and 'summary'"),
])
def test_bad_files_are_one_line_naming_the_file_and_fnames(tmp_path: Path, capsys: pytest.CaptureFixture, case: str,
                                                           expected: str) -> None:
    ref = write(tmp_path / "ref.csv", [("x", "one two three"), ("y", "four five six")])
    a = write(tmp_path / "a.csv", [("x", "one"), ("y", "four")])
    rows = {"missing": [("x", "one")], "extra": [("x", "one"), ("y", "four"), ("z", "nine")],
            "duplicate": [("x", "one"), ("y", "four"), ("y", "five")], "columns": [("x", "one"), ("y", "four")]}[case]
    columns = ("fname", "text") if case == "columns" else ("fname", "summary")
    b = write(tmp_path / "b.csv", rows, columns)
    code, stdout, err = run(capsys, "--pred", a, b, "--ref", ref, "--tokenizer", "whitespace")
    assert code == 2 and stdout == ""
    assert expected in err and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    if case in ("missing", "extra", "duplicate"):
        assert {"missing": ": y", "extra": ": z", "duplicate": ": y"}[case] in lines[0]


def test_missing_file_and_flag_problems(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref = write(tmp_path / "ref.csv", [("x", "one two three")])
    code, _, err = run(capsys, "--pred", str(tmp_path / "nope.csv"), ref, "--ref", ref)
    assert code == 2 and "nope.csv" in err and "not found" in err
    code, _, err = run(capsys, "--pred", ref, ref)
    assert code == 2 and "needs --ref" in err
    code, _, err = run(capsys, "--pred", ref, ref, "--ref", ref, "--resamples", "0")
    assert code == 2 and "--resamples 0" in err


def test_dialsum_compare_is_the_same_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref = write(tmp_path / "ref.csv", [("x", "one two three"), ("y", "four five six")])
    a = write(tmp_path / "a.csv", [("x", "one two"), ("y", "four five")])
    b = write(tmp_path / "b.csv", [("x", "one"), ("y", "six")])
    assert entry_point(["compare", "--pred", a, b, "--ref", ref, "--tokenizer", "whitespace"]) == 0
    via_dialsum = last_json(capsys.readouterr().out)
    assert main(["--pred", a, b, "--ref", ref, "--tokenizer", "whitespace"]) == 0
    assert last_json(capsys.readouterr().out) == via_dialsum


def test_tokenizer_all_gives_one_object_per_tokenizer_and_a_folder_each(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    ref = write(tmp_path / "ref.csv", [("x", "오늘 날씨가 맑습니다."), ("y", "#Person1#이 전화한다.")])
    a = write(tmp_path / "a.csv", [("x", "오늘 날씨가 맑다."), ("y", "#Person1#이 전화했다.")])
    b = write(tmp_path / "b.csv", [("x", "비가 온다."), ("y", "전화.")])
    code, stdout, _ = run(capsys, "--pred", a, b, "--ref", ref, "--tokenizer", "all", "--out", str(tmp_path / "r"))
    assert code == 0
    result = last_json(stdout)
    assert set(result) == {"mecab", "kiwi", "whitespace"} and all(r["n"] == 2 for r in result.values())
    assert all(r["diff"] > 0 for r in result.values())
    assert all((tmp_path / "r" / name / "compare.json").is_file() for name in result)
    assert "== kiwi ==" in stdout
