"""The chat-request types both augmentation clients share: requests, results, the ledger, the batch runner.

``LLMClient`` (``src.augment.client``, an OpenAI-compatible server) and ``LocalLLMClient``
(``src.augment.local``, a Hugging Face causal model) both take a list of ``ChatRequest`` and
return one ``ChatResult`` per request in order, counting what they did in a ``Ledger``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make; ``id`` is the caller's handle, not part of the journal key."""

    id: str
    messages: list[dict[str, str]]
    response_format: Optional[dict[str, Any]] = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatResult:
    """How a request ended: ``ok`` with ``text``, or failed with ``error`` (a short reason)."""

    id: str
    ok: bool
    text: str = ""
    error: str = ""
    attempts: int = 0  # HTTP attempts made in this run (0 for journal hits)
    tokens_in: int = 0
    tokens_out: int = 0
    from_journal: bool = False
    key: str = ""


@dataclass
class Ledger:
    """Counts and spend for one batch; ``to_dict()`` goes into the run manifest."""

    model: str = ""
    price_input_per_1m: float = 0.0
    price_output_per_1m: float = 0.0
    requests: int = 0  # requests asked for (after de-duplication by key)
    sent: int = 0  # HTTP attempts, retries included
    retries: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: Counter = field(default_factory=Counter)  # final failure reason -> requests
    errors: Counter = field(default_factory=Counter)  # every failed attempt's reason -> attempts
    journal_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    journal_tokens_in: int = 0  # tokens of responses reused from the journal (paid earlier)
    journal_tokens_out: int = 0
    max_in_flight: int = 0
    seconds: float = 0.0

    @property
    def cost(self) -> float:
        """Estimated spend of this run (journal hits cost nothing now), in the price table's unit."""
        return (self.tokens_in * self.price_input_per_1m + self.tokens_out * self.price_output_per_1m) / 1e6

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable view, cost included."""
        out = dataclasses.asdict(self)
        out["failures"] = dict(self.failures)
        out["errors"] = dict(self.errors)
        out["cost"] = round(self.cost, 6)
        out["seconds"] = round(self.seconds, 3)
        return out


class BatchClient(Protocol):
    """What the augmentation stage needs from a client (API or local)."""

    ledger: Ledger

    async def complete_many(self, requests: list[ChatRequest], progress: bool = True) -> list[ChatResult]:
        """Complete every request; results in request order."""
        ...


def run_requests(client: BatchClient, requests: list[ChatRequest], progress: bool = True) -> list[ChatResult]:
    """Synchronous wrapper: ``asyncio.run(client.complete_many(...))``.

    Inside a running event loop (Jupyter), where ``asyncio.run`` is refused, the batch runs on a
    worker thread with its own loop.
    """
    def run() -> list[ChatResult]:
        return asyncio.run(client.complete_many(requests, progress=progress))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def progress_bar(total: int, progress: bool, desc: str) -> Any:
    from tqdm import tqdm  # the plain bar: tqdm.auto needs ipywidgets inside Jupyter

    # disable=None: tqdm hides itself when stderr is not a terminal (CI, log files).
    return tqdm(total=total, desc=desc, unit="req", disable=None if progress else True)
