"""Concurrent, resumable chat-completion requests against any OpenAI-compatible server.

``LLMClient.complete_many`` sends a batch of ``ChatRequest`` with at most
``api.max_concurrency`` in flight, a per-request timeout, retries with exponential backoff and
jitter (honouring ``Retry-After``) on 429, 5xx, timeouts, connection errors and unreadable
bodies, an RPM/TPM limiter and a spend cap. Every completed response is journaled at once
(``src.augment.journal``), so a rerun after a crash sends only what is missing. A request that
still fails ends as a failed ``ChatResult`` with its reason; the batch always finishes.
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from src.augment.chat import ChatRequest, ChatResult, Ledger, progress_bar
from src.augment.journal import ResponseJournal, in_request_order, journal_record, request_key, split_by_journal
from src.config import ApiConfig
from src.utils.secrets import redact_url

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}  # plus every 5xx
MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After is capped rather than obeyed


class RateLimiter:
    """Sliding-window limit on requests and tokens per ``window`` seconds (0 = no limit)."""

    def __init__(self, rpm: int, tpm: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rpm, self.tpm, self.window, self.clock = rpm, tpm, window, clock
        self._sent: deque[list[float]] = deque()  # [timestamp, tokens] per request in the window

    async def acquire(self, tokens: int) -> list[float]:
        """Wait until one more request of ``tokens`` fits; returns its slot for ``correct``."""
        while True:
            wait = self.try_acquire(tokens)
            if isinstance(wait, list):
                return wait
            await asyncio.sleep(wait)

    def try_acquire(self, tokens: int) -> list[float] | float:
        """The slot if the request fits now, else seconds until the oldest entry leaves the window."""
        now = self.clock()
        while self._sent and self._sent[0][0] <= now - self.window:
            self._sent.popleft()
        fits_rpm = self.rpm <= 0 or len(self._sent) < self.rpm
        used = sum(entry[1] for entry in self._sent)
        # A request larger than the whole budget still goes, alone, rather than never.
        fits_tpm = self.tpm <= 0 or used + tokens <= self.tpm or not self._sent
        if fits_rpm and fits_tpm:
            slot = [now, float(tokens)]
            self._sent.append(slot)
            return slot
        return max(self._sent[0][0] + self.window - now, 0.01)

    @staticmethod
    def correct(slot: list[float], actual_tokens: int) -> None:
        """Replace a slot's estimate with the tokens the server reported."""
        slot[1] = float(actual_tokens)


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """Rough tokens for prompt + reply before sending: chars/2 for the prompt, as much again for the reply."""
    chars = sum(len(str(m.get("content", ""))) for m in messages)
    return max(1, chars)


def parse_retry_after(headers: Any) -> Optional[float]:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (fractional seconds or an HTTP date)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        seconds: Optional[float]
        try:
            seconds = float(value) / divisor
        except ValueError:
            seconds = _seconds_until(value) if divisor == 1.0 else None
        if seconds is not None:
            return max(0.0, min(seconds, MAX_RETRY_AFTER))
    return None


