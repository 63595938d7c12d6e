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
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from src.inference.decoding import DecodingParams
from src.inference.batching import new_token_cap
from src.inference.beams import beam_search
from src.inference.decoder import Chooser, Decoder, Result, Row, finish, take_group
from src.inference.head import Head
from src.inference.processors import ngram_index
from src.inference.vocab import kept_ids

log = logging.getLogger(__name__)

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
    share_prefixes: bool = True  # the prompts' shared prefix prefilled once per chunk (same ids; measured faster)
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

    def generate(self, batch: list[list[int]], gen: DecodingParams, stop_ids: list[int],
                 banned: Sequence[int] = ()) -> list[Result]:
        """New ids per prompt before the first stop id, and whether a stop id ended it."""
        import torch

        head = self.head(batch, stop_ids, banned)
        width = min(max(map(len, batch)) + new_token_cap(gen) + 1, 1 << 30)
        slots = min(self.slots, len(batch) * gen.num_beams)
        if gen.num_beams > 1:
            slots = max(gen.num_beams, slots - slots % gen.num_beams)
        decoder = Decoder(self.model, head, slots, width, self.pad_id, self.prefill_tokens, self.share_prefixes)
        with torch.inference_mode():
            decoder.share_prefix(batch)
        chooser = Chooser(gen, head, self.check_every)
        with torch.inference_mode():
            if gen.num_beams > 1:
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

    def _rows(self, decoder: Decoder, chooser: Chooser, prompts: list[list[int]], gen: DecodingParams,
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

