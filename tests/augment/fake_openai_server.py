"""A loopback OpenAI-compatible chat server for tests and benchmarks.

Binds 127.0.0.1 on a free port, serves ``POST /v1/chat/completions`` from threads, and stops
itself after ``max_lifetime`` seconds even if a test forgets to. Behaviour is scripted by
markers in the request's message text, so one batch can mix good and bad requests:

- ``[[fake:429*2]]``   first 2 attempts answer 429 with ``Retry-After`` (then a normal reply)
- ``[[fake:500*1]]``   first attempt answers 500
- ``[[fake:hang*1]]``  first attempt sleeps ``hang_seconds`` before answering
- ``[[fake:badjson]]`` the body is not JSON (200, application/json)
- ``[[fake:nochoices]]`` a JSON body with an empty ``choices`` list
- ``[[fake:401]]``     answers 401 (not retried)

A count of ``*N`` is per request identity (the hash of the messages); without it the
behaviour applies to every attempt. Anything else gets a normal reply from ``responder``.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

Responder = Callable[[list[dict], dict], str]
_MARKER = re.compile(r"\[\[fake:(\w+)(?:\*(\d+))?\]\]")


def messages_identity(messages: list[dict]) -> str:
    """Stable id of a request's messages (the server's unit for counting attempts)."""
    blob = json.dumps(messages, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def default_responder(messages: list[dict], body: dict) -> str:
    """Echo-style reply: JSON for json_object requests, the last user text otherwise."""
    last = _MARKER.sub("", messages[-1].get("content", "")).strip()
    if (body.get("response_format") or {}).get("type") == "json_object":
        return json.dumps({"dialogue": "#Person1#: 안녕하세요.\n#Person2#: 네, 안녕하세요.",
                           "summary": "두 사람이 인사한다."}, ensure_ascii=False)
    return last


class FakeOpenAIServer:
    """Context manager around a ThreadingHTTPServer; see the module docstring."""

    def __init__(self, latency: float = 0.0, responder: Optional[Responder] = None,
                 retry_after: str = "0.2", hang_seconds: float = 3.0, max_lifetime: float = 300.0) -> None:
        self.latency = latency
        self.responder = responder or default_responder
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.max_lifetime = max_lifetime
        self.counts: Counter[str] = Counter()  # attempts per message identity
        self.log: list[dict[str, Any]] = []  # one entry per received request
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._stop_timer: Optional[threading.Timer] = None

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (ends in /v1)."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "FakeOpenAIServer":
        """Bind a free loopback port and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = _Server(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        # Bounded even if the owner never calls stop().
        self._stop_timer = threading.Timer(self.max_lifetime, self.stop)
        self._stop_timer.daemon = True
        self._stop_timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def plan(self, messages: list[dict]) -> tuple[str, int]:
        """Count this attempt and return (behaviour, attempt number) for it."""
        ident = messages_identity(messages)
        text = " ".join(str(m.get("content", "")) for m in messages)
        with self.lock:
            self.counts[ident] += 1
            attempt = self.counts[ident]
        match = _MARKER.search(text)
        if not match:
            return "ok", attempt
        limit = match.group(2)
        if limit is not None and attempt > int(limit):
            return "ok", attempt
        return match.group(1), attempt


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops bursts of connections; the client then waits ~1 s to retry.
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one send; unbuffered writes hit Nagle + delayed ACK (~40 ms).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    fake: FakeOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr access log."""

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        """Serve one chat completion according to the plan for its messages."""
        fake = self.fake
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with fake.lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            behaviour, attempt = fake.plan(body.get("messages", []))
            with fake.lock:
                fake.log.append({"identity": messages_identity(body.get("messages", [])), "attempt": attempt,
                                 "behaviour": behaviour, "auth": self.headers.get("Authorization", ""),
                                 "t": time.monotonic()})
            time.sleep(fake.latency)
            self._respond(behaviour, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before we answered
        finally:
            with fake.lock:
                fake.in_flight -= 1

    def _respond(self, behaviour: str, body: dict) -> None:
        if behaviour == "429":
            self._send(429, _error("rate limited"), {"Retry-After": self.fake.retry_after})
        elif behaviour in ("500", "401"):
            self._send(int(behaviour), _error(f"fake {behaviour}"))
        elif behaviour == "badjson":
            self._send(200, b"{not json at all")
        elif behaviour == "nochoices":
            self._send(200, json.dumps(_completion(body, None)).encode())
        else:
            if behaviour == "hang":
                time.sleep(self.fake.hang_seconds)
            content = self.fake.responder(body.get("messages", []), body)
            self._send(200, json.dumps(_completion(body, content), ensure_ascii=False).encode("utf-8"))

    def _send(self, status: int, payload: bytes, headers: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()


def _error(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "fake_error"}}).encode()


def _completion(body: dict, content: Optional[str]) -> dict:
    """A chat.completion object; ``content=None`` gives an empty choices list."""
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    choices = [] if content is None else [{
        "index": 0, "finish_reason": "stop", "logprobs": None,
        "message": {"role": "assistant", "content": content},
    }]
    completion_tokens = len(content or "") // 2
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "fake"), "choices": choices,
        "usage": {"prompt_tokens": prompt_chars // 2, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_chars // 2 + completion_tokens},
    }


# ---------------------------------------------------------------- a scripted "augmenter" for demos

_FILLERS = ("음, ", "그러니까 ", "아, ", "저기, ", "글쎄요, ")
# meaning-keeping swaps a paraphraser might make (each side reads naturally in these dialogues)
_SWAPS = (("정말", "진짜"), ("하지만", "그렇지만"), ("그래서", "그러니까"), ("아주", "무척"), ("조금", "약간"),
          ("감사합니다", "고맙습니다"), ("미안해요", "죄송해요"), ("많이", "꽤"), ("빨리", "얼른"), ("같아요", "것 같네요"),
          ("좋아요", "괜찮아요"), ("알겠어요", "알았어요"), ("생각해요", "생각합니다"), ("있어요", "있습니다"),
          ("없어요", "없습니다"), ("그럼", "그러면"), ("아마", "어쩌면"), ("네, ", "예, "))
# short, fluent, invented dialogues a synthetic request may get back (none copies a train or dev row)
_INVENTED = (
    ("#Person1#: 이번 주말에 같이 등산 갈래요?\n#Person2#: 좋아요. 어느 산으로 갈까요?\n"
     "#Person1#: 북한산이 가깝고 경치도 좋대요.\n#Person2#: 그럼 토요일 아침 일곱 시에 역에서 만나요.",
     "#Person1#과 #Person2#는 토요일 아침에 북한산으로 등산을 가기로 합니다."),
    ("#Person1#: 어제 주문한 신발이 아직 안 왔어요.\n#Person2#: 주문 번호를 알려 주시겠어요?\n"
     "#Person1#: 네, 여기 있습니다.\n#Person2#: 확인해 보니 내일 도착할 예정입니다.",
     "#Person1#은 주문한 신발이 오지 않았다고 문의하고, #Person2#는 내일 도착한다고 안내합니다."),
    ("#Person1#: 요즘 잠을 잘 못 자서 피곤해요.\n#Person2#: 자기 전에 휴대폰을 보는 편이에요?\n"
     "#Person1#: 네, 늦게까지 영상을 봐요.\n#Person2#: 그럼 한 시간 전에는 휴대폰을 내려놓아 보세요.",
     "#Person1#은 잠을 잘 못 자서 피곤하고, #Person2#는 자기 전에 휴대폰을 보지 말라고 조언합니다."),
)


def _rewrite(dialogue: str) -> str:
    """A fluent, deterministic 'paraphrase': a filler at the start of every other turn and a few word swaps."""
    out = []
    for i, line in enumerate(dialogue.strip().splitlines()):
        tag, sep, text = line.partition(": ")
        if not sep:
            out.append(line)
            continue
        for old, new in _SWAPS:
            text = text.replace(old, new)
        out.append(f"{tag}: {_FILLERS[i % len(_FILLERS)] if i % 2 == 0 else ''}{text}")
    return "\n".join(out)


def _between(text: str, start: str, end: str) -> str:
    head = text.split(start, 1)[-1]
    return head.split(end, 1)[0] if end in head else head


def _bucket(messages: list[dict]) -> int:
    return int(messages_identity(messages), 16) % 10


def demo_responder(messages: list[dict], body: dict) -> str:
    """Replies that look like an LLM's, good and bad in fixed proportions (by a hash of the prompt).

    Paraphrase: 6/10 clean rewrites, 1 wrapped in English prose (the parser strips it), 1 near-copy,
    1 with half the turns missing, 1 with a speaker renamed. Synthetic: JSON as a string, as a
    list of turns, in a code fence, not JSON at all, with an ungrounded summary, a near-copy.
    """
    prompt = messages[-1]["content"]
    bucket = _bucket(messages)
    if (body.get("response_format") or {}).get("type") == "json_object":
        return _demo_synthetic(prompt, bucket)
    original = prompt.rsplit("대화:\n", 1)[-1]
    good = _rewrite(original)
    lines = good.splitlines()
    return [good, good, good, good, good, good,
            f"Sure! Here is the paraphrased dialogue:\n\n{good}\n\n이상입니다.",
            original.replace(".", "!", 1),
            "\n".join(lines[: max(1, len(lines) // 3)]),
            good.replace("#Person2#", "#Person3#")][bucket]


def _demo_synthetic(prompt: str, bucket: int) -> str:
    example = _between(prompt, "예시 1:\n대화:\n", "\n요약:\n")
    dialogue, summary = _INVENTED[bucket % len(_INVENTED)]
    if bucket == 5:
        turns = [{"speaker": line.split(":", 1)[0].strip("#"), "text": line.split(": ", 1)[-1]}
                 for line in dialogue.splitlines()]
        return json.dumps({"dialogue": turns, "summary": summary}, ensure_ascii=False)
    if bucket == 6:
        return "```json\n" + json.dumps({"dialogue": dialogue, "summary": summary}, ensure_ascii=False) + "\n```"
    if bucket == 7:
        return f"대화:\n{dialogue}\n요약: {summary}"
    if bucket == 8:
        return json.dumps({"dialogue": dialogue, "summary": f"#Person3#가 {summary}"}, ensure_ascii=False)
    if bucket == 9:
        return json.dumps({"dialogue": example, "summary": summary}, ensure_ascii=False)
    return json.dumps({"dialogue": dialogue, "summary": summary}, ensure_ascii=False)
