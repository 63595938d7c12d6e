"""The decoding core the continuous engine's loops share: one forward over slots, and the choice of the next id.

``Decoder`` owns the slot cache and the output layer: it prefills prompts into slots (after the prefix
they share, computed once) and runs one decode step over the first rows. ``Chooser`` turns each row's
logits into its next id with ``generate()``'s processors and counts the vocabulary checks.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from src.inference.decoding import DecodingParams
from src.inference.head import Head
from src.inference.processors import ngram_bans, repetition_penalty, sample
from src.inference.slots import SlotCache, decode_masks, prefill_masks, shared_prefix

Result = tuple[list[int], bool]


def finish(tokens: list[int], stop_ids: set[int]) -> Result:
    """The ids before the first stop id and whether one came."""
    for k, t in enumerate(tokens):
        if t in stop_ids:
            return tokens[:k], True
    return tokens, False


@dataclass
class Row:
    """One sequence in a slot: its request, prompt and output so far."""

    request: int
    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    ngrams: dict = field(default_factory=dict)

    def sequence(self) -> list[int]:
        """Prompt and output, as the n-gram and repetition rules see it."""
        return self.prompt + self.tokens


def take_group(prompts: list[list[int]], waiting: deque, limit: int, budget: int) -> list[int]:
    """Up to ``limit`` waiting prompts (the queue is longest first) whose padded prefill fits ``budget`` tokens;
    the first one always."""
    group: list[int] = []
    while waiting and len(group) < limit:
        if group and len(prompts[group[0]]) * (len(group) + 1) > budget:
            break
        group.append(waiting.popleft())
    return group


class Decoder:
    """One model, one slot cache and one head: prefill into slots, one decode step over the first rows."""

    def __init__(self, model: Any, head: Head, slots: int, capacity: int, pad_id: int, prefill_tokens: int,
                 share_prefixes: bool = True) -> None:
        import torch

        self.model, self.head, self.pad_id, self.prefill_tokens = model, head, pad_id, prefill_tokens
        self.body = model.get_decoder()
        self.config = model.config
        self.device = head.weight.device
        self.cache = SlotCache(slots, capacity)
        self.positions = torch.zeros(slots, dtype=torch.long, device=self.device)
        self.last = torch.full((slots,), pad_id, dtype=torch.long, device=self.device)
        self.prefill_seconds = self.decode_seconds = 0.0
        self.steps = 0
        self.prefix: Optional[SlotCache] = None
        self.prefix_length = 0
        self.share_prefixes = share_prefixes  # off: every prompt prefilled whole (benchmarks.generate_levers)

    def share_prefix(self, prompts: list[list[int]]) -> None:
        """Compute once the prefix all ``prompts`` share (system prompt, instruction); prefills then start after it."""
        import torch

        length = shared_prefix(prompts) if self.share_prefixes else 0
        if not length:
            return
        start = time.perf_counter()
        self.prefix = SlotCache(1, length)
        self.prefix.prefill(torch.zeros(1, dtype=torch.long, device=self.device))
        self.body(input_ids=torch.tensor([prompts[0][:length]], device=self.device),
                  position_ids=torch.arange(length, device=self.device)[None],
                  attention_mask=prefill_masks(self.config, length, self.device), cache=self.prefix, use_cache=True)
        self.prefix_length = length
        self.prefill_seconds += time.perf_counter() - start

    def prefill(self, slots: list[int], prompts: list[list[int]]) -> Any:
        """Prompts (right-padded together) into ``slots``; the hidden state at each one's last token."""
        import torch

        start = time.perf_counter()
        skip = self.prefix_length
        lengths = [len(p) for p in prompts]
        width = max(lengths) - skip
        ids = torch.tensor([p[skip:] + [self.pad_id] * (width + skip - len(p)) for p in prompts], device=self.device)
        rows = torch.tensor(slots, device=self.device)
        if self.prefix is not None:
            self.cache.seed(self.prefix, rows, skip)
        self.cache.prefill(rows, skip)
        positions = torch.arange(skip, skip + width, device=self.device)[None].expand(len(ids), -1)
        out = self.body(input_ids=ids, position_ids=positions, cache=self.cache, use_cache=True,
                        attention_mask=prefill_masks(self.config, width, self.device, skip))
        hidden = out.last_hidden_state[torch.arange(len(ids)), torch.tensor(lengths) - 1 - skip]
        for slot, n in zip(slots, lengths):
            self.positions[slot] = n
        self.prefill_seconds += time.perf_counter() - start
        return hidden

    def step(self, rows: int, live: Sequence[int]) -> Any:
        """One token for each of the first ``rows`` slots (``last``, at ``positions``); their hidden states."""
        start = time.perf_counter()
        positions = self.positions[:rows]
        width = int(self.positions[list(live)].max()) + 1
        self.cache.decode(positions, width)
        out = self.body(input_ids=self.last[:rows, None], position_ids=positions[:, None],
                        attention_mask=decode_masks(self.config, positions, width), cache=self.cache, use_cache=True)
        self.steps += 1
        self.decode_seconds += time.perf_counter() - start
        return out.last_hidden_state[:, -1]

    def move(self, source: list[int], target: list[int], width: int) -> None:
        """Slots ``target`` take over the cache rows, positions and last ids of ``source``."""
        import torch

        src = torch.tensor(source, device=self.device)
        dst = torch.tensor(target, device=self.device)
        self.cache.copy_rows(src, dst, width)
        self.positions[dst] = self.positions[src]
        self.last[dst] = self.last[src]


