"""Table-driven tests of the denoise rules in docs/denoise_rules.csv on real-looking lines."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from src.data.preprocess.denoise import DEFAULT_RULES_PATH, denoise_frame, denoise_text, load_rules
from src.utils.errors import UserError
from tests.conftest import need_shared

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data" / "dialogsum-ko"
TURN = re.compile(r"#Person\d+#: \S.*")
MASK = re.compile(r"#[A-Za-z]+#")


@pytest.fixture(scope="module")
def rules():
    return load_rules(DEFAULT_RULES_PATH)


# (noisy dialogue, expected clean dialogue, rule that must be counted)
DIALOGUE_CASES = [
    ("#Person1#: 안녕하세요, 예약하셨나요?\\n#Person2#: 네, 7시에 두 명으로 했어요.",
     "#Person1#: 안녕하세요, 예약하셨나요?\n#Person2#: 네, 7시에 두 명으로 했어요.", "literal_backslash_n"),
    ("#Person1#: 몇 시에 문 열어요?\\r\\n#Person2#: 아침 9시에 열어요.",
     "#Person1#: 몇 시에 문 열어요?\n#Person2#: 아침 9시에 열어요.", "literal_backslash_n"),
    ("#Person1#: 이 버스 시청 가나요?<br>#Person2#: 네, 다섯 정거장 가시면 돼요.",
     "#Person1#: 이 버스 시청 가나요?\n#Person2#: 네, 다섯 정거장 가시면 돼요.", "br_tag"),
    ("#Person1#: 계산해 주세요. <BR/>\n#Person2#: 카드로 하시겠어요?",
     "#Person1#: 계산해 주세요.\n#Person2#: 카드로 하시겠어요?", "br_tag"),
    ("#Person1#: 여보세요?\r\n#Person2#: 네, 민수예요.", "#Person1#: 여보세요?\n#Person2#: 네, 민수예요.", "crlf_newline"),
    ("#Person 1#: 주문하시겠어요?\n#Person2#: 비빔밥 하나 주세요.",
     "#Person1#: 주문하시겠어요?\n#Person2#: 비빔밥 하나 주세요.", "speaker_tag_variant"),
    ("#Person1#: 얼마예요?\n# Person2#: 만 원입니다.", "#Person1#: 얼마예요?\n#Person2#: 만 원입니다.", "speaker_tag_variant"),
    ("#person1#: 어디 가세요?\n#Person2#: 병원에 가요.", "#Person1#: 어디 가세요?\n#Person2#: 병원에 가요.", "speaker_tag_variant"),
    ("#Person1#: 잠깐만요.\n#PERSON2 #: 네, 기다릴게요.", "#Person1#: 잠깐만요.\n#Person2#: 네, 기다릴게요.", "speaker_tag_variant"),
    ("Person1: 안녕, 오랜만이야.\n#Person2#: 그러게, 잘 지냈어?",
     "#Person1#: 안녕, 오랜만이야.\n#Person2#: 그러게, 잘 지냈어?", "speaker_tag_missing_hash"),
    ("#Person1#: 배고프다.\n#Person2# 나도. 라면 먹을래?", "#Person1#: 배고프다.\n#Person2#: 나도. 라면 먹을래?", "turn_tag_colon"),
    ("#Person1#:내일 몇 시에 만나?\n#Person2# : 3시 어때?", "#Person1#: 내일 몇 시에 만나?\n#Person2#: 3시 어때?", "turn_tag_colon"),
    ("#Person1#: 뭐 먹을래? #Person2#: 김밥 먹자.", "#Person1#: 뭐 먹을래?\n#Person2#: 김밥 먹자.", "inline_turn_split"),
    ("#Person1#: 시험 잘 봤어?\n#Person2#: ㅋㅋㅋ 완전 망했어.", "#Person1#: 시험 잘 봤어?\n#Person2#: 완전 망했어.", "jamo_run"),
    ("#Person1#: 고마워ㅎㅎ 다음에 밥 살게.\n#Person2#: 좋아.", "#Person1#: 고마워 다음에 밥 살게.\n#Person2#: 좋아.", "jamo_run"),
    ("#Person1#: 강아지가 아파 ㅠㅠ\n#Person2#: 병원 가 봐.", "#Person1#: 강아지가 아파\n#Person2#: 병원 가 봐.", "jamo_run"),
    ("#Person1#: 이거   얼마예요?\n#Person2#: 오천 원이에요.", "#Person1#: 이거 얼마예요?\n#Person2#: 오천 원이에요.", "repeated_space"),
    ("#Person1#: 좋아요. \n#Person2#: 그럼 내일 봬요.  ", "#Person1#: 좋아요.\n#Person2#: 그럼 내일 봬요.", "trailing_space"),
    ("#Person1#: 네.\n\n#Person2#: 아니요, 괜찮아요.", "#Person1#: 네.\n#Person2#: 아니요, 괜찮아요.", "blank_lines"),
    ("#Person1#: 잠시만\u00a0기다려 주세요.\n#Person2#: 네.", "#Person1#: 잠시만 기다려 주세요.\n#Person2#: 네.", "nbsp_space"),
    ("\n#Person1#: 누구세요?\n#Person2#: 택배입니다.\n", "#Person1#: 누구세요?\n#Person2#: 택배입니다.", "strip_edges"),
]


@pytest.mark.parametrize(("noisy", "clean", "rule"), DIALOGUE_CASES)
def test_dialogue_rule(rules, noisy: str, clean: str, rule: str) -> None:
    text, counts = denoise_text(noisy, rules)
    assert text == clean
    assert counts[rule] >= 1
    assert not any(key.startswith("reverted:") for key in counts)


@pytest.mark.parametrize(("noisy", "clean", "rule"), DIALOGUE_CASES)
def test_clean_text_is_a_fixed_point(rules, noisy: str, clean: str, rule: str) -> None:
    text, counts = denoise_text(clean, rules)
    assert text == clean
    assert counts == Counter()


CLEAN_LINES = [
    "#Person1#: 제 번호는 #PhoneNumber#이고 주소는 #Address#예요.\n#Person2#: 확인했습니다.",
    "#Person1#: #PersonName# 씨, #DateAndTime#에 뵙겠습니다.\n#Person2#: 네, 이메일은 #Email#로 보내 주세요.",
    "#Person1#: 회의 시작할까요?\n#Person2#: 네.\n#Person3#: 저도 들어갈게요.",
    "#Person1#: 가격은 5,500원이에요.\n#Person2#: Mr. Kim이 계산할 거예요.",
]


@pytest.mark.parametrize("clean", CLEAN_LINES)
def test_masks_and_correct_tags_are_never_changed(rules, clean: str) -> None:
    assert denoise_text(clean, rules) == (clean, Counter())


def test_masks_survive_noisy_neighbours(rules) -> None:
    noisy = "#Person 1#: 연락처는  #PhoneNumber#예요.<br>#Person2#:주소는 #Address# 맞죠?"
    text, _ = denoise_text(noisy, rules)
    assert text == "#Person1#: 연락처는 #PhoneNumber#예요.\n#Person2#: 주소는 #Address# 맞죠?"


SUMMARY_CASES = [
    ("#Person1#은 #Person2#에게 길을 묻습니다.", "#Person1#은 #Person2#에게 길을 묻습니다.", None),
    ("#Person 1#은 #person2#에게 길을 묻습니다.", "#Person1#은 #Person2#에게 길을 묻습니다.", "speaker_tag_variant"),
    ("#Person2#는  영화를   예매합니다. ", "#Person2#는 영화를 예매합니다.", "repeated_space"),
]


@pytest.mark.parametrize(("noisy", "clean", "rule"), SUMMARY_CASES)
def test_summary_rules_do_not_add_turn_colons(rules, noisy: str, clean: str, rule: str | None) -> None:
    text, counts = denoise_text(noisy, rules, column="summary")
    assert text == clean
    if rule:
        assert counts[rule] >= 1


def test_denoise_frame_counts_and_skips_missing_columns(rules) -> None:
    df = pd.DataFrame({
        "fname": ["test_0", "test_1"],
        "dialogue": ["#Person 1#: 안녕?\\n#Person2#: 안녕!", "#Person1#: 뭐 해?<br>#Person2#: 공부해."],
    })
    out, counts = denoise_frame(df, rules)  # no summary column in the test split
    assert list(out["dialogue"]) == ["#Person1#: 안녕?\n#Person2#: 안녕!", "#Person1#: 뭐 해?\n#Person2#: 공부해."]
    assert counts == {"speaker_tag_variant": 1, "literal_backslash_n": 1, "br_tag": 1}
    assert df["dialogue"][0].startswith("#Person 1#")  # input frame untouched


def test_denoise_frame_on_debug_train_fixes_every_noisy_row(rules) -> None:
    df = pd.read_csv(REPO / "data" / "debug" / "train.csv")
    out, counts = denoise_frame(df, rules)
    for family in ("literal_backslash_n", "br_tag", "speaker_tag_variant", "turn_tag_colon", "jamo_run",
                   "repeated_space"):
        assert counts.get(family, 0) > 0, family
    for dialogue in out["dialogue"]:
        assert all(TURN.fullmatch(line) for line in dialogue.split("\n"))
    assert list(out["summary"]) == list(df["summary"])  # the debug summaries are clean


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_regex_names_file_row_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "pattern,replacement,note\n\\s+, ,space\n(ㅋ+,,broken\n")
    with pytest.raises(UserError) as err:
        load_rules(path)
    message = str(err.value)
    assert str(path) in message and "line 3" in message and "'pattern'" in message


def test_all_bad_rows_are_reported_together(tmp_path: Path) -> None:
    path = _write(tmp_path, "pattern,replacement,note,scope\n(a),\\2,bad_group,all\nb,c,,all\nd,e,bad_scope,turns\n")
    with pytest.raises(UserError) as err:
        load_rules(path)
    problems = err.value.problems
    assert len(problems) == 3
    assert "'replacement'" in problems[0] and "'note'" in problems[1] and "'scope'" in problems[2]


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing column 'note'"):
        load_rules(_write(tmp_path, "pattern,replacement\na,b\n"))
    with pytest.raises(UserError, match="not found"):
        load_rules(tmp_path / "nope.csv")


def test_a_rule_that_would_delete_a_mask_is_reverted_and_counted(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, "pattern,replacement,note\n#PhoneNumber#,전화번호,careless\n"))
    text = "#Person1#: 번호는 #PhoneNumber#예요.\n#Person2#: 네."
    assert denoise_text(text, rules) == (text, Counter({"reverted:careless": 1}))


@pytest.mark.parametrize("split", ["dev", "test"])
def test_real_data_keeps_masks_tags_and_turn_format(rules, split: str) -> None:
    need_shared(SHARED_DATA)
    df = pd.read_csv(SHARED_DATA / f"{split}.csv")
    out, counts = denoise_frame(df, rules)
    assert not any(key.startswith("reverted:") for key in counts)
    for before, after in zip(df["dialogue"], out["dialogue"]):
        assert Counter(MASK.findall(before)) == Counter(MASK.findall(after))
        assert Counter(re.findall(r"#Person\d+#", before)) == Counter(re.findall(r"#Person\d+#", after))
        assert all(TURN.fullmatch(line) for line in after.split("\n"))
    again, counts_again = denoise_frame(out, rules)
    assert again.equals(out) and counts_again == {}
