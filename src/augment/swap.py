"""Speaker-swap augmentation: exchange two speaker tags in dialogue and summary (no API needed).

Korean particles after a tag depend on how the tag is read aloud: ``#Person1#`` reads 일
(final ㄹ), ``#Person2#`` reads 이 (no final consonant), ``#Person3#`` reads 삼 (final ㅁ). After
a swap the particle is re-chosen for the new tag: 은/는, 이/가, 을/를, 과/와 (and the copula
forms 이랑/랑, 이나/나, 이라고/라고, 이라는/라는, 이에요/예요) pick the first form after a final
consonant; 으로/로 picks 로 after a vowel *or ㄹ* (일로, like 서울로),
so ``#Person1#`` and ``#Person2#`` both take 로 and only ``#Person3#``-style tags take 으로.
"""
from __future__ import annotations

import logging
import random
import re
from functools import lru_cache

import pandas as pd

from src.utils.errors import UserError

log = logging.getLogger(__name__)

# (after a final consonant, after a vowel); 으로/로 is handled separately because of ㄹ.
PARTICLE_PAIRS = (
    ("은", "는"), ("이", "가"), ("을", "를"), ("과", "와"),
    ("이랑", "랑"), ("이나", "나"), ("이라고", "라고"), ("이라는", "라는"), ("이에요", "예요"),
)
_PARTICLES = ("으로", "로") + tuple(form for pair in PARTICLE_PAIRS for form in pair)
# Longest alternatives first so 이랑 wins over 이 and 으로 over 로.
_PARTICLE_RE = "|".join(sorted(_PARTICLES, key=len, reverse=True))

# Final consonant of the Sino-Korean reading of each last digit: None = vowel.
_DIGIT_FINAL = {"0": "ㅇ", "1": "ㄹ", "2": None, "3": "ㅁ", "4": None,
                "5": None, "6": "ㄱ", "7": "ㄹ", "8": "ㄹ", "9": None}


def tag_final(tag: str) -> str | None:
    """Final consonant of how ``tag`` is read (``"ㄹ"`` for ``#Person1#``, None for a vowel).

    Tags without a number (or other custom tags) return ``"?"``: particles are then left as is.
    """
    match = re.search(r"(\d+)#?$", tag)
    if not match:
        return "?"
    number = match.group(1).lstrip("0") or "0"
    if number[-1] != "0" or number == "0":
        return _DIGIT_FINAL[number[-1]]
    # 10, 20 ... read 십 (ㅂ); 100 ... read 백 (ㄱ); larger round numbers end in a consonant too.
    return "ㅂ" if number[-2] != "0" else "ㄱ"


def particle_for(tag: str, particle: str) -> str:
    """Return the form of ``particle``'s pair that is correct right after ``tag``."""
    final = tag_final(tag)
    if final == "?":
        return particle
    if particle in ("으로", "로"):
        return "으로" if final not in (None, "ㄹ") else "로"
    for consonant_form, vowel_form in PARTICLE_PAIRS:
        if particle in (consonant_form, vowel_form):
            return consonant_form if final is not None else vowel_form
    return particle


@lru_cache(maxsize=32)
def _swap_re(a: str, b: str) -> re.Pattern[str]:
    return re.compile(f"({re.escape(a)}|{re.escape(b)})({_PARTICLE_RE})?")


def swap_speakers(text: str, a: str = "#Person1#", b: str = "#Person2#") -> str:
    """Exchange tags ``a`` and ``b`` everywhere in ``text`` and repair the particle after each.

    Other tags (``#Person3#``) and masks (``#PhoneNumber#``) are untouched.
    """
    if a == b:
        return text

    def replace(match: re.Match[str]) -> str:
        new_tag = b if match.group(1) == a else a
        particle = match.group(2)
        return new_tag + (particle_for(new_tag, particle) if particle else "")

    return _swap_re(a, b).sub(replace, text)


def _sample_size(n_or_fraction: int | float, eligible: int) -> int:
    """Turn a count (int >= 0) or fraction (float in [0, 1]) into a number of rows."""
    if isinstance(n_or_fraction, bool) or n_or_fraction < 0:
        raise UserError(
            f"speaker swap: size {n_or_fraction!r} must be a count >= 0 or a fraction in [0, 1].")
    if isinstance(n_or_fraction, float):
        if n_or_fraction > 1:
            raise UserError(f"speaker swap: fraction {n_or_fraction} is above 1; "
                            "use a float in [0, 1] or an int count.")
        return round(n_or_fraction * eligible)
    return min(int(n_or_fraction), eligible)


def swap_frame(df: pd.DataFrame, n_or_fraction: int | float, seed: int) -> pd.DataFrame:
    """Make speaker-swapped copies of up to ``n_or_fraction`` rows of ``df``, sampled by ``seed``.

    Only rows whose dialogue has both ``#Person1#`` and ``#Person2#`` are eligible. New rows
    keep ``df``'s columns, with ``fname`` = ``<parent>_swap``, ``source`` = ``"swap"`` and
    ``parent_fname`` = the parent's fname; dialogue and summary (if present) are swapped.
    """
    eligible = [
        i for i, text in enumerate(df["dialogue"])
        if isinstance(text, str) and "#Person1#" in text and "#Person2#" in text
    ]
    size = _sample_size(n_or_fraction, len(eligible))
    chosen = sorted(random.Random(seed).sample(eligible, size))
    rows = df.iloc[chosen].copy()
    rows["parent_fname"] = rows["fname"].astype(str)
    rows["fname"] = rows["parent_fname"] + "_swap"
    rows["source"] = "swap"
    for column in ("dialogue", "summary"):
        if column in rows.columns:
            rows[column] = [swap_speakers(t) if isinstance(t, str) else t for t in rows[column]]
    log.info("speaker swap: %d of %d eligible rows swapped", len(rows), len(eligible))
    return rows.reset_index(drop=True)