def _seconds_until(http_date: str) -> Optional[float]:
    try:
        return email.utils.parsedate_to_datetime(http_date).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform(0.5, 1) * min(cap, base * 2**(attempt-1))."""
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + rng.random() / 2)


@dataclass(frozen=True)
class AttemptError:
    """Why one attempt failed and what to do about it."""

    reason: str
    retryable: bool
    retry_after: Optional[float] = None
    fatal: bool = False  # no point sending anything else (bad key, wrong URL)


def classify_error(exc: BaseException) -> AttemptError:
    """Map an exception from one attempt to a reason and a retry decision."""
    import openai

    if isinstance(exc, (asyncio.TimeoutError, openai.APITimeoutError)):
        return AttemptError("timeout", True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRYABLE_STATUS or status >= 500
        retry_after = parse_retry_after(exc.response.headers) if retryable else None
        return AttemptError(f"http_{status}", retryable, retry_after, fatal=status in (401, 403, 404))
    if isinstance(exc, openai.APIConnectionError):
        return AttemptError("connection_error", True)
    if isinstance(exc, (ValueError, openai.APIResponseValidationError)):
        return AttemptError("bad_response", True)  # unreadable body: often a proxy hiccup
    return AttemptError(f"error_{type(exc).__name__}", False)


class LLMClient:
    """Batch chat completions over the ``openai`` SDK (its own retries off; ours apply)."""

    def __init__(self, api: ApiConfig, api_key: str, journal_path: Path, *, backoff_base: float = 1.0,
                 backoff_max: float = 30.0, seed: int = 0, rate_window: float = 60.0) -> None:
        self.api = api
        self._api_key = api_key  # only ever handed to the SDK; never logged or written
        self.journal = ResponseJournal(journal_path)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.rng = random.Random(seed)
        self.limiter = RateLimiter(api.rpm, api.tpm, window=rate_window)
        self.ledger = Ledger(model=api.model, price_input_per_1m=api.price_input_per_1m,
                             price_output_per_1m=api.price_output_per_1m)
        self._in_flight = 0
        self._pause_until = 0.0  # a 429's Retry-After pauses every request, not just its own
        self._stop_reason = ""  # set once the spend cap, the deadline or a fatal error stops new requests
        self._deadline = float("inf")  # monotonic time after which nothing new is sent (augmentation.api.deadline_s)
        self._finished = self._total = 0
        self.fatal: Optional[str] = None  # one line for the user when the server refused us (bad key, wrong URL)

    def __repr__(self) -> str:
        return f"LLMClient(base_url={redact_url(self.api.base_url)!r}, model={self.api.model!r})"  # no key

    def params(self, req: ChatRequest) -> dict[str, Any]:
        """Generation parameters sent with ``req`` (and hashed into its journal key)."""
        out: dict[str, Any] = {"temperature": self.api.temperature, "max_tokens": self.api.max_tokens}
        if req.response_format is not None:
            out["response_format"] = req.response_format
        return out

    def key(self, req: ChatRequest) -> str:
        """Journal key of ``req``: model + messages + generation params."""
        return request_key(self.api.model, req.messages, self.params(req))

    async def complete_many(self, requests: list[ChatRequest], progress: bool = True) -> list[ChatResult]:
        """Complete every request (journal first, then the API); results in request order."""
        from openai import AsyncOpenAI

        started = time.monotonic()
        if self.api.deadline_s > 0:
            self._deadline = started + self.api.deadline_s
        keys = [self.key(r) for r in requests]
        done, todo = split_by_journal(requests, keys, self.journal, self.ledger)
        logger.info("augmentation: %d requests to %s (%d answered earlier, in the journal)", len(todo),
                    redact_url(self.api.base_url), len(done))
        self._total = len(todo)
        bar = progress_bar(len(done) + len(todo), progress, f"LLM {self.api.model}")
        bar.update(len(done))
        client = AsyncOpenAI(api_key=self._api_key, base_url=self.api.base_url, timeout=self.api.timeout,
                             max_retries=0)
        semaphore = asyncio.Semaphore(max(1, self.api.max_concurrency))
        tasks = {key: asyncio.ensure_future(self._complete(client, semaphore, req, key, bar))
                 for key, req in todo.items()}
        try:
            for key, task in tasks.items():
                done[key] = await task
        finally:
            for task in tasks.values():
                task.cancel()
            await client.close()
            bar.close()
            self.journal.close()
            self.ledger.seconds += time.monotonic() - started
        return in_request_order(requests, keys, done)

    async def _complete(self, client: Any, semaphore: asyncio.Semaphore, req: ChatRequest, key: str,
                        bar: Any) -> ChatResult:
        result = await self._with_retries(client, semaphore, req, key)
        if result.ok:
            self.ledger.succeeded += 1
            self.journal.append(journal_record(req, key, self.api.model, result))
        else:
            self.ledger.failed += 1
            self.ledger.failures[result.error] += 1
        bar.update(1)
        self._finished += 1
        every = max(10, self._total // 10)
        if self._finished % every == 0 or self._finished == self._total:
            logger.info("augmentation: %d of %d requests finished (%d failed)", self._finished, self._total,
                        self.ledger.failed)
        return result

    async def _with_retries(self, client: Any, semaphore: asyncio.Semaphore, req: ChatRequest,
                            key: str) -> ChatResult:
        for attempt in range(1, self.api.max_retries + 2):
            try:
                async with semaphore:
                    outcome = await self._attempt(client, req)
            except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
                failure = classify_error(exc)
            else:
                if outcome is None:
                    return ChatResult(req.id, False, error=self._stop_reason, attempts=attempt - 1, key=key)
                text, tokens_in, tokens_out = outcome
                return ChatResult(req.id, True, text, attempts=attempt, tokens_in=tokens_in,
                                  tokens_out=tokens_out, key=key)
            self._note_failure(req, attempt, failure)
            if not failure.retryable or attempt > self.api.max_retries:
                return ChatResult(req.id, False, error=failure.reason, attempts=attempt, key=key)
            delay = self._retry_delay(attempt, failure)
            if time.monotonic() + delay > self._deadline:
                return ChatResult(req.id, False, error="deadline", attempts=attempt, key=key)
            if delay >= 5:
                logger.info("augmentation: %s on request %s; waiting %.0f s before retry %d of %d", failure.reason,
                            req.id, delay, attempt, self.api.max_retries)
            self.ledger.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt always returns")

    async def _attempt(self, client: Any, req: ChatRequest) -> Optional[tuple[str, int, int]]:
        """Inside a concurrency slot: honour pauses and limits, then send; None when stopped."""
        # Checked here, not before queueing for the slot, so queued requests see the latest cost.
        await self._wait_pause()
        slot = await self.limiter.acquire(estimate_tokens(req.messages))
        if self._stopped():
            return None
        text, tokens_in, tokens_out = await self._send(client, req)
        RateLimiter.correct(slot, tokens_in + tokens_out)
        return text, tokens_in, tokens_out

    def _note_failure(self, req: ChatRequest, attempt: int, failure: AttemptError) -> None:
        self.ledger.errors[failure.reason] += 1
        logger.debug("request %s attempt %d failed: %s", req.id, attempt, failure.reason)
        if failure.fatal and not self._stop_reason:
            self._stop_reason = f"aborted_after_{failure.reason}"
            status = failure.reason.removeprefix("http_")
            self.fatal = (f"the augmentation API at {redact_url(self.api.base_url)} answered HTTP {status} to the first request: "
                          f"check the key in {self.api.api_key_env} (environment or .env), augmentation.api.base_url "
                          f"and augmentation.api.model ({self.api.model}); nothing else was sent")

    def _retry_delay(self, attempt: int, failure: AttemptError) -> float:
        if failure.retry_after is not None:
            delay = failure.retry_after + self.rng.random() * 0.1 * max(failure.retry_after, 0.1)
            if failure.reason == "http_429":
                self._pause_until = max(self._pause_until, time.monotonic() + delay)
            return delay
        return backoff_delay(attempt, self.backoff_base, self.backoff_max, self.rng)

    async def _wait_pause(self) -> None:
        delay = self._pause_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _stopped(self) -> bool:
        if not self._stop_reason and time.monotonic() > self._deadline:
            self._stop_reason = "deadline"
            logger.warning("augmentation.api.deadline_s=%.0f reached: remaining requests are not sent",
                           self.api.deadline_s)
        if not self._stop_reason and 0 < self.api.max_cost <= self.ledger.cost:
            self._stop_reason = "cost_cap"
            logger.warning("augmentation spend cap reached (estimated %.4f >= augmentation.api.max_cost %.4f); "
                           "remaining requests are not sent", self.ledger.cost, self.api.max_cost)
        return bool(self._stop_reason)

    async def _send(self, client: Any, req: ChatRequest) -> tuple[str, int, int]:
        """One HTTP attempt; raises on any failure, returns (text, tokens_in, tokens_out)."""
        self.ledger.sent += 1
        self._in_flight += 1
        self.ledger.max_in_flight = max(self.ledger.max_in_flight, self._in_flight)
        try:
            # The SDK's timeout covers each read; wait_for bounds the whole request.
            response = await asyncio.wait_for(
                client.chat.completions.create(model=self.api.model, messages=req.messages, **self.params(req)),
                timeout=self.api.timeout)
        finally:
            self._in_flight -= 1
        text, tokens_in, tokens_out = _read_completion(response, req)
        self.ledger.tokens_in += tokens_in  # an answered request is paid for, usable or not
        self.ledger.tokens_out += tokens_out
        if text is None:
            raise ValueError("response has no message content")  # classified as bad_response, retried
        return text, tokens_in, tokens_out


def _read_completion(response: Any, req: ChatRequest) -> tuple[Optional[str], int, int]:
    """Text (None when the reply has no usable message) and token usage of a chat completion."""
    choices = getattr(response, "choices", None) or []
    text = getattr(choices[0].message, "content", None) if choices else None
    usage = getattr(response, "usage", None)
    # Servers that omit usage still cost something: estimate chars/2 so the ledger and cap stay honest.
    tokens_in = getattr(usage, "prompt_tokens", None) or estimate_tokens(req.messages) // 2
    tokens_out = getattr(usage, "completion_tokens", None) or len(text or "") // 2
    return text, int(tokens_in), int(tokens_out)
