"""Concurrent vs one-at-a-time augmentation requests against a loopback server with fixed latency.

Usage: python -m benchmarks.augment_throughput [--requests 24] [--latency 0.5] [--concurrency 8]

Both runs go through ``LLMClient`` and the real ``openai`` SDK over HTTP to a local
OpenAI-compatible server (tests/data/fake_openai_server.py) that answers every request after
``--latency`` seconds. The last line is the speed-up, e.g. ``7.8x``.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from src.augment.chat import ChatRequest, run_requests
from src.augment.client import LLMClient
from src.config import ApiConfig
from tests.augment.fake_openai_server import FakeOpenAIServer

REPO_ROOT = Path(__file__).resolve().parents[1]


def timed_batch(base_url: str, concurrency: int, n: int, tag: str, journal_dir: Path) -> float:
    """Seconds to complete ``n`` fresh requests with ``concurrency`` in flight; all must succeed."""
    api = ApiConfig(base_url=base_url, model="bench", max_concurrency=concurrency, timeout=30.0)
    client = LLMClient(api, "sk-bench", journal_dir / f"{tag}.jsonl")
    requests = [ChatRequest(f"{tag}{i}", [{"role": "user", "content": f"{tag} 요청 {i}"}]) for i in range(n)]
    started = time.perf_counter()
    results = run_requests(client, requests, progress=False)
    seconds = time.perf_counter() - started
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed, e.g. {failed[0].error}")
    return seconds


def machine() -> str:
    """One line naming the machine the numbers come from."""
    import openai

    return (f"{platform.node()} | {platform.platform()} | {os.cpu_count()} CPUs | "
            f"Python {platform.python_version()} | openai {openai.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24, help="requests per run")
    parser.add_argument("--latency", type=float, default=0.5, help="server latency per request, seconds")
    parser.add_argument("--concurrency", type=int, default=8, help="max_concurrency of the concurrent run")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"measured: {args.requests} chat completions through LLMClient + openai SDK to a loopback server "
          f"with {args.latency:.2f} s latency; sequential (max_concurrency=1) vs max_concurrency={args.concurrency}")
    with FakeOpenAIServer(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        sequential = timed_batch(server.base_url, 1, args.requests, "seq", Path(tmp))
        concurrent = timed_batch(server.base_url, args.concurrency, args.requests, "con", Path(tmp))
        peak = server.max_in_flight
    print(f"sequential: {sequential:.2f} s ({args.requests / sequential:.2f} req/s)")
    print(f"concurrent: {concurrent:.2f} s ({args.requests / concurrent:.2f} req/s, peak {peak} in flight)")
    print(f"{sequential / concurrent:.1f}x")


if __name__ == "__main__":
    main()