@dataclass
class Chooser:
    """Picks each row's next id from its kept-id logits: repetition penalty, n-gram bans, greedy or a sample."""

    gen: DecodingParams
    head: Head
    check_every: int
    steps: int = 0
    checked: int = 0  # rows checked against the full output layer
    escapes: int = 0
    seen: Any = None  # [slots, kept] bool: ids in each row's sequence, for the repetition penalty

    def start(self, slots: int) -> None:
        """Reset per-slot state for a new chunk."""
        import torch

        if self.gen.repetition_penalty != 1.0:
            self.seen = torch.zeros(slots, self.head.size, dtype=torch.bool, device=self.head.weight.device)

    def admit(self, slot: int, sequence: Sequence[int]) -> None:
        """A new row in ``slot``: the ids it has seen so far are its prompt."""
        if self.seen is not None:
            self.seen[slot] = False
            index = self.head.index_of[list(sequence)]
            self.seen[slot, index[index >= 0]] = True

    def record(self, slot: int, index: int) -> None:
        """``slot`` took the kept id at ``index``."""
        if self.seen is not None:
            self.seen[slot, index] = True

    def process(self, logits: Any, slots: Sequence[int], rows: Sequence[Row]) -> Any:
        """Logits of ``slots`` after the repetition penalty and n-gram bans of their rows."""
        if self.seen is not None:
            logits = repetition_penalty(logits, self.seen[list(slots)], self.gen.repetition_penalty)
        n = self.gen.no_repeat_ngram_size
        if n:
            for k, row in enumerate(rows):
                banned = ngram_bans(row.sequence(), n, len(row.prompt), row.ngrams)
                if banned:
                    index = self.head.index_of[list(banned)]
                    logits[k, index[index >= 0]] = float("-inf")
        return logits

    def choose(self, logits: Any) -> Any:
        """Kept-id index per row: argmax, or a sample when ``do_sample``."""
        if self.gen.do_sample:
            return sample(logits, self.gen.temperature, self.gen.top_p)
        return logits.argmax(dim=-1)

    def audit(self, hidden: Any, logits: Any) -> None:
        """Every ``check_every`` calls: count rows whose best id under the full layer was dropped."""
        self.steps += 1
        if self.check_every and self.head.kept is not None and self.steps % self.check_every == 0:
            self.checked += len(hidden)
            self.escapes += self.head.escapes(hidden, logits.max(dim=-1).values)
