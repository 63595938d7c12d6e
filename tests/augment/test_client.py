"""LLMClient against a loopback OpenAI-compatible server, through the real ``openai`` SDK over HTTP."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.augment.chat import ChatRequest, run_requests
from src.augment.client import LLMClient, RateLimiter, backoff_delay, parse_retry_after
from src.augment.journal import ResponseJournal as Journal
from src.config import REPO_ROOT, ApiConfig
from tests.augment.fake_openai_server import FakeOpenAIServer, messages_identity

KEY = "sk-test-0123456789"


def api_for(server: FakeOpenAIServer, **overrides) -> ApiConfig:
    """Fast settings for tests: short timeout, a few retries."""
    settings = {"base_url": server.base_url, "model": "fake-solar", "timeout": 0.5, "max_retries": 3,
                "max_concurrency": 4, "price_input_per_1m": 1.0, "price_output_per_1m": 2.0}
    return ApiConfig(**{**settings, **overrides})


def client_for(server: FakeOpenAIServer, journal: Path, **overrides) -> LLMClient:
    return LLMClient(api_for(server, **overrides), KEY, journal, backoff_base=0.05, backoff_max=0.2)


def req(rid: str, text: str, **kw) -> ChatRequest:
    return ChatRequest(rid, [{"role": "user", "content": text}], **kw)


def test_every_request_ends_succeeded_or_recorded_failed(tmp_path: Path) -> None:
    plan = {
        "ok": "평범한 요청", "r429": "[[fake:429*2]] 잠시 후", "r500": "[[fake:500*1]] 한 번 실패",
        "hang": "[[fake:hang*1]] 멈춤", "badjson1": "[[fake:badjson*1]] 깨진 본문", "dead500": "[[fake:500]] 항상 실패",
        "nochoices": "[[fake:nochoices]] 빈 선택지", "badjson": "[[fake:badjson]] 항상 깨짐",
    }
    with FakeOpenAIServer(hang_seconds=2.0) as server:
        client = client_for(server, tmp_path / "j.jsonl")
        results = {r.id: r for r in run_requests(client, [req(k, v) for k, v in plan.items()], progress=False)}
    assert set(results) == set(plan)
    for rid in ("ok", "r429", "r500", "hang", "badjson1"):
        assert results[rid].ok and results[rid].text, rid
    assert (results["r429"].attempts, results["r500"].attempts, results["hang"].attempts) == (3, 2, 2)
    assert not results["dead500"].ok and results["dead500"].error == "http_500" and results["dead500"].attempts == 4
    assert results["nochoices"].error == "bad_response" and results["badjson"].error == "bad_response"
    ledger = client.ledger.to_dict()
    assert ledger["succeeded"] == 5 and ledger["failed"] == 3
    assert ledger["failures"] == {"http_500": 1, "bad_response": 2}
    assert ledger["errors"]["timeout"] == 1 and ledger["errors"]["http_429"] == 2
    assert ledger["sent"] == sum(r.attempts for r in results.values()) == len(server.log)
    assert ledger["retries"] == ledger["sent"] - len(plan)
    assert ledger["cost"] > 0 and json.dumps(ledger)
    journaled = {json.loads(line)["id"] for line in (tmp_path / "j.jsonl").read_text().splitlines()}
    assert journaled == {"ok", "r429", "r500", "hang", "badjson1"}  # failures are not journaled


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with FakeOpenAIServer(retry_after="0.4") as server:
        [result] = run_requests(client_for(server, tmp_path / "j.jsonl"), [req("a", "[[fake:429*1]] x")], progress=False)
        times = [entry["t"] for entry in server.log]
    assert result.ok and result.attempts == 2
    assert times[1] - times[0] >= 0.4


def test_concurrency_reaches_the_configured_level_and_never_exceeds_it(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency=0.2) as server:
        client = client_for(server, tmp_path / "j.jsonl", max_concurrency=6)
        results = run_requests(client, [req(f"c{i}", f"요청 {i}") for i in range(24)], progress=False)
        assert server.max_in_flight == 6
    assert all(r.ok for r in results) and client.ledger.max_in_flight == 6
    assert client.ledger.seconds < 24 * 0.2 / 2  # far from sequential


def test_rerun_reads_the_journal_and_sends_nothing(tmp_path: Path) -> None:
    requests = [req(f"j{i}", f"저널 {i}") for i in range(5)] + [req("dup", "저널 0")]
    with FakeOpenAIServer() as server:
        first = run_requests(client_for(server, tmp_path / "j.jsonl"), requests, progress=False)
        sent = len(server.log)
        second_client = client_for(server, tmp_path / "j.jsonl")
        second = run_requests(second_client, requests, progress=False)
        assert len(server.log) == sent == 5  # the duplicate prompt was sent once
    assert [r.text for r in first] == [r.text for r in second]
    assert all(r.from_journal for r in second) and second_client.ledger.journal_hits == 5
    assert second_client.ledger.cost == 0 and second_client.ledger.journal_tokens_in > 0
    assert second[-1].id == "dup"


def test_failed_requests_are_retried_on_rerun(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        [first] = run_requests(client_for(server, tmp_path / "j.jsonl", max_retries=0), [req("f", "[[fake:500*1]] y")],
                               progress=False)
        [second] = run_requests(client_for(server, tmp_path / "j.jsonl"), [req("f", "[[fake:500*1]] y")],
                                progress=False)
    assert not first.ok and first.error == "http_500"
    assert second.ok and not second.from_journal


def test_cost_cap_stops_new_requests(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        client = client_for(server, tmp_path / "j.jsonl", max_concurrency=1, max_cost=1e-9)
        results = run_requests(client, [req(f"m{i}", f"비용 {i}" * 20) for i in range(5)], progress=False)
        assert len(server.log) == 1
    assert results[0].ok
    assert [r.error for r in results[1:]] == ["cost_cap"] * 4 and all(r.attempts == 0 for r in results[1:])
    assert client.ledger.failures == {"cost_cap": 4}


def test_authentication_error_stops_sending(tmp_path: Path) -> None:
    requests = [req("bad", "[[fake:401]] 키")] + [req(f"n{i}", f"다음 {i}") for i in range(6)]
    with FakeOpenAIServer(latency=0.05) as server:
        results = run_requests(client_for(server, tmp_path / "j.jsonl", max_concurrency=1), requests, progress=False)
        assert len(server.log) == 1
    assert results[0].error == "http_401"
    assert {r.error for r in results[1:]} == {"aborted_after_http_401"}


def test_key_goes_to_the_server_only(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        client = client_for(server, tmp_path / "j.jsonl")
        run_requests(client, [req("k", "키 확인")], progress=False)
        assert server.log[0]["auth"] == f"Bearer {KEY}"
    assert KEY not in (tmp_path / "j.jsonl").read_text() and KEY not in repr(client)
    assert KEY not in json.dumps(client.ledger.to_dict())


def test_rpm_limit_spaces_requests(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        api = api_for(server, rpm=3)
        client = LLMClient(api, KEY, tmp_path / "j.jsonl", rate_window=0.5)
        started = time.monotonic()
        run_requests(client, [req(f"r{i}", f"분당 {i}") for i in range(7)], progress=False)
        elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # 7 requests at 3 per 0.5 s need two extra windows


def test_rate_limiter_counts_requests_and_tokens() -> None:
    now = [0.0]
    rpm = RateLimiter(rpm=2, tpm=0, window=60.0, clock=lambda: now[0])
    assert isinstance(rpm.try_acquire(1), list)
    now[0] = 1.0
    assert isinstance(rpm.try_acquire(1), list)
    assert rpm.try_acquire(1) == pytest.approx(59.0)  # full until the first leaves the window
    now[0] = 60.0
    assert isinstance(rpm.try_acquire(1), list)

    tpm = RateLimiter(rpm=0, tpm=100, window=60.0, clock=lambda: now[0])
    first = tpm.try_acquire(70)
    assert isinstance(first, list)
    assert tpm.try_acquire(40) == pytest.approx(60.0)  # 70 + 40 > 100 tokens
    RateLimiter.correct(first, 20)  # the server reported fewer tokens than estimated
    assert isinstance(tpm.try_acquire(40), list)
    big = RateLimiter(rpm=0, tpm=10, clock=lambda: now[0])
    assert isinstance(big.try_acquire(500), list)  # larger than the whole budget still goes, alone


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "0.25"}) == pytest.approx(0.25)
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "150", "retry-after": "9"}) == pytest.approx(0.15)
    assert parse_retry_after({"retry-after": "99999"}) == 120.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after({"retry-after": date}) <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None


def test_backoff_grows_with_jitter_and_cap() -> None:
    import random

    rng = random.Random(0)
    delays = [backoff_delay(a, 1.0, 5.0, rng) for a in range(1, 6)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and all(d <= 5.0 for d in delays)


def test_journal_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"key": "a", "text": "x"}\n{"key": "b", "te', encoding="utf-8")
    journal = Journal(path)
    assert "a" in journal and "b" not in journal
    journal.append({"key": "c", "text": "y"})
    journal.close()
    assert set(Journal(path).entries) == {"a", "c"}


CHILD = """
import sys
from pathlib import Path
from src.config import ApiConfig
from src.augment.chat import ChatRequest, run_requests
from src.augment.client import LLMClient
base_url, journal, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
api = ApiConfig(base_url=base_url, model="fake-solar", timeout=5.0, max_concurrency=3)
requests = [ChatRequest(f"k{i}", [{"role": "user", "content": f"kill test {i}"}]) for i in range(n)]
run_requests(LLMClient(api, "sk-child", journal), requests, progress=False)
"""


def test_killed_run_then_rerun_resends_no_completed_request(tmp_path: Path) -> None:
    n, journal = 30, tmp_path / "journal.jsonl"
    requests = [req(f"k{i}", f"kill test {i}") for i in range(n)]
    with FakeOpenAIServer(latency=0.15) as server:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        child = subprocess.Popen([sys.executable, "-c", CHILD, server.base_url, str(journal), str(n)],
                                 cwd=REPO_ROOT, env=env)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 6):
                time.sleep(0.02)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        done_ids = {json.loads(line)["id"] for line in journal.read_text().splitlines() if line.endswith("}")}
        assert 6 <= len(done_ids) < n, "the child should be killed midway"
        results = run_requests(LLMClient(api_for(server, model="fake-solar"), KEY, journal), requests, progress=False)
        counts = dict(server.counts)
    assert all(r.ok for r in results)
    for r in requests:
        sent = counts.get(messages_identity(r.messages), 0)
        assert sent == 1 if r.id in done_ids else sent in (1, 2), (r.id, sent)
    assert sum(r.from_journal for r in results) == len(done_ids)


def test_run_requests_is_cancel_safe(tmp_path: Path) -> None:
    """Cancelling (as Ctrl-C does) keeps what completed in the journal."""
    with FakeOpenAIServer(latency=0.3) as server:
        client = client_for(server, tmp_path / "j.jsonl", max_concurrency=2)

        async def cancel_midway() -> None:
            task = asyncio.ensure_future(client.complete_many([req(f"x{i}", f"취소 {i}") for i in range(6)],
                                                              progress=False))
            journal, deadline = tmp_path / "j.jsonl", time.monotonic() + 60
            while time.monotonic() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 2):
                await asyncio.sleep(0.02)  # cancel once two answers are journaled, however slow the machine
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancel_midway())
    assert 2 <= len(Journal(tmp_path / "j.jsonl")) < 6
