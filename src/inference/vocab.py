"""The output vocabulary generation scores: every id, or the task's own ids (``inference.output_vocab``).

Gemma 3 270M's output layer has 262,144 rows, and on a CPU it is most of a decode step (0.14 s of
fp32 matmul for 16 sequences against ~0.01 s for a 16k-row slice). A Korean summary uses a sliver
of that vocabulary: the 499 dev summaries use 2,277 distinct ids, nearly all of them also in the
dialogues. A trimmed head scores only

- the ids of the training data (dialogues, summaries, prompt template), stored with the checkpoint
  by the train stage (``output_vocab`` in ``pipeline_inference.json``);
- every id of the prompts being decoded, and each one's twin with/without the word-start marker
  (``▁Jane`` for ``Jane``), so names and numbers can be copied from the dialogue;
- every token made only of Hangul, every ASCII token of at most two visible characters (so any
  Latin word or number can still be spelled), the special and byte-fallback tokens;

minus the ids ``inference.block_scripts`` bans. On the seed-2026 split, the 99 held-out reference
summaries need 4,181 tokens; 2 of them fall outside this set (docs/BENCHMARKS.md). Greedy and beam
choices among kept ids are unchanged; a dropped id can never be generated, which the engine checks
every ``inference.vocab_check_every`` steps with the full layer (``vocab_escapes`` in the manifest).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable, Optional, Sequence

HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
ONLY_HANGUL = re.compile(r"[\s\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+")
SHORT_ASCII = re.compile(r"\s?[\x21-\x7e]{1,2}\s?")
WORD_START = ("▁", "Ġ")  # sentencepiece and byte-level BPE word-start markers
BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def piece_text(piece: str) -> str:
    """A vocabulary piece as text, word-start markers read as a space."""
    for mark in WORD_START:
        piece = piece.replace(mark, " ")
    return piece


def rule_id(piece: str, text: str) -> bool:
    """Whether a token is kept whatever the data: Hangul only, short ASCII, a byte token."""
    return bool((ONLY_HANGUL.fullmatch(text) and HANGUL.search(text)) or SHORT_ASCII.fullmatch(text)
                or BYTE_TOKEN.fullmatch(piece) or text.isspace())


@lru_cache(maxsize=4)
def _tokenizer_tables(tokenizer: Any) -> tuple[frozenset[int], dict[int, int]]:
    """(ids every trimmed vocabulary keeps, id -> its word-start twin) for one tokenizer, built once."""
    vocab = tokenizer.get_vocab()
    keep = set(tokenizer.all_special_ids)
    twin: dict[int, int] = {}
    for piece, i in vocab.items():
        if rule_id(piece, piece_text(piece)):
            keep.add(i)
        for mark in WORD_START:
            other = piece[len(mark):] if piece.startswith(mark) else mark + piece
            j = vocab.get(other)
            if j is not None:
                twin[i] = j
                break
    return frozenset(keep), twin


def rule_ids(tokenizer: Any) -> frozenset[int]:
    """The ids every trimmed vocabulary keeps (Hangul, short ASCII, byte and special tokens)."""
    return _tokenizer_tables(tokenizer)[0]


def with_twins(tokenizer: Any, ids: Iterable[int]) -> set[int]:
    """``ids`` plus each one's twin with/without the word-start marker."""
    twin = _tokenizer_tables(tokenizer)[1]
    found = set(ids)
    found.update(twin[i] for i in list(found) if i in twin)
    return found


def data_ids(rows: Iterable[Sequence[int]]) -> list[int]:
    """The sorted distinct ids of tokenized rows (what the train stage stores with the checkpoint)."""
    found: set[int] = set()
    for row in rows:
        found.update(int(t) for t in row if t >= 0)
    return sorted(found)


def kept_ids(tokenizer: Any, vocab_size: int, stored: Optional[Sequence[int]], prompts: Sequence[Sequence[int]],
             banned: Sequence[int], stop_ids: Sequence[int]) -> list[int]:
    """The sorted ids a trimmed head scores for these prompts (stop ids always in, banned ids always out)."""
    keep = set(rule_ids(tokenizer)) | set(stored or ()) | with_twins(tokenizer, (t for p in prompts for t in p))
    keep.difference_update(banned)
    keep.update(stop_ids)
    return sorted(i for i in keep if 0 <= i < vocab_size)
