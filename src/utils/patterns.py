"""The speaker-tag and mask patterns of DialogSum-ko, in one place for every module that needs them
(and the scripts generation may block, shared by the fluency check and the decoding constraints).

The data writes speakers as ``#Person1#``, ``#Person2#`` ... and masks personal details as
``#PhoneNumber#``, ``#Address#`` ... (letters only, so a mask never matches a speaker tag). A
dialogue holds one turn per line, ``#PersonN#: text``.
"""
from __future__ import annotations

import re

SPEAKER_TAG = re.compile(r"#Person\d+#")
MASK = re.compile(r"#[A-Za-z]+#")  # no digits, so speaker tags never match
HASH_TOKEN = re.compile(r"#\w+#")  # a tag or a mask: kept whole by tokenizers and scorers
TURN = re.compile(r"^(#Person\d+#): \S")  # a well-formed dialogue line
TAG_COLON = re.compile(r"^\**\s*(#Person\d+#)\s*\**\s*[:：]\s*")  # a turn's opening tag, maybe in **bold**
# the character ranges of the scripts ``inference.block_scripts`` may block (no reference uses them)
SCRIPTS = {
    "han": r"\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "kana": r"\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "cyrillic": r"\u0400-\u052f",
}
# the masks the competition data uses; generated text may only use these
KNOWN_MASKS = frozenset({"#PhoneNumber#", "#Address#", "#DateAndTime#", "#PersonName#", "#Email#", "#CarNumber#",
                         "#PassportNumber#", "#SSN#", "#CardNumber#", "#DateOfBirth#"})


def masks_in(text: str) -> list[str]:
    """The distinct mask tokens of ``text`` (speaker tags excluded), sorted."""
    return sorted(set(MASK.findall(text)))


def script_pattern(scripts: tuple[str, ...]) -> re.Pattern[str]:
    """A character class matching any character of ``scripts``."""
    return re.compile("[" + "".join(SCRIPTS[s] for s in scripts) + "]")


def strip_tags_and_masks(text: str) -> str:
    """``text`` with every speaker tag and mask replaced by a space."""
    return MASK.sub(" ", SPEAKER_TAG.sub(" ", text))
