"""What ``generate()``'s logits processors do, on the kept-id logits of the continuous engine.

Each function reproduces one transformers processor's rule so that the engine's choices are the
ones ``model.generate`` makes: the repetition penalty over every id of the prompt and the output
(``RepetitionPenaltyLogitsProcessor``), n-gram blocking over the whole sequence
(``NoRepeatNGramLogitsProcessor``), temperature and nucleus sampling (``TopPLogitsWarper``).
"""
from __future__ import annotations

from typing import Any, Sequence

NEG = float("-inf")


def repetition_penalty(scores: Any, seen: Any, penalty: float) -> Any:
    """Scores of ids already in the sequence: negative ones times ``penalty``, positive ones divided by it."""
    import torch

    if penalty == 1.0:
        return scores
    penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
    return torch.where(seen, penalised, scores)


def ngram_bans(sequence: Sequence[int], n: int, start: int, prompt_index: dict[tuple[int, ...], set[int]]) -> set[int]:
    """Ids that would repeat an n-gram of ``sequence`` (prompt + output) after its last n-1 ids.

    ``prompt_index`` holds the n-grams lying wholly in ``sequence[:start]`` (built once per prompt by
    ``ngram_index``); the ones reaching into the output are found here, so a step costs O(output).
    """
    if len(sequence) + 1 < n:
        return set()
    key = tuple(sequence[len(sequence) - n + 1:]) if n > 1 else ()
    banned = set(prompt_index.get(key, ()))
    for i in range(max(0, start - n + 1), len(sequence) - n + 1):
        if tuple(sequence[i:i + n - 1]) == key:
            banned.add(sequence[i + n - 1])
    return banned


def ngram_index(prompt: Sequence[int], n: int) -> dict[tuple[int, ...], set[int]]:
    """(n-1)-gram -> the ids that follow it, over the n-grams of ``prompt``."""
    index: dict[tuple[int, ...], set[int]] = {}
    for i in range(len(prompt) - n + 1):
        index.setdefault(tuple(prompt[i:i + n - 1]), set()).add(prompt[i + n - 1])
    return index


def top_p_filter(scores: Any, top_p: float) -> Any:
    """Scores outside the smallest set of ids holding ``top_p`` of the probability set to -inf (one id always kept)."""
    import torch

    if top_p >= 1.0:
        return scores
    ordered, order = torch.sort(scores, descending=False)
    cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative <= (1 - top_p)
    drop[..., -1:] = False
    return scores.masked_fill(drop.scatter(1, order, drop), NEG)


def sample(scores: Any, temperature: float, top_p: float) -> Any:
    """One id per row drawn from the tempered, nucleus-filtered distribution (torch's global generator)."""
    import torch

    scores = top_p_filter(scores / temperature, top_p)
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)
