"""``LocalLLMClient``: the augmentation client interface over a local Hugging Face causal model.

With ``augmentation.backend: transformers`` every augmentation code path runs offline: requests
are rendered with the model's chat template (or plain ``role: content`` lines), generated in
batches on a worker thread, and journaled like API responses.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

from src.augment.chat import ChatRequest, ChatResult, Ledger, progress_bar
from src.augment.journal import ResponseJournal, in_request_order, journal_record, request_key, split_by_journal
from src.config import ApiConfig


class LocalLLMClient:
    """Same interface as ``LLMClient``, generating with a local HF causal model on CPU (or GPU)."""

    def __init__(self, model_path: str, api: ApiConfig, journal_path: Path, *, batch_size: int = 4,
                 device: str = "cpu", seed: int = 0) -> None:
        self.model_path, self.api, self.batch_size, self.device, self.seed = model_path, api, batch_size, device, seed
        self.journal = ResponseJournal(journal_path)
        self.ledger = Ledger(model=f"local:{model_path}")

    def key(self, req: ChatRequest) -> str:
        """Journal key: local model + messages + generation params."""
        params = {"temperature": self.api.temperature, "max_tokens": self.api.max_tokens, "backend": "transformers"}
        return request_key(self.ledger.model, req.messages, params)

    async def complete_many(self, requests: list[ChatRequest], progress: bool = True) -> list[ChatResult]:
        """Generate every request not in the journal, in batches, in a worker thread."""
        started = time.monotonic()
        keys = [self.key(r) for r in requests]
        done, todo = split_by_journal(requests, keys, self.journal, self.ledger)
        bar = progress_bar(len(done) + len(todo), progress, f"local {Path(self.model_path).name}")
        bar.update(len(done))
        try:
            if todo:
                generate = await asyncio.to_thread(self._load)
                items = list(todo.items())
                for start in range(0, len(items), self.batch_size):
                    batch = items[start:start + self.batch_size]
                    texts = await asyncio.to_thread(generate, [req.messages for _, req in batch])
                    self._record(batch, texts, done)
                    bar.update(len(batch))
        finally:
            bar.close()
            self.journal.close()
            self.ledger.seconds += time.monotonic() - started
        return in_request_order(requests, keys, done)

    def _record(self, batch: list[tuple[str, ChatRequest]], texts: list[tuple[str, int, int]],
                done: dict[str, ChatResult]) -> None:
        for (key, req), (text, tokens_in, tokens_out) in zip(batch, texts):
            result = ChatResult(req.id, True, text, attempts=1, tokens_in=tokens_in, tokens_out=tokens_out, key=key)
            self.journal.append(journal_record(req, key, self.ledger.model, result))
            self.ledger.sent += 1
            self.ledger.succeeded += 1
            self.ledger.tokens_in += tokens_in
            self.ledger.tokens_out += tokens_out
            done[key] = result

    def _load(self) -> Callable[[list[list[dict[str, str]]]], list[tuple[str, int, int]]]:
        """Load model + tokenizer once and return a batch generate function."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(self.seed)
        tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.model_path).to(self.device).eval()  # type: ignore[arg-type]

        def generate(batch: list[list[dict[str, str]]]) -> list[tuple[str, int, int]]:
            prompts = [_render_chat(tokenizer, messages) for messages in batch]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            sample = self.api.temperature > 0
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=self.api.max_tokens, do_sample=sample,
                                     temperature=self.api.temperature if sample else None,
                                     pad_token_id=tokenizer.pad_token_id)
            new = out[:, enc["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            lengths = enc["attention_mask"].sum(dim=1).tolist()
            return [(t, int(n), int((row != tokenizer.pad_token_id).sum())) for t, n, row in zip(texts, lengths, new)]

        return generate


def _render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The tokenizer's chat template when it has one, else plain 'role: content' lines."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
