"""Scripts no reference uses are blocked at generation; a last sentence the cap cut off is dropped."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from src.config import BLOCKABLE_SCRIPTS
from src.inference.constraints import bad_words_ids
from src.utils.patterns import SCRIPTS, script_pattern
from src.inference.postprocess import drop_unfinished, postprocess
from tests.conftest import SHARED_DATA, need_shared


def test_the_config_and_the_blocker_know_the_same_scripts() -> None:
    assert tuple(SCRIPTS) == BLOCKABLE_SCRIPTS


def test_no_dev_reference_uses_a_blocked_script() -> None:
    dev = pd.read_csv(need_shared(SHARED_DATA / "dialogsum-ko" / "dev.csv"), dtype=str)
    pattern = script_pattern(BLOCKABLE_SCRIPTS)
    assert not any(pattern.search(s) for s in dev["summary"])
    assert all(s.strip().endswith(".") for s in dev["summary"]), "every reference ends with a full stop"


@pytest.mark.parametrize("name", ["qwen2.5-instruct", "llama-3.2-instruct"])
def test_bad_words_cover_han_tokens_and_spare_hangul(shared_tokenizers: Path, name: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(shared_tokenizers / name)
    blocked = {ids[0] for ids in bad_words_ids(tok, ("han", "kana", "cyrillic"))}
    assert len(blocked) > 1000
    for text in ("中国", "カタカナ", "Москва"):
        assert set(tok(text, add_special_tokens=False)["input_ids"]) & blocked, text
    hangul = tok("#Person1#은 친구에게 전화한다.", add_special_tokens=False)["input_ids"]
    assert not set(hangul) & blocked
    assert bad_words_ids(tok, ()) == []


@pytest.mark.parametrize("text, expected", [
    ("#Person1#은 표를 산다. #Person2#는 그", "#Person1#은 표를 산다."),
    ("#Person1#은 표를 산다.", "#Person1#은 표를 산다."),
    ("끝나지 않은 한 문장", "끝나지 않은 한 문장"),  # nothing complete to keep: left as it is
    ("3.5 km를 걷는다. 그리고", "3.5 km를 걷는다."),
])
def test_an_unfinished_last_sentence_is_dropped(text: str, expected: str) -> None:
    assert drop_unfinished(text) == expected
    assert postprocess(text, cut_unfinished=False) == re.sub(r"\s+", " ", text).strip()
