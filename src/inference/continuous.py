"""The continuous engine (``inference.backend: continuous``): slots refilled as sequences finish.

A chunk of prompts (longest first) is decoded in ``inference.slots`` slots of one fixed key/value
cache (``src.inference.slots``). A slot whose sequence stops takes the next prompt at once, so no
step is spent on a finished row and no row waits for the longest one in its batch, as in a
left-padded ``generate()`` call; once no prompt is waiting, the live rows move down so the step
shrinks with them. The output layer scores only the kept ids (``src.inference.vocab``). Greedy and
sampling choose a token per row (``src.inference.processors``); beam search keeps ``num_beams``
slots per dialogue with transformers' rules (``src.inference.beams``).

Measured on Gemma 3 270M, CPU: docs/BENCHMARKS.md (``python -m benchmarks.generate_cpu``).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from src.config import InferenceConfig
from src.inference.batching import new_token_cap
from src.inference.head import Head
from src.inference.processors import ngram_bans, ngram_index, repetition_penalty, sample
from src.inference.slots import SlotCache, decode_masks, prefill_masks, shared_prefix
from src.inference.vocab import kept_ids

log = logging.getLogger(__name__)

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

    def __init__(self, model: Any, head: Head, slots: int, capacity: int, pad_id: int, prefill_tokens: int) -> None:
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
        self.share_prefixes = True  # a lever measured on its own by benchmarks.generate_levers

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

    gen: InferenceConfig
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


@dataclass
class ContinuousEngine:
    """The engine protocol of ``src.inference.engine`` over slots refilled as rows finish."""

    model: Any
    tokenizer: Any
    pad_id: int
    slots: int = 32
    output_vocab: str = "trimmed"  # or "full"
    stored_vocab: Optional[Sequence[int]] = None
    check_every: int = 32
    prefill_tokens: int = 2048
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def chunk_size(self) -> int:
        """Prompts per call: a few times the slots, so refills keep them busy; the journal is written per chunk."""
        return 4 * self.slots

    def head(self, prompts: Sequence[Sequence[int]], stop_ids: Sequence[int], banned: Sequence[int]) -> Head:
        """The output layer for this chunk: kept ids (stored + rules + the prompts' own) or the full vocabulary."""
        vocab_size = self.model.get_output_embeddings().weight.shape[0]
        if self.output_vocab == "full":
            return Head(self.model, None, banned)
        return Head(self.model, kept_ids(self.tokenizer, vocab_size, self.stored_vocab, prompts, banned, stop_ids))

    def generate(self, batch: list[list[int]], gen: InferenceConfig, stop_ids: list[int],
                 banned: Sequence[int] = ()) -> list[Result]:
        """New ids per prompt before the first stop id, and whether a stop id ended it."""
        import torch

        head = self.head(batch, stop_ids, banned)
        width = min(max(map(len, batch)) + new_token_cap(gen) + 1, 1 << 30)
        slots = min(self.slots, len(batch) * gen.num_beams)
        if gen.num_beams > 1:
            slots = max(gen.num_beams, slots - slots % gen.num_beams)
        decoder = Decoder(self.model, head, slots, width, self.pad_id, self.prefill_tokens)
        with torch.inference_mode():
            decoder.share_prefix(batch)
        chooser = Chooser(gen, head, self.check_every)
        with torch.inference_mode():
            if gen.num_beams > 1:
                from src.inference.beams import beam_search

                results = beam_search(decoder, chooser, batch, gen, stop_ids)
            else:
                results = self._rows(decoder, chooser, batch, gen, set(stop_ids))
        self._count(head, decoder, chooser)
        return results

    def _count(self, head: Head, decoder: Decoder, chooser: Chooser) -> None:
        c = self.counts
        c["kept_vocab"] = max(c.get("kept_vocab", 0), head.size)
        for key, value in (("vocab_checks", chooser.checked),
                           ("vocab_escapes", chooser.escapes), ("decode_steps", decoder.steps),
                           ("prefill_seconds", decoder.prefill_seconds), ("decode_seconds", decoder.decode_seconds)):
            c[key] = c.get(key, 0) + value

    def _rows(self, decoder: Decoder, chooser: Chooser, prompts: list[list[int]], gen: InferenceConfig,
              stops: set[int]) -> list[Result]:
        """Greedy or sampled decoding, one row per prompt, slots refilled from the queue."""
        cap = new_token_cap(gen)
        waiting = deque(range(len(prompts)))
        live: list[Optional[Row]] = [None] * decoder.cache.slots
        results: list[Optional[Result]] = [None] * len(prompts)
        chooser.start(decoder.cache.slots)
        while waiting or any(live):
            free = [s for s, r in enumerate(live) if r is None]
            if waiting and free:
                taken, hidden = self._admit(decoder, chooser, prompts, waiting, free, live)
                self._advance(decoder, chooser, taken, live, results, stops, cap, hidden, stepped=False)
                continue
            if not waiting:
                self._compact(decoder, chooser, live)
            busy = [s for s, r in enumerate(live) if r is not None]
            rows = busy[-1] + 1
            hidden = decoder.step(rows, busy)
            self._advance(decoder, chooser, busy, live, results, stops, cap, hidden[busy], stepped=True)
        return [r if r is not None else ([], False) for r in results]

    def _admit(self, decoder: Decoder, chooser: Chooser, prompts: list[list[int]], waiting: deque,
               free: list[int], live: list[Optional[Row]]) -> tuple[list[int], Any]:
        """Prefill the next prompts (longest first, within ``prefill_tokens`` padded tokens) into free slots."""
        group = take_group(prompts, waiting, len(free), decoder.prefill_tokens)
        slots = free[:len(group)]
        hidden = decoder.prefill(slots, [prompts[i] for i in group])
        for slot, request in zip(slots, group):
            row = Row(request, list(prompts[request]))
            if chooser.gen.no_repeat_ngram_size:
                row.ngrams = ngram_index(row.prompt, chooser.gen.no_repeat_ngram_size)
            live[slot] = row
            chooser.admit(slot, row.prompt)
        return slots, hidden

    def _advance(self, decoder: Decoder, chooser: Chooser, slots: list[int], live: list[Optional[Row]],
                 results: list[Optional[Result]], stops: set[int], cap: int, hidden: Any, stepped: bool) -> None:
        """Choose the next id of each row in ``slots`` from its hidden state; retire rows that stop or reach ``cap``.

        After a prefill a row's position is its prompt length, where its first id goes; after a decode
        step (``stepped``) it moves on by one.
        """
        rows = [live[s] for s in slots]
        logits = chooser.process(decoder.head.logits(hidden), slots, rows)  # type: ignore[arg-type]
        chooser.audit(hidden, logits)
        index = chooser.choose(logits)
        ids = decoder.head.ids(index).tolist()
        for slot, row, k, t in zip(slots, rows, index.tolist(), ids):
            assert row is not None
            row.tokens.append(t)
            chooser.record(slot, k)
            decoder.last[slot] = t
            if t in stops or len(row.tokens) >= cap:
                results[row.request] = finish(row.tokens, stops)
                live[slot] = None
                decoder.positions[slot] = 0
                decoder.last[slot] = self.pad_id
            elif stepped:
                decoder.positions[slot] += 1

    def _compact(self, decoder: Decoder, chooser: Chooser, live: list[Optional[Row]]) -> None:
        """No prompt waits: move the highest live rows into the lowest free slots, so steps shrink."""
        free = [s for s, r in enumerate(live) if r is None]
        busy = [s for s, r in enumerate(live) if r is not None]
        moves = [(b, f) for f, b in zip(free, reversed(busy)) if f < b]
        if not moves:
            return
        source, target = [b for b, _ in moves], [f for _, f in moves]
        width = int(decoder.positions[source].max()) + 1
        decoder.move(source, target, width)
        if chooser.seen is not None:
            chooser.seen[target] = chooser.seen[source]
        for b, f in moves:
            live[f], live[b] = live[b], None
            decoder.positions[b] = 0
            decoder.last[b] = self.pad_id

