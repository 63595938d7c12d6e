"""Tests of the table-driven typo fixer and the shipped docs/typo_rules.csv."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from src.data.preprocess.typo_fix import DEFAULT_TYPOS_PATH, fix_typos_frame, fix_typos_text, load_typos
from src.utils.errors import UserError
from tests.conftest import need_shared

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data" / "dialogsum-ko"


@pytest.fixture(scope="module")
def table():
    return load_typos(DEFAULT_TYPOS_PATH)


CASES = [
    ("#Person1#: 예약 다 됬어요?", "#Person1#: 예약 다 됐어요?", "됬->됐"),
    ("#Person2#: 출발까지 몇일 남았지?", "#Person2#: 출발까지 며칠 남았지?", "몇일->며칠"),
    ("#Person1#: 거기 들어가면 않돼.", "#Person1#: 거기 들어가면 안 돼.", "않돼->안 돼"),
    ("#Person2#: 지금은 통화가 않되요.", "#Person2#: 지금은 통화가 안 돼요.", "않되요->안 돼요"),
    ("#Person1#: 지갑을 잃어버렸어. 어떻해?", "#Person1#: 지갑을 잃어버렸어. 어떡해?", "어떻해->어떡해"),
    ("#Person2#: 내가 설거지 할께.", "#Person2#: 내가 설거지 할게.", "ㄹ께->ㄹ게"),
    ("#Person1#: 금방 갈께요. 조금만 기다려 줄께?", "#Person1#: 금방 갈게요. 조금만 기다려 줄게?", "ㄹ께->ㄹ게"),
    ("#Person2#: 오랫만이야! 왠일로 전화했어?", "#Person2#: 오랜만이야! 웬일로 전화했어?", "오랫만->오랜만"),
]


@pytest.mark.parametrize(("wrong", "right", "note"), CASES)
def test_shipped_table_fixes(table, wrong: str, right: str, note: str) -> None:
    text, counts = fix_typos_text(wrong, table)
    assert text == right
    assert counts[note] >= 1


@pytest.mark.parametrize("clean", [
    "#Person1#: 하지 않되, 조심해서 해.",  # -지 않되 is a valid connective: must stay
    "#Person2#: 함께 가요. 며칠 걸려요?",
    "#Person1#: #PersonName# 씨, 어떻게 해야 돼요?",
])
def test_correct_text_is_untouched(table, clean: str) -> None:
    assert fix_typos_text(clean, table) == (clean, Counter())


def test_frame_counts_and_missing_cells(table) -> None:
    df = pd.DataFrame({"dialogue": ["#Person1#: 다 됬다!", None], "summary": ["#Person1#은 몇일 쉽니다.", "ok"]})
    out, counts = fix_typos_frame(df, table, ("dialogue", "summary", "topic"))
    assert out["dialogue"][0] == "#Person1#: 다 됐다!" and pd.isna(out["dialogue"][1])
    assert out["summary"][0] == "#Person1#은 며칠 쉽니다."
    assert counts == {"됬->됐": 1, "몇일->며칠": 1}


def test_debug_train_has_typos_to_fix(table) -> None:
    df = pd.read_csv(REPO / "data" / "debug" / "train.csv")
    _, counts = fix_typos_frame(df, table, ("dialogue", "summary"))
    assert sum(counts.values()) >= 3


@pytest.mark.parametrize(("csv_text", "fragment"), [
    ("wrong,right,note\n,됐,empty\n", "column 'wrong'"),
    ("wrong,right,note\n됐,됐,same\n", "same as 'wrong'"),
    ("wrong,right,note\n됐,됐다,loop\n", "idempotent"),
    ("wrong,note\n됬,x\n", "missing column 'right'"),
])
def test_bad_tables_raise_user_error(tmp_path: Path, csv_text: str, fragment: str) -> None:
    path = tmp_path / "typos.csv"
    path.write_text(csv_text, encoding="utf-8")
    with pytest.raises(UserError, match=fragment):
        load_typos(path)


def test_shipped_table_does_not_touch_clean_competition_text(table) -> None:
    need_shared(SHARED_DATA)
    frames = [pd.read_csv(SHARED_DATA / f"{split}.csv") for split in ("dev", "test")]
    for df in frames:
        _, counts = fix_typos_frame(df, table, ("dialogue", "summary"))
        assert counts == {}
