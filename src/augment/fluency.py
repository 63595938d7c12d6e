"""Is a generated text fluent Korean? Checks that reject gibberish the other validators let through.

Three signals, measured on the 499 real dev pairs after denoising (tests/augment/test_fluency.py):
- Kiwi's language-model log-probability per morpheme: real dialogues score -3.4 to -6.1 (2 of 499
  below -5.6), their word-shuffled copies -5.7 at the median, character-reversed text -10 to -18.
  Summaries are short and score lower: real ones down to -7.5, reversed ones -8.7 at the highest;
- the share of turns that end like a sentence (their last morpheme an ending or an interjection):
  1.0 for the median real dialogue and >= 0.67 for 99% of them, 0.5 for the median shuffled copy;
- a script no reference uses (CJK ideographs, kana, Cyrillic): never in the dev references.
With the defaults (dialogues -5.6 and 0.6, summaries -8.0) 0.4% of the real dialogues, no real
summary, 88% of the word-shuffled dialogues and every reversed text are refused.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from src.config import BLOCKABLE_SCRIPTS
from src.evaluation.morphemes import get_kiwi
from src.utils.patterns import HASH_TOKEN, script_pattern

Result = tuple[bool, str]
KEEP: Result = (True, "")


@lru_cache(maxsize=1)
def _script() -> Any:
    return script_pattern(BLOCKABLE_SCRIPTS)


def _kiwi() -> Any:
    return get_kiwi()


def lines_of(text: str) -> list[str]:
    """The text of each turn, speaker tags and masks replaced by a space."""
    return [HASH_TOKEN.sub(" ", line.split(": ", 1)[-1]).strip() for line in text.split("\n") if line.strip()]


def score_per_morpheme(text: str) -> float:
    """Kiwi's log-probability of its best analysis, per morpheme (higher is more fluent)."""
    tokens, score = _kiwi().analyze(HASH_TOKEN.sub(" ", text), top_n=1)[0]
    return score / max(1, len(tokens))


def sentence_end_share(text: str) -> float:
    """Share of turns whose last (non-punctuation) morpheme is an ending or an interjection."""
    turns = [t for t in lines_of(text) if t]
    if not turns:
        return 0.0
    ended = 0
    for (tokens, _), in ((r[0],) for r in _kiwi().analyze(turns, top_n=1)):
        tags = [t.tag for t in tokens if not t.tag.startswith("S")]
        ended += bool(tags) and (tags[-1].startswith("E") or tags[-1] == "IC")
    return ended / len(turns)


def check_fluent(
    text: str, min_score: float, min_end_share: float, turns: bool = True, key: str = "min_kiwi_score"
) -> Result:
    """Reject foreign scripts, a low Kiwi score per morpheme, and (dialogues) turns that do not end as sentences.

    ``key`` names the ``augmentation`` setting ``min_score`` came from, for the rejection reason.
    """
    found = _script().search(text)
    if found:
        return False, f"mixed_script: {found.group(0)!r} (no reference uses CJK ideographs, kana or Cyrillic)"
    score = score_per_morpheme(text)
    if score < min_score:
        return False, f"gibberish: Kiwi scores {score:.2f} per morpheme < augmentation.{key}={min_score}"
    if turns:
        share = sentence_end_share(text)
        if share < min_end_share:
            return False, (f"gibberish: {share:.0%} of the turns end like a sentence < "
                           f"augmentation.min_sentence_end_share={min_end_share}")
    return KEEP
