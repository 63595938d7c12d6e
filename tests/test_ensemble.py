"""python -m src.ensemble: consensus picks across files, order, ties, counts and error exits."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from src.ensemble import main
from tests.conftest import run_cli, run_main, write_table


def write(path: Path, rows: list[tuple[str, str]], columns: tuple[str, ...] = ("fname", "summary")) -> str:
    return write_table(path, rows, columns)


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    return run_main(main, capsys, *argv)


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[str, str]:
    a = write(tmp_path / "a.csv", [("d2", "a dog ran in the park"), ("d1", "the cat lay on a mat"),
                                   ("d2", "a dog ran in a park"), ("d3", "오늘 날씨가 맑습니다.")])
    b = write(tmp_path / "b.csv", [("d1", "the cat sat on the mat"), ("d1", "a dog ran in the park"),
                                   ("d3", "오늘 날씨가 흐립니다."), ("d1", "the cat sat on a mat"),
                                   ("d2", "the dog ran in the park today"), ("d3", "오늘은 날씨가 맑습니다.")])
    return a, b


def test_picks_the_consensus_candidate_in_first_file_order(tmp_path: Path, two_runs: tuple[str, str],
                                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sub" / "ensemble.csv"
    code, stdout, _ = run(capsys, "--pred", *two_runs, "--out", str(out), "--tokenizer", "whitespace")
    assert code == 0
    chosen = pd.read_csv(out)
    assert chosen["fname"].tolist() == ["d2", "d1", "d3"]  # the first file's order
    assert chosen["summary"].tolist() == ["a dog ran in the park", "the cat sat on a mat", "오늘 날씨가 맑습니다."]
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert counts["fnames"] == 3 and counts["candidates"] == 10 and counts["files"] == 2
    assert [f["picks"] for f in counts["per_file"]] == [2, 1]
    assert [f["candidates"] for f in counts["per_file"]] == [4, 6]
    assert counts["weights"] == [1.0, 1.0, 1.0] and 0 < counts["mean_pick_utility"] < 1
    assert [p.name for p in out.parent.iterdir()] == ["ensemble.csv"]  # no temp file left behind


def test_default_tokenizer_is_mecab_and_weights_matter(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # ROUGE-1 prefers the third candidate, ROUGE-L the second (worked out in the consensus tests).
    pred = write(tmp_path / "p.csv", [("d", "e d c"), ("d", "c a b"), ("d", "a c b e")])
    for weights, expected in (("1,0,0", "a c b e"), ("0,0,1", "c a b")):
        code, stdout, _ = run(capsys, "--pred", pred, "--out", str(tmp_path / "o.csv"), "--tokenizer", "whitespace",
                              "--weights", weights)
        assert code == 0 and pd.read_csv(tmp_path / "o.csv")["summary"].tolist() == [expected]
    code, stdout, _ = run(capsys, "--pred", pred, "--out", str(tmp_path / "o.csv"))
    assert code == 0 and json.loads(stdout.strip().splitlines()[-1])["tokenizer"] == "mecab"


def test_ties_go_to_the_earliest_file_then_row(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = write(tmp_path / "a.csv", [("d1", "x y z"), ("d2", "a b d"), ("d2", "a b c")])
    b = write(tmp_path / "b.csv", [("d1", "x y z"), ("d2", "a b c")])
    code, stdout, _ = run(capsys, "--pred", a, b, "--out", str(tmp_path / "o.csv"), "--tokenizer", "whitespace")
    assert code == 0
    # d1: the same text in both files, A's row wins; d2: "a b c" twice beats "a b d", A's row first.
    assert pd.read_csv(tmp_path / "o.csv")["summary"].tolist() == ["x y z", "a b c"]
    assert [f["picks"] for f in json.loads(stdout.strip().splitlines()[-1])["per_file"]] == [2, 0]
    # Pool of two distinct texts with equal utility: the earlier file's candidate.
    c = write(tmp_path / "c.csv", [("d1", "p q r"), ("d2", "a b d")])
    code, _, _ = run(capsys, "--pred", c, b, "--out", str(tmp_path / "o2.csv"), "--tokenizer", "whitespace")
    assert code == 0 and pd.read_csv(tmp_path / "o2.csv")["summary"].tolist() == ["p q r", "a b d"]


def test_blank_candidate_loses_to_text(tmp_path: Path, capsys: pytest.CaptureFixture,
                                       caplog: pytest.LogCaptureFixture) -> None:
    a = write(tmp_path / "a.csv", [("d1", "")])
    b = write(tmp_path / "b.csv", [("d1", "한 문장 요약입니다.")])
    code, _, _ = run(capsys, "--pred", a, b, "--out", str(tmp_path / "o.csv"))
    assert code == 0 and "1 blank candidate" in caplog.text
    assert pd.read_csv(tmp_path / "o.csv")["summary"].tolist() == ["한 문장 요약입니다."]


def assert_refused(code: int, stdout: str, stderr: str, out: Path, *expected: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 2 and stdout == "" and not out.exists()
    assert "Traceback" not in stderr
    assert len(errors) == len(expected), errors
    for line, words in zip(errors, expected):
        assert words in line, (words, line)


def test_missing_file_and_column_are_named(tmp_path: Path, two_runs: tuple[str, str],
                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o.csv"
    wrong = write(tmp_path / "wrong.csv", [("d1", "x")], columns=("fname", "text"))
    code, stdout, err = run(capsys, "--pred", two_runs[0], str(tmp_path / "nope.csv"), wrong, "--out", str(out))
    assert_refused(code, stdout, err, out, f"--pred file not found: {tmp_path / 'nope.csv'}",
                   f"{wrong}: no column 'summary'")


def test_uncovered_and_extra_fnames_and_blank_ids(tmp_path: Path, two_runs: tuple[str, str],
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o.csv"
    partial = write(tmp_path / "partial.csv", [("d1", "x"), ("d9", "y"), ("", "z")])
    code, stdout, err = run(capsys, "--pred", two_runs[0], partial, "--out", str(out))
    assert_refused(code, stdout, err, out, f"{partial} data row 3: column 'fname' is blank",
                   f"{partial}: no candidate for 2 fname(s) of {two_runs[0]}: d2, d3",
                   f"{partial}: 1 fname(s) not in {two_runs[0]} (the first file): d9")


@pytest.mark.parametrize("weights", ["1,1", "1,-1,1", "0,0,0", "a,b,c", "1,1,1,1", "nan,1,1"])
def test_bad_weights_are_refused(tmp_path: Path, two_runs: tuple[str, str], weights: str,
                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o.csv"
    code, stdout, err = run(capsys, "--pred", *two_runs, "--out", str(out), "--weights", weights)
    assert_refused(code, stdout, err, out, f"--weights '{weights}'")
    assert "e.g. --weights 1,1,1" in err


def test_out_folder_is_refused(tmp_path: Path, two_runs: tuple[str, str], capsys: pytest.CaptureFixture) -> None:
    code, stdout, err = run(capsys, "--pred", *two_runs, "--out", str(tmp_path))
    assert code == 2 and stdout == "" and f"--out {tmp_path} is a folder" in err


def test_subprocess_error_exit_and_help(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    done = run_cli(["--pred", str(tmp_path / "missing.csv"), "--out", str(out)], module="src.ensemble", timeout=120)
    assert done.returncode == 2 and not out.exists() and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: --pred file not found: {tmp_path / 'missing.csv'}"]
    shown = run_cli(["--help"], module="src.ensemble", timeout=60)
    assert shown.returncode == 0
    for flag in ("--pred", "--out", "--tokenizer", "--weights", "mecab", "kiwi", "whitespace"):
        assert flag in shown.stdout
