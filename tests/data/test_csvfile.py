"""Strict CSV reading on the real test set: stray quotes, merged rows, duplicate headers and NUL bytes are refused."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from src.data.loading import read_table
from src.utils.errors import UserError
from tests.conftest import SHARED_DATA, need_shared, run_cli, tmp_paths

TEST_KO = SHARED_DATA / "dialogsum-ko" / "test.csv"


@pytest.fixture(scope="module")
def test_csv_text() -> str:
    """The real Korean test CSV as pandas writes it (multi-line dialogues are quoted)."""
    need_shared(TEST_KO)
    return pd.read_csv(TEST_KO).to_csv(index=False)


def problems(path: Path) -> list[str]:
    with pytest.raises(UserError) as err:
        read_table(path)
    return err.value.problems


def test_the_real_file_reads_as_pandas_reads_it(tmp_path: Path, test_csv_text: str) -> None:
    (tmp_path / "t.csv").write_text(test_csv_text, encoding="utf-8")
    ours, theirs = read_table(tmp_path / "t.csv"), pd.read_csv(TEST_KO, dtype=str)
    assert ours.shape == theirs.shape == (499, 2)
    assert ours["dialogue"].tolist() == theirs["dialogue"].tolist()


def test_a_stray_quote_names_its_line(tmp_path: Path, test_csv_text: str) -> None:
    start = test_csv_text.index("\ntest_5,") + len("\ntest_5,")
    (tmp_path / "t.csv").write_text(test_csv_text[:start] + '"' + test_csv_text[start:], encoding="utf-8")
    (line,) = problems(tmp_path / "t.csv")
    assert line.startswith(f"{tmp_path / 't.csv'}: line ") and "stray quote" in line


def test_rows_merged_by_a_quote_are_caught_even_when_the_field_count_fits(tmp_path: Path) -> None:
    path = tmp_path / "own.csv"
    path.write_text('fname,dialogue,summary\nt_1,"Hi there,s1\nt_2,hello,s2\nt_3,bye",s3\nt_4,ok,s4\n', encoding="utf-8")
    assert len(pd.read_csv(path)) == 2, "pandas silently merges t_1..t_3"
    (line,) = problems(path)
    assert "line 2: column dialogue" in line and "'t_2'" in line


def test_duplicate_headers_and_nul_bytes(tmp_path: Path, test_csv_text: str) -> None:
    (tmp_path / "dup.csv").write_text(test_csv_text.replace("fname,dialogue", "fname,fname", 1), encoding="utf-8")
    (line,) = problems(tmp_path / "dup.csv")
    assert "line 1: column 'fname' appears more than once" in line
    (tmp_path / "nul.csv").write_text(test_csv_text.replace("안녕", "안\x00녕", 1), encoding="utf-8")
    (line,) = problems(tmp_path / "nul.csv")
    assert "column dialogue holds a NUL byte" in line


@pytest.mark.slow
def test_a_broken_test_file_stops_the_run_before_any_stage(tmp_path: Path) -> None:
    data = tmp_path / "data"
    debug = Path(__file__).resolve().parents[2] / "data" / "debug"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"{split}.csv").write_bytes((debug / f"{split}.csv").read_bytes())
    text = (debug / "test.csv").read_text(encoding="utf-8")
    (data / "test.csv").write_text(text.replace("fname,dialogue", "fname,dialogue,dialogue", 1), encoding="utf-8")
    res = run_cli(["--debug-small", "--run-name", "bad", f"paths.data_dir={data}", *tmp_paths(tmp_path)])
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "test.csv: line 1: column 'dialogue' appears more than once" in res.stderr
    assert not (tmp_path / "output" / "bad").exists()


def test_a_huge_test_dialogue_is_refused_naming_the_key(tmp_path: Path) -> None:
    from src.config import load_config
    from src.data.sources import load_split_sources

    debug = Path(__file__).resolve().parents[2] / "data" / "debug"
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.csv").write_bytes((debug / f"{split}.csv").read_bytes())
    test = pd.read_csv(tmp_path / "test.csv", dtype=str)
    test.loc[3, "dialogue"] = "#Person1#: " + "가" * 1_000_000
    test.to_csv(tmp_path / "test.csv", index=False)
    cfg = load_config(None, [f"paths.data_dir={tmp_path}"], debug_small=True)
    with pytest.raises(UserError) as err:
        load_split_sources(cfg, "test")
    (line,) = err.value.problems
    assert "row 5" in line and "data.max_dialogue_chars" in line and "1,000,011 characters" in line
