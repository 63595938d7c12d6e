"""The one JSONL journal: durable appends, a torn last line skipped and then closed off."""
from __future__ import annotations

from pathlib import Path

from src.utils.journal import JsonlJournal


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b", "te', encoding="utf-8")
    journal = JsonlJournal(path)
    assert journal.read() == ([{"key": "a"}], 1)
    journal.append([{"key": "c"}])
    assert journal.read() == ([{"key": "a"}, {"key": "c"}], 1)


def test_rewrite_and_remove(tmp_path: Path) -> None:
    journal = JsonlJournal(tmp_path / "j.jsonl")
    journal.append([{"k": 1}, {"k": 2}])
    journal.rewrite([{"k": 2}])
    assert journal.read() == ([{"k": 2}], 0)
    journal.rewrite([])
    assert not journal.path.exists() and journal.read() == ([], 0)
