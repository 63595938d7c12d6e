"""The speaker-tag and mask patterns of DialogSum-ko, in one place for every module that needs them.

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
# the masks the competition data uses; generated text may only use these
KNOWN_MASKS = frozenset({"#PhoneNumber#", "#Address#", "#DateAndTime#", "#PersonName#", "#Email#", "#CarNumber#",
                         "#PassportNumber#", "#SSN#", "#CardNumber#", "#DateOfBirth#"})


def masks_in(text: str) -> list[str]:
    """The distinct mask tokens of ``text`` (speaker tags excluded), sorted."""
    return sorted(set(MASK.findall(text)))


def strip_tags_and_masks(text: str) -> str:
    """``text`` with every speaker tag and mask replaced by a space."""
    return MASK.sub(" ", SPEAKER_TAG.sub(" ", text))
