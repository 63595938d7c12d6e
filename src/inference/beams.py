"""Beam search on the continuous engine, with the rules of transformers' ``generate(num_beams=k)``.

Each dialogue holds ``k`` consecutive slots. Its prompt is prefilled once (``generate`` prefills it
``k`` times) and copied into the other slots when its beams first split; a finished dialogue's
slots take the next prompt. Per step and dialogue, as transformers 5 does it:

- log-softmax of the logits, then the repetition penalty and n-gram bans on the log-probabilities;
- the running beam scores added, the best ``max(2, 1 + stop ids) * k`` continuations over all beams;
- those that end in a stop id (or reach ``max_new_tokens``) among the first ``k`` enter the finished
  set with score ``sum / length ** length_penalty``; the best ``k`` others keep running;
- the dialogue ends once every finished slot is filled and no running beam can beat the worst of
  them (``early_stopping=False``'s rule), or all continuations end.

The log-softmax runs over the kept ids only, so every score of a row moves by the same tiny
constant (the probability of the dropped ids); see docs/BENCHMARKS.md for the measured effect.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from src.inference.decoding import DecodingParams
from src.inference.batching import new_token_cap
from src.inference.decoder import Chooser, Decoder, Result, Row, finish, take_group
from src.inference.processors import ngram_index

DEAD = -1.0e9  # transformers' score for a beam that must not be picked


@dataclass
class Item:
    """One dialogue's beams: running rows in its slots, the finished set, whether it may still improve."""

    request: int
    base: int  # first of its k slots
    beams: list[Row]
    scores: Any  # [k] running log-probability sums
    done_scores: Any  # [k] finished scores (DEAD where empty)
    done: list[list[int]] = field(default_factory=list)
    done_filled: Any = None  # [k] bool
    open: bool = True
    steps: int = 0


def _start(request: int, base: int, prompt: list[int], gen: DecodingParams, k: int) -> Item:
    import torch

    ngrams = ngram_index(prompt, gen.no_repeat_ngram_size) if gen.no_repeat_ngram_size else {}
    beams = [Row(request, list(prompt), [], ngrams) for _ in range(k)]
    scores = torch.full((k,), DEAD)
    scores[0] = 0.0  # only the first beam's continuations count at the first step
    return Item(request, base, beams, scores, torch.full((k,), DEAD), [[] for _ in range(k)],
                torch.zeros(k, dtype=torch.bool))


def _log_probs(chooser: Chooser, decoder: Decoder, item: Item, logits: Any) -> Any:
    """[k, kept] processed log-probabilities of the item's beams."""
    import torch

    log_probs = torch.log_softmax(logits, dim=-1)
    slots = list(range(item.base, item.base + len(item.beams)))
    return chooser.process(log_probs, slots, item.beams)


def _select(item: Item, log_probs: Any, stops: Any, cap: int, length_penalty: float, head: Any) -> tuple[Any, Any, Any]:
    """One step of the item: (parent beam, kept index, vocabulary id) of the k beams that keep running."""
    import torch

    k, size = log_probs.shape
    keep = max(2, 1 + len(stops)) * k
    flat = (log_probs + item.scores[:, None]).reshape(-1)
    top, index = torch.topk(flat, keep)
    parent, token = index // size, index % size
    ids = head.ids(token)
    hits = torch.isin(ids, stops) | (item.steps + 1 >= cap)
    running = top + hits.float() * DEAD
    order = torch.topk(running, k).indices
    _finish_some(item, top, parent, ids, hits, k, length_penalty)
    item.scores = running[order]
    item.steps += 1
    best = item.scores[0] / (item.steps ** length_penalty)
    worst = torch.where(item.done_filled, item.done_scores.min(), torch.tensor(DEAD))
    item.open = item.open and bool((best > worst).any()) and not bool(hits.all())
    return parent[order], token[order], ids[order]


def _finish_some(item: Item, top: Any, parent: Any, ids: Any, hits: Any, k: int, length_penalty: float) -> None:
    """Continuations among the first k that end here join the finished set if they beat its worst."""
    import torch

    ended = hits & (torch.arange(len(top)) < k)
    scores = top / ((item.steps + 1) ** length_penalty)
    scores = scores + (~ended).float() * DEAD + (0.0 if item.open else DEAD)
    merged = torch.cat((item.done_scores, scores))
    best = torch.topk(merged, k).indices.tolist()
    new_done, new_filled = [], []
    for j in best:
        if j < k:
            new_done.append(item.done[j])
            new_filled.append(bool(item.done_filled[j]))
        else:
            c = j - k
            new_done.append(item.beams[int(parent[c])].tokens + [int(ids[c])])
            new_filled.append(bool(ended[c]))
    item.done, item.done_scores = new_done, merged[best]
    item.done_filled = torch.tensor(new_filled)


