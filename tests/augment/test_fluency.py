"""Tests of the gibberish checks (src.augment.fluency): each signal on hand-made text, then the
thresholds against the 499 real dev pairs and their scrambled copies."""
from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from src.augment import fluency as f
from src.augment.validators import ValidationSettings
from tests.conftest import need_shared

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data" / "dialogsum-ko"
SETTINGS = ValidationSettings()

DIALOGUE = ("#Person1#: 어서 오세요. 찾으시는 옷 있으세요?\n"
            "#Person2#: 네, 겨울 코트를 보고 있어요.\n"
            "#Person1#: 이쪽 회색 코트가 요즘 제일 잘 나가요.\n"
            "#Person2#: 좋네요. 이걸로 살게요.")
SUMMARY = "#Person2#는 겨울 코트를 사러 와서 #Person1#의 추천으로 회색 코트를 산다."


def reversed_text(text: str) -> str:
    """Every turn's text written backwards, the speaker tags kept."""
    return "\n".join(f"{tag}: {body[::-1]}" for tag, _, body in (line.partition(": ") for line in text.split("\n")))


def shuffled(text: str, rng: random.Random) -> str:
    """Every turn's words in a random order, the speaker tags kept."""
    lines = []
    for tag, _, body in (line.partition(": ") for line in text.split("\n")):
        words = body.split()
        rng.shuffle(words)
        lines.append(f"{tag}: {' '.join(words)}")
    return "\n".join(lines)


def dialogue_verdict(text: str) -> tuple[bool, str]:
    return f.check_fluent(text, SETTINGS.min_kiwi_score, SETTINGS.min_sentence_end_share)


def summary_verdict(text: str) -> tuple[bool, str]:
    return f.check_fluent(text, SETTINGS.min_summary_kiwi_score, 0.0, False, "min_summary_kiwi_score")


def test_lines_of_drops_speaker_tags_and_masks() -> None:
    assert f.lines_of("#Person1#: 메일은 #Email#로 주세요.\n\n#Person2#: 네.") == ["메일은  로 주세요.", "네."]


def test_fluent_dialogue_and_summary_are_kept() -> None:
    assert dialogue_verdict(DIALOGUE) == f.KEEP
    assert summary_verdict(SUMMARY) == f.KEEP
    assert f.sentence_end_share(DIALOGUE) == 1.0


def test_reversed_text_is_refused_naming_the_key_it_fell_under() -> None:
    keep, reason = dialogue_verdict(reversed_text(DIALOGUE))
    assert not keep and reason.startswith("gibberish: Kiwi scores")
    assert reason.endswith(f"< augmentation.min_kiwi_score={SETTINGS.min_kiwi_score}")
    keep, reason = summary_verdict(SUMMARY[::-1])
    assert not keep and reason.endswith(f"< augmentation.min_summary_kiwi_score={SETTINGS.min_summary_kiwi_score}")


def test_turns_that_do_not_end_like_sentences_are_refused() -> None:
    fragments = "#Person1#: 겨울 코트를\n#Person2#: 회색 코트가 요즘\n#Person1#: 이걸로 정말"
    assert f.sentence_end_share(fragments) < SETTINGS.min_sentence_end_share
    keep, reason = f.check_fluent(fragments, -100.0, SETTINGS.min_sentence_end_share)
    assert not keep and "of the turns end like a sentence" in reason and "min_sentence_end_share" in reason
    assert f.check_fluent(fragments, -100.0, 0.0) == f.KEEP, "a share of 0 turns the check off"


@pytest.mark.parametrize("intruder", ["会議", "カタカナ", "Привет"])
def test_scripts_no_reference_uses_are_refused(intruder: str) -> None:
    keep, reason = dialogue_verdict(DIALOGUE.replace("겨울", intruder, 1))
    assert not keep and reason.startswith("mixed_script:") and intruder[0] in reason


@pytest.mark.slow
def test_default_thresholds_against_the_real_dev_pairs() -> None:
    """The figures the module docstring quotes: few real texts refused, scrambled ones nearly all."""
    need_shared(SHARED_DATA)
    from src.data.preprocess.denoise import denoise_frame, load_rules

    dev, _ = denoise_frame(pd.read_csv(SHARED_DATA / "dev.csv"), load_rules())
    rng = random.Random(0)
    dialogues, summaries = list(dev["dialogue"]), list(dev["summary"])

    def refused(texts: list[str], verdict) -> float:
        return sum(not verdict(t)[0] for t in texts) / len(texts)

    assert refused(dialogues, dialogue_verdict) <= 0.01
    assert refused(summaries, summary_verdict) == 0.0
    assert refused([reversed_text(d) for d in dialogues], dialogue_verdict) == 1.0
    assert refused([s[::-1] for s in summaries], summary_verdict) == 1.0
    assert refused([shuffled(d, rng) for d in dialogues], dialogue_verdict) >= 0.85
