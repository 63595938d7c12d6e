"""Completed LLM responses by request key, so no request is ever paid for twice.

Each journal line (``src.utils.journal``) is one completed response, keyed by a hash of model +
messages + generation params. Failed requests are never written, so a rerun retries them. Both
clients (API and local model) share the journal lookup and the bookkeeping here.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Optional

from src.utils.io import json_digest
from src.augment.chat import ChatRequest, ChatResult, Ledger
from src.utils.journal import JsonlJournal

logger = logging.getLogger(__name__)


def request_key(model: str, messages: list[dict], params: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of what determines a response (not the endpoint or key)."""
    return json_digest({"model": model, "messages": messages, "params": params}, length=None, compact=True)


class ResponseJournal:
    """Completed responses by request key, backed by an append-only JSONL file."""

    def __init__(self, path: Path) -> None:
        self.file = JsonlJournal(path)
        self.path = self.file.path
        records, torn = self.file.read()
        self.entries: dict[str, dict[str, Any]] = {str(r["key"]): r for r in records if "key" in r}
        if torn:
            logger.warning("journal %s: skipped %d unreadable line(s); those requests will be re-sent",
                           self.path, torn)

    def get(self, key: str) -> Optional[dict[str, Any]]:
        """The completed record for ``key``, or None."""
        return self.entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, record: dict[str, Any]) -> None:
        """Write one completed response (must hold ``key``) and make it durable before returning."""
        self.file.append([record])
        self.entries[record["key"]] = record

    def close(self) -> None:
        """Nothing stays open between appends; kept so callers can end a batch explicitly."""


def journal_result(req: ChatRequest, key: str, record: dict[str, Any]) -> ChatResult:
    """The result a journaled response stands for (no HTTP attempt in this run)."""
    return ChatResult(id=req.id, ok=True, text=record.get("text", ""), tokens_in=int(record.get("tokens_in", 0)),
                      tokens_out=int(record.get("tokens_out", 0)), from_journal=True, key=key)


def journal_record(req: ChatRequest, key: str, model: str, result: ChatResult) -> dict[str, Any]:
    """The line written for a completed response."""
    return {"key": key, "id": req.id, "model": model, "text": result.text, "tokens_in": result.tokens_in,
            "tokens_out": result.tokens_out, "time": round(time.time(), 3)}


def split_by_journal(requests: list[ChatRequest], keys: list[str], journal: ResponseJournal,
                     ledger: Ledger) -> tuple[dict[str, ChatResult], dict[str, ChatRequest]]:
    """Results already in the journal, and the unique requests (by key) still to make."""
    done: dict[str, ChatResult] = {}
    todo: dict[str, ChatRequest] = {}
    for req, key in zip(requests, keys):
        if key in done or key in todo:
            continue
        record = journal.get(key)
        if record is not None:
            done[key] = journal_result(req, key, record)
            ledger.journal_hits += 1
            ledger.journal_tokens_in += done[key].tokens_in
            ledger.journal_tokens_out += done[key].tokens_out
        else:
            todo[key] = req
    ledger.requests = len(done) + len(todo)
    return done, todo


def in_request_order(requests: list[ChatRequest], keys: list[str],
                     by_key: dict[str, ChatResult]) -> list[ChatResult]:
    """One result per request (duplicates share their key's outcome, under their own id)."""
    return [dataclasses.replace(by_key[key], id=req.id) for req, key in zip(requests, keys)]