def _reorder(decoder: Decoder, chooser: Chooser, item: Item, parent: list[int], width: int) -> None:
    """Slots of beams that continue another beam take that beam's cache rows and seen ids."""
    moves = [(item.base + p, item.base + j) for j, p in enumerate(parent) if p != j]
    if moves:
        source, target = [s for s, _ in moves], [t for _, t in moves]
        decoder.move(source, target, width)
        if chooser.seen is not None:
            chooser.seen[target] = chooser.seen[source]
    item.beams = [Row(item.request, item.beams[p].prompt, list(item.beams[p].tokens), item.beams[p].ngrams)
                  for p in parent]


def _advance(decoder: Decoder, chooser: Chooser, item: Item, logits: Any, stops: Any, cap: int,
             gen: DecodingParams, stepped: bool) -> None:
    """Score, select, reorder and extend one item's beams by one id."""
    parent, token, ids = _select(item, _log_probs(chooser, decoder, item, logits), stops, cap, gen.length_penalty,
                                 decoder.head)
    width = int(decoder.positions[item.base]) + 1
    _reorder(decoder, chooser, item, parent.tolist(), width)
    for j, (k_index, t) in enumerate(zip(token.tolist(), ids.tolist())):
        slot = item.base + j
        item.beams[j].tokens.append(t)
        chooser.record(slot, k_index)
        decoder.last[slot] = t
        if stepped:
            decoder.positions[slot] += 1
        else:
            decoder.positions[slot] = decoder.positions[item.base]


def beam_search(decoder: Decoder, chooser: Chooser, prompts: list[list[int]], gen: DecodingParams,
                stop_ids: list[int]) -> list[Result]:
    """The best finished beam per prompt (ids before the stop id, whether one came)."""
    import torch

    k, cap = gen.num_beams, new_token_cap(gen)
    stops = torch.tensor(stop_ids, device=decoder.device)
    groups = decoder.cache.slots // k
    waiting = deque(range(len(prompts)))
    live: list[Optional[Item]] = [None] * groups
    results: list[Optional[Result]] = [None] * len(prompts)
    chooser.start(decoder.cache.slots)
    while waiting or any(live):
        free = [g for g, it in enumerate(live) if it is None]
        if waiting and free:
            _admit(decoder, chooser, prompts, waiting, free, live, gen, stops, cap)
        else:
            _step(decoder, chooser, live, gen, stops, cap)
        _retire(decoder, live, results, set(stop_ids))
    return [r if r is not None else ([], False) for r in results]


def _admit(decoder: Decoder, chooser: Chooser, prompts: list[list[int]], waiting: deque, free: list[int],
           live: list[Optional[Item]], gen: DecodingParams, stops: Any, cap: int) -> None:
    """Prefill waiting prompts into the first slot of free groups and take each one's first step."""
    k = gen.num_beams
    group = take_group(prompts, waiting, len(free), decoder.prefill_tokens)
    bases = [g * k for g in free[:len(group)]]
    hidden = decoder.prefill(bases, [prompts[i] for i in group])
    logits = decoder.head.logits(hidden)
    for n, (g, request, base) in enumerate(zip(free, group, bases)):
        item = _start(request, base, list(prompts[request]), gen, k)
        for j in range(k):
            chooser.admit(base + j, item.beams[j].prompt)
        live[g] = item
        _advance(decoder, chooser, item, logits[n:n + 1].expand(k, -1), stops, cap, gen, stepped=False)


def _step(decoder: Decoder, chooser: Chooser, live: list[Optional[Item]], gen: DecodingParams, stops: Any,
          cap: int) -> None:
    """One decode step over every live item's slots."""
    k = gen.num_beams
    busy = [s for g, it in enumerate(live) if it is not None for s in range(g * k, g * k + k)]
    hidden = decoder.step(busy[-1] + 1, busy)
    logits = decoder.head.logits(hidden)
    chooser.audit(hidden[busy], logits[busy])
    for item in live:
        if item is not None:
            _advance(decoder, chooser, item, logits[item.base:item.base + k], stops, cap, gen, stepped=True)


def _retire(decoder: Decoder, live: list[Optional[Item]], results: list[Optional[Result]], stops: set[int]) -> None:
    """Items that cannot improve give their best finished beam; their slots are freed."""
    for g, item in enumerate(live):
        if item is not None and not item.open:
            results[item.request] = finish(item.done[0], stops)
            live[g] = None
            for j in range(len(item.beams)):
                decoder.positions[item.base + j] = 0
                decoder.last[item.base + j] = decoder.pad_id
