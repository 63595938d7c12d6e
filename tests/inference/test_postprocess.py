"""Post-processing of raw generations: labels, whitespace, second turns, speaker tags, fallback."""
from __future__ import annotations

import pytest

from src.inference.postprocess import PLACEHOLDER, fallback_summary, postprocess


@pytest.mark.parametrize("raw,expected", [
    ("  #Person1#은 책을 삽니다.  ", "#Person1#은 책을 삽니다."),
    ("요약: #Person1#은   책을\n삽니다.", "#Person1#은 책을 삽니다."),
    ("요약 ： 두 사람이 만납니다.", "두 사람이 만납니다."),
    ("Summary: They meet.", "They meet."),
    ("**요약:** 두 사람이 만납니다.", "두 사람이 만납니다."),
    ("### Response:\n두 사람이 만납니다.", "두 사람이 만납니다."),
    ("두 사람이 만납니다.\n### Instruction:\n다음 대화를", "두 사람이 만납니다."),
    ("두 사람이 만납니다.\nuser: 또 요약해 줘", "두 사람이 만납니다."),
    ("#Person2#는 길을 묻습니다.\n#Person1#: 저쪽이에요.", "#Person2#는 길을 묻습니다."),
    ("#Person2#는 길을 묻습니다.\n요약: 다시", "#Person2#는 길을 묻습니다."),
    ("#Person1#과 #Person2#는 #PhoneNumber#로 연락합니다.", "#Person1#과 #Person2#는 #PhoneNumber#로 연락합니다."),
    ("요약은 짧게 씁니다.", "요약은 짧게 씁니다."),
    ("   \n ", ""),
])
def test_postprocess(raw: str, expected: str) -> None:
    assert postprocess(raw) == expected


def test_fallback_summary() -> None:
    dialogue = "  #Person1#: 안녕하세요,   반가워요.\n#Person2#: 네."
    assert fallback_summary(dialogue, "first_turn") == "#Person1#: 안녕하세요, 반가워요."
    assert fallback_summary(dialogue, "placeholder") == PLACEHOLDER
    assert fallback_summary("   ", "first_turn") == PLACEHOLDER
