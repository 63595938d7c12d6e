"""read_table reads every supported format as text; check_frame names file, row and column."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from src.data.loading import check_frame, first_row_number, load_split, read_table
from src.utils.errors import UserError

ROWS = [{"fname": "a_0", "dialogue": "#Person1#: 안녕", "summary": "인사", "n": 3},
        {"fname": "a_1", "dialogue": "#Person1#: 잘 가", "summary": "작별", "n": 4}]


def write(path: Path, rows: list[dict]) -> Path:
    df = pd.DataFrame(rows)
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    else:
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet"])
def test_every_format_reads_as_text(tmp_path: Path, suffix: str) -> None:
    df = read_table(write(tmp_path / f"t{suffix}", ROWS))
    assert df[["fname", "dialogue", "summary"]].to_dict("records") == [
        {k: r[k] for k in ("fname", "dialogue", "summary")} for r in ROWS]
    assert df["n"].tolist() == ["3", "4"], "numbers stay text so ids like 007 survive"


def test_bom_csv_and_bad_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert list(read_table(path).columns[:3]) == ["fname", "dialogue", "summary"]
    path.write_bytes(path.read_bytes() + "깨짐".encode("cp949"))
    with pytest.raises(UserError, match=r"t\.csv: line 4: not UTF-8"):
        read_table(path)


def test_unparsable_jsonl_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"fname": "x"}\n{not json\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.jsonl: cannot be parsed as \.jsonl"):
        read_table(path)


def test_check_frame_numbers_rows_by_format_and_names_mapped_columns() -> None:
    df = pd.DataFrame({"fname": ["x", "x", "y"], "dialogue": ["a", "b", " "], "summary": ["s", "s", "s"]})
    problems = check_frame(df, "d.jsonl", "train", first_row=1, names={"fname": "id", "dialogue": "input"})
    assert problems == ["d.jsonl: row 2 (id x): duplicate fname; ids must be unique",
                        "d.jsonl: row 3 (fname y): column input is empty; fill it or drop the row"]
    assert first_row_number(Path("a.csv")) == 2 and first_row_number(Path("a.jsonl")) == 1


def test_check_frame_test_split_needs_no_summary() -> None:
    df = pd.DataFrame({"fname": ["t0"], "dialogue": ["hi"]})
    assert check_frame(df, "test.csv", "test") == []
    assert "missing column(s) summary" in check_frame(df, "dev.csv", "dev")[0]


def test_load_split_strips_ids_and_reports_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "dev.csv", [{"fname": " d0 ", "dialogue": "hi", "summary": "s"}])
    assert load_split(path, "dev")["fname"].tolist() == ["d0"]
    bad = write(tmp_path / "bad.csv", [{"fname": "", "dialogue": "", "summary": "s"}])
    with pytest.raises(UserError) as err:
        load_split(bad, "dev")
    assert len(err.value.problems) == 2 and all("bad.csv: row 2" in p for p in err.value.problems)
