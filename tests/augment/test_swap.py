"""Table-driven tests of speaker swap with particle repair."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from src.augment.swap import particle_for, swap_frame, swap_speakers, tag_final
from src.utils.errors import UserError

REPO = Path(__file__).resolve().parents[2]

# (text, swapped): every particle pair in both directions, in summary-style sentences.
PARTICLE_CASES = [
    ("#Person1#은 영화표를 예매합니다.", "#Person2#는 영화표를 예매합니다."),  # 은 -> 는
    ("#Person2#는 회의에 늦었습니다.", "#Person1#은 회의에 늦었습니다."),  # 는 -> 은
    ("#Person1#이 먼저 도착합니다.", "#Person2#가 먼저 도착합니다."),  # 이 -> 가
    ("결국 #Person2#가 저녁을 삽니다.", "결국 #Person1#이 저녁을 삽니다."),  # 가 -> 이
    ("#Person2#는 #Person1#을 파티에 초대합니다.", "#Person1#은 #Person2#를 파티에 초대합니다."),  # 을 -> 를
    ("의사는 #Person2#를 진찰합니다.", "의사는 #Person1#을 진찰합니다."),  # 를 -> 을
    ("#Person1#과 #Person2#는 주말 계획을 세웁니다.", "#Person2#와 #Person1#은 주말 계획을 세웁니다."),  # 과 -> 와
    ("#Person3#은 #Person2#와 함께 갑니다.", "#Person3#은 #Person1#과 함께 갑니다."),  # 와 -> 과
    # 으로/로: 1 reads 일 (final ㄹ) and takes 로, like 서울로; a wrong 으로 is repaired too.
    ("#Person2#로부터 연락이 옵니다.", "#Person1#로부터 연락이 옵니다."),
    ("#Person1#으로 착각합니다.", "#Person2#로 착각합니다."),
    ("#Person1#이랑 #Person2#랑 같이 가요.", "#Person2#랑 #Person1#이랑 같이 가요."),
    ("#Person2#예요? 아니요, #Person1#이에요.", "#Person1#이에요? 아니요, #Person2#예요."),
    ("#Person1#에게 #Person2#의 번호를 알려 줍니다.", "#Person2#에게 #Person1#의 번호를 알려 줍니다."),  # no pair
]


@pytest.mark.parametrize(("text", "swapped"), PARTICLE_CASES)
def test_particles_are_repaired(text: str, swapped: str) -> None:
    assert swap_speakers(text) == swapped


@pytest.mark.parametrize(("text", "swapped"), PARTICLE_CASES[:9] + PARTICLE_CASES[10:])
def test_swap_is_an_involution_on_well_formed_text(text: str, swapped: str) -> None:
    assert swap_speakers(swapped) == text


@pytest.mark.parametrize(("text", "swapped"), [
    # 3 reads 삼 (final ㅁ): 으로; 1 reads 일 (ㄹ): 로, in both directions.
    ("#Person1#로 정합니다.", "#Person3#으로 정합니다."),
    ("#Person3#으로 정합니다.", "#Person1#로 정합니다."),
    ("#Person3#은 #Person1#에게 말합니다.", "#Person1#은 #Person3#에게 말합니다."),
])
def test_other_tag_pairs(text: str, swapped: str) -> None:
    assert swap_speakers(text, "#Person1#", "#Person3#") == swapped


def test_dialogue_person3_and_masks_untouched() -> None:
    dialogue = ("#Person1#: 안녕하세요, #PersonName# 씨 계세요?\n"
                "#Person2#: 네, 제 번호는 #PhoneNumber#이에요.\n"
                "#Person3#: 저는 #Address#에 살아요. #Email#로 연락 주세요.\n"
                "#Person1#: #DateAndTime#에 다시 올게요.")
    assert swap_speakers(dialogue) == (
        "#Person2#: 안녕하세요, #PersonName# 씨 계세요?\n"
        "#Person1#: 네, 제 번호는 #PhoneNumber#이에요.\n"
        "#Person3#: 저는 #Address#에 살아요. #Email#로 연락 주세요.\n"
        "#Person2#: #DateAndTime#에 다시 올게요.")


@pytest.mark.parametrize(("tag", "final"), [
    ("#Person1#", "ㄹ"), ("#Person2#", None), ("#Person3#", "ㅁ"), ("#Person4#", None),
    ("#Person6#", "ㄱ"), ("#Person10#", "ㅂ"), ("#Person11#", "ㄹ"), ("#Speaker#", "?"),
])
def test_tag_final(tag: str, final: str | None) -> None:
    assert tag_final(tag) == final


def test_particle_for_unknown_tag_keeps_particle() -> None:
    assert particle_for("#Speaker#", "은") == "은"
    assert particle_for("#Person2#", "은") == "는"


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "fname": ["train_0", "train_1", "train_2", "train_3"],
        "dialogue": ["#Person1#: 안녕?\n#Person2#: 안녕!", "#Person1#: 혼잣말이야.",
                     "#Person1#: 뭐 해?\n#Person2#: 공부해.\n#Person3#: 나도.", "#Person2#: 누구세요?\n#Person1#: 저예요."],
        "summary": ["#Person1#과 #Person2#는 인사합니다.", "#Person1#은 혼잣말을 합니다.",
                    "#Person2#는 공부하고 #Person3#도 공부합니다.", "#Person1#이 #Person2#를 찾아옵니다."],
        "topic": ["인사", "혼잣말", "공부", "방문"],
    })


def test_swap_frame_rows_and_provenance() -> None:
    df = _frame()
    out = swap_frame(df, 10, seed=0)
    assert list(out["fname"]) == ["train_0_swap", "train_2_swap", "train_3_swap"]  # train_1 has one speaker
    assert list(out["parent_fname"]) == ["train_0", "train_2", "train_3"]
    assert set(out["source"]) == {"swap"}
    assert out["summary"][2] == "#Person2#가 #Person1#을 찾아옵니다."
    assert out["dialogue"][0] == "#Person2#: 안녕?\n#Person1#: 안녕!"
    assert list(out["topic"]) == ["인사", "공부", "방문"]
    assert df["fname"][0] == "train_0" and "source" not in df.columns  # input untouched


def test_swap_frame_size_and_determinism() -> None:
    df = pd.read_csv(REPO / "data" / "debug" / "train.csv")
    first = swap_frame(df, 0.25, seed=7)
    assert len(first) == 12  # all 48 debug dialogues have both speakers
    assert first.equals(swap_frame(df, 0.25, seed=7))
    assert list(first["fname"]) != list(swap_frame(df, 0.25, seed=8)["fname"])
    assert len(swap_frame(df, 0, seed=0)) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, -0.1, True])
def test_swap_frame_rejects_bad_sizes(bad) -> None:
    with pytest.raises(UserError, match="speaker swap"):
        swap_frame(_frame(), bad, seed=0)
