"""ROUGE-1/2/L F1 with exactly the semantics of the ``rouge`` 1.0.1 package.

The competition scores with ``rouge.Rouge().get_scores(hyp, ref)``. Its quirks are kept on
purpose so that our numbers match the leaderboard's:

* text is cut into "sentences" at every ``.``; each sentence has its whitespace collapsed and
  a sentence that was only whitespace survives as the empty token ``""``;
* n-grams are counted as *sets* (``exclusive=True``): a repeated n-gram counts once;
* bigrams run across sentence boundaries;
* ROUGE-L is the summary-level union LCS: for every (reference sentence, hypothesis sentence)
  pair one LCS is reconstructed with the package's tie-breaking, and the number of distinct
  tokens in the union of those LCSs is divided by the distinct token counts of each side;
* F1 = 2 * (p * r) / (p + r + 1e-8), written in the same order so floats agree bit for bit.

Unlike the package, the LCS back-trace is iterative, so a very long sentence (a model that
repeats itself without a full stop) cannot hit Python's recursion limit, and inputs the package
raises on (no sentence at all, e.g. ``""`` or ``"..."``) score 0 here.
"""
from __future__ import annotations

Scores = tuple[float, float, float]
ZERO: Scores = (0.0, 0.0, 0.0)


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` into the package's sentences: split at ``.``, drop empty pieces, collapse spaces."""
    return [" ".join(piece.split()) for piece in text.split(".") if len(piece) > 0]


def _words(sentences: list[str]) -> list[str]:
    # split(" ") rather than split(): a whitespace-only sentence must yield the token "".
    return [word for sentence in sentences for word in sentence.split(" ")]


def _f1(overlap: int, hyp_count: int, ref_count: int) -> float:
    precision = overlap / hyp_count if hyp_count else 0.0
    recall = overlap / ref_count if ref_count else 0.0
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def rouge_n_f1(hyp_words: list[str], ref_words: list[str], n: int) -> float:
    """ROUGE-N F1 over distinct n-grams of two flattened token lists."""
    hyp, ref = _ngrams(hyp_words, n), _ngrams(ref_words, n)
    return _f1(len(hyp & ref), len(hyp), len(ref))


def lcs_tokens(ref: list[str], hyp: list[str]) -> list[str]:
    """One longest common subsequence of ``ref`` and ``hyp``, chosen as the package chooses it.

    The back-trace prefers moving up in ``ref`` only when that cell is strictly larger, which
    decides which of several equally long LCSs is returned (and so the union size in ROUGE-L).
    """
    if not set(ref) & set(hyp):
        return []
    width = len(hyp) + 1
    table = [[0] * width]
    for i in range(1, len(ref) + 1):
        above, row, token = table[i - 1], [0] * width, ref[i - 1]
        for j in range(1, width):
            if token == hyp[j - 1]:
                row[j] = above[j - 1] + 1
            else:
                row[j] = above[j] if above[j] > row[j - 1] else row[j - 1]
        table.append(row)
    found, i, j = [], len(ref), len(hyp)
    while i > 0 and j > 0:
        if ref[i - 1] == hyp[j - 1]:
            found.append(ref[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return found


def rouge_l_f1(hyp_sentences: list[str], ref_sentences: list[str]) -> float:
    """Summary-level union-LCS ROUGE-L F1 of two sentence lists (package semantics)."""
    union: set[str] = set()
    hyp_split = [sentence.split(" ") for sentence in hyp_sentences]
    for ref_sentence in ref_sentences:
        ref_words = ref_sentence.split(" ")
        for hyp_words in hyp_split:
            union.update(lcs_tokens(ref_words, hyp_words))
    hyp_count, ref_count = len(set(_words(hyp_sentences))), len(set(_words(ref_sentences)))
    return _f1(len(union), hyp_count, ref_count)


def rouge_f1(hypothesis: str, reference: str) -> Scores:
    """(ROUGE-1, ROUGE-2, ROUGE-L) F1 of one pair, equal to ``Rouge().get_scores`` on it.

    Returns zeros where the package would raise (a side with no sentence).
    """
    hyp_sentences, ref_sentences = split_sentences(hypothesis), split_sentences(reference)
    if not hyp_sentences or not ref_sentences:
        return ZERO
    hyp_words, ref_words = _words(hyp_sentences), _words(ref_sentences)
    return (
        rouge_n_f1(hyp_words, ref_words, 1),
        rouge_n_f1(hyp_words, ref_words, 2),
        rouge_l_f1(hyp_sentences, ref_sentences),
    )
