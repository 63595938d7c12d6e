"""python -m src.evaluate end to end, in subprocesses (so Kiwi's load time is counted)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "src.evaluate", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli_prints_json_last_and_writes_report(tmp_path: Path) -> None:
    ref_path = REPO_ROOT / "data" / "debug" / "dev.csv"
    ref = pd.read_csv(ref_path)
    pred = pd.DataFrame({"fname": ref["fname"], "summary": [s.split(". ")[0] for s in ref["summary"]]})
    pred.iloc[::-1].to_csv(tmp_path / "pred.csv", index=False)
    done = run_cli("--pred", str(tmp_path / "pred.csv"), "--ref", str(ref_path), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(metrics) == {"rouge1", "rouge2", "rougeL", "final", "n"} and metrics["n"] == len(ref)
    assert all(0.0 < metrics[k] <= 1.0 for k in ("rouge1", "rouge2", "rougeL"))
    assert metrics["final"] == pytest.approx(100 * (metrics["rouge1"] + metrics["rouge2"] + metrics["rougeL"]) / 3)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"scores.csv", "metrics.json", "report.md", "score_hist.png"}


@pytest.mark.slow
def test_499_dev_rows_in_kiwi_mode(tmp_path: Path, dev_ko_path: Path, dev_pred: pd.DataFrame) -> None:
    """Shuffled predictions are matched by fname (the time it takes is a benchmark: benchmarks.scoring_speed)."""
    dev_pred.sample(frac=1.0, random_state=3).to_csv(tmp_path / "pred.csv", index=False)
    done = run_cli("--pred", str(tmp_path / "pred.csv"), "--ref", str(dev_ko_path), "--tokenizer", "kiwi")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["n"] == 499


def test_cli_missing_file_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text("fname,summary\nd0,x\n", encoding="utf-8")
    done = run_cli("--pred", str(tmp_path / "missing.csv"), "--ref", str(ref), "--tokenizer", "whitespace")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: predictions file not found: {tmp_path / 'missing.csv'}"]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_cli_lists_unmatched_fnames(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("fname,summary\nd0,가\nd1,나\n", encoding="utf-8")
    (tmp_path / "pred.csv").write_text("fname,summary\nd0,가\nd7,나\n", encoding="utf-8")
    pred, ref = str(tmp_path / "pred.csv"), str(tmp_path / "ref.csv")
    done = run_cli("--pred", pred, "--ref", ref, "--tokenizer", "whitespace")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and "d1" in errors[0] and "d7" in errors[1]


def test_cli_help_names_every_flag() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for flag in ("--pred", "--ref", "--tokenizer", "--out", "mecab", "kiwi", "whitespace", "all"):
        assert flag in done.stdout


def test_a_predictions_file_with_a_stray_quote_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    """pandas silently merged the rows after a stray quote; the strict reader names the file and line, exit 2."""
    ref_path = REPO_ROOT / "data" / "debug" / "dev.csv"
    (tmp_path / "pred.csv").write_text('fname,summary\ndev_0,"요약이다\ndev_1,둘\ndev_2,셋\n', encoding="utf-8")
    done = run_cli("--pred", str(tmp_path / "pred.csv"), "--ref", str(ref_path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and f"{tmp_path / 'pred.csv'}: line" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_fnames_with_spaces_at_either_end_are_matched_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("fname,summary\nd0,가 나\nd1,다 라\n", encoding="utf-8")
    (tmp_path / "pred.csv").write_text('fname,summary\n" d0",가 나\nd1 ,다 라\n', encoding="utf-8")
    done = run_cli("--pred", str(tmp_path / "pred.csv"), "--ref", str(tmp_path / "ref.csv"), "--tokenizer", "whitespace")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["n"] == 2
    assert (f"{tmp_path / 'pred.csv'}: 2 fname(s) have spaces at either end (' d0', 'd1 '); matched without them "
            "here, but the leaderboard matches fnames exactly") in done.stderr


def test_a_nul_byte_or_escape_code_never_reaches_the_terminal_raw(tmp_path: Path) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text("fname,summary\nd0,가\n", encoding="utf-8")
    lock = tmp_path / "~$pred.csv"  # what Excel leaves beside an open file: a name, then NUL padding
    lock.write_bytes(b"fname,sum\x00mary\nd0,\x00\x00\x00\n")
    done = run_cli("--pred", str(lock), "--ref", str(ref), "--tokenizer", "whitespace")
    assert done.returncode == 2 and "\x00" not in done.stderr
    assert f"error: {lock}: line 1: the header holds a NUL byte" in done.stderr
    (tmp_path / "pred.csv").write_text("fname,summary\nd0,가\nd\x1b[2J7,나\n", encoding="utf-8")
    done = run_cli("--pred", str(tmp_path / "pred.csv"), "--ref", str(ref), "--tokenizer", "whitespace")
    assert done.returncode == 2 and "\x1b" not in done.stderr
    assert "1 fname(s) not in" in done.stderr and "'d\\x1b[2J7'" in done.stderr
