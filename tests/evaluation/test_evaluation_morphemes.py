"""Morpheme tokenization: particles split off, speaker tags and masks kept whole."""
from __future__ import annotations

from src.evaluation import morpheme_tokens, score_texts
from src.evaluation.morphemes import get_kiwi


def test_speaker_tags_and_masks_stay_single_tokens() -> None:
    text = "#Person1#가 #Person2#에게 #PhoneNumber#로 전화하라고 했고, #DateAndTime#에 #Address#로 갑니다."
    tokens = morpheme_tokens([text])[0]
    for tag in ("#Person1#", "#Person2#", "#PhoneNumber#", "#DateAndTime#", "#Address#"):
        assert tag in tokens
    assert "가" in tokens and "에게" in tokens  # the particles are separate morphemes
    assert not any(t.startswith("#") and t not in {"#Person1#", "#Person2#", "#PhoneNumber#",
                                                    "#DateAndTime#", "#Address#"} for t in tokens)


def test_particle_difference_scores_higher_with_morphemes() -> None:
    hyp = ["#Person2#는 의사에게 증상을 설명합니다."]
    ref = [["#Person2#가 의사한테 증상이 설명합니다."]]
    kiwi, whitespace = score_texts(hyp, ref, "kiwi"), score_texts(hyp, ref, "whitespace")
    assert kiwi["final"] > whitespace["final"]
    for key in ("rouge1", "rouge2", "rougeL"):
        assert kiwi[key] > whitespace[key]


def test_kiwi_is_loaded_once_per_process() -> None:
    assert get_kiwi() is get_kiwi()


def test_duplicates_and_empty_texts_keep_their_positions() -> None:
    tokens = morpheme_tokens(["책을 읽다", "", "책을 읽다"])
    assert tokens[0] == tokens[2] and tokens[1] == []
