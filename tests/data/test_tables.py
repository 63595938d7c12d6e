"""Tests of the shared CSV rule-table loader."""
from __future__ import annotations

from pathlib import Path

import pytest

from src.data.tables import read_rule_table
from src.utils.errors import UserError


def test_rows_keep_line_numbers_skip_blank_lines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\ufeffwrong,right,note\n됬,됐, a note \n\n,,\n몇일,며칠,\n", encoding="utf-8")
    rows = read_rule_table(path, ("wrong", "right"), ("note",))
    assert rows == [(2, {"wrong": "됬", "right": "됐", "note": " a note "}),
                    (5, {"wrong": "몇일", "right": "며칠", "note": ""})]


def test_optional_column_may_be_absent(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("pattern,replacement\na,b\n", encoding="utf-8")
    assert read_rule_table(path, ("pattern", "replacement"), ("scope",)) == [
        (2, {"pattern": "a", "replacement": "b", "scope": ""})]


def test_header_problems_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("pattern,replace,comment\na,b,c\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        read_rule_table(path, ("pattern", "replacement"))
    assert len(err.value.problems) == 3
    assert all(str(path) in problem for problem in err.value.problems)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        read_rule_table(tmp_path / "none.csv", ("a",))


def test_a_stray_quote_that_would_merge_rules_is_refused_naming_the_line(tmp_path: Path) -> None:
    """csv.DictReader read this as two rules, the second swallowing the third; the strict reader refuses it."""
    path = tmp_path / "t.csv"
    path.write_text('wrong,right,note\n됬,됐,"a note\n몇일,며칠,x\n어의,어이,y\n', encoding="utf-8")
    with pytest.raises(UserError) as err:
        read_rule_table(path, ("wrong", "right"), ("note",))
    assert any(f"{path}: line" in p for p in err.value.problems)
    path.write_text("wrong,right,note\n됬,됐,a,extra\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2: 4 fields where the header has 3"):
        read_rule_table(path, ("wrong", "right"), ("note",))
