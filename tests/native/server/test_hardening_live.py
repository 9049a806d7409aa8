"""Issue 10 on a real socket with the tiny model: hang-ups, load, errors before the stream starts
(werkzeug's threaded server in a thread, port 0). The HTTP-level checks that need no model
(slow-loris, malformed request lines, oversized bodies) are in tests/unit/server/test_http_hardening.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from llamactypes import Model
from llamactypes.engine import Engine
from llamactypes.server import ServerConfig, ServerThread, create_app

from .test_live_native import BANNED_EOG, wait_ready

pytestmark = pytest.mark.slow

QUEUE = 8


@pytest.fixture(scope="module")
def engine(tiny_model_path: Path) -> Iterator[Engine]:
    with Model(tiny_model_path, n_ctx=256, n_threads=1) as model, Engine(model, max_waiting=QUEUE) as engine:
        yield engine


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    app = create_app(engine, ServerConfig(heartbeat=0.2, max_body_bytes=64 * 1024))
    with ServerThread(app, read_timeout=1.0) as server:
        wait_ready(server.url)
        yield server


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _request(body: dict[str, Any], path: str = "/v1/completions", host: str = "127.0.0.1") -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def _hang_up_after(server: ServerThread, n_events: int, body: dict[str, Any], path: str) -> None:
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(_request(body, path))
        received = b""
        while received.count(b"data:") < n_events:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")


def _wait_idle(engine: Engine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (engine.busy or engine.queue_length) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not engine.busy and engine.queue_length == 0, "an abandoned generation is still running"


def test_200_streams_hung_up_after_1_to_3_events_leave_the_server_answering(
        server: ServerThread, engine: Engine) -> None:
    bodies = [("/v1/completions", {"prompt": "the", "max_tokens": 200, "temperature": 0, "stream": True,
                                   "logit_bias": BANNED_EOG}),
              ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 200,
                                        "stream": True, "logit_bias": BANNED_EOG}),
              ("/v1/messages", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 200,
                                "stream": True})]

    def round_(n: int) -> None:
        for i in range(n):
            path, body = bodies[i % 3]
            _hang_up_after(server, 1 + i % 3, body, path)
            _wait_idle(engine)

    round_(30)  # warm-up: caches, thread stacks, allocator arenas
    before = _rss_kib()
    started = time.monotonic()
    round_(200)
    elapsed = time.monotonic() - started
    growth = (_rss_kib() - before) / before
    assert growth < 0.05, f"RSS grew {growth:.1%} over 200 hang-ups"
    r = requests.post(server.url + "/v1/completions", json={"prompt": "the", "max_tokens": 3}, timeout=30)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 3
    assert elapsed < 120


def test_8_clients_x_25_mixed_requests_lose_nothing_and_mix_nothing(server: ServerThread, engine: Engine) -> None:
    prompts = ["the cat", "a dog", "in the", "on and", "it is", "we go"]
    url = server.url

    def ask(kind: str, prompt: str) -> tuple[int, str]:
        messages = [{"role": "user", "content": prompt}]
        if kind == "chat":
            body = {"messages": messages, "max_tokens": 8, "temperature": 0}
            r = requests.post(url + "/v1/chat/completions", json=body, timeout=60)
            return r.status_code, r.json()["choices"][0]["message"]["content"] if r.ok else r.text
        if kind == "completion-stream":
            with requests.post(url + "/v1/completions", json={"prompt": prompt, "max_tokens": 8, "temperature": 0,
                                                              "stream": True}, stream=True, timeout=60) as r:
                if not r.ok:
                    return r.status_code, r.text
                text = ""
                for line in r.iter_lines():
                    if line.startswith(b"data: {"):
                        text += json.loads(line[6:])["choices"][0]["text"]
                return r.status_code, text
        if kind == "messages":
            r = requests.post(url + "/v1/messages", json={"messages": messages, "max_tokens": 8, "temperature": 0},
                              headers={"anthropic-version": "2023-06-01"}, timeout=60)
            return r.status_code, "".join(b.get("text", "") for b in r.json()["content"]) if r.ok else r.text
        if kind == "count":
            r = requests.post(url + "/v1/messages/count_tokens", json={"messages": messages}, timeout=60)
            return r.status_code, str(r.json().get("input_tokens"))
        r = requests.post(url + "/tokenize", json={"content": prompt}, timeout=60)
        return r.status_code, str(r.json().get("tokens"))

    kinds = ["chat", "completion-stream", "messages", "count", "tokenize"]
    reference = {(k, p): ask(k, p)[1] for k in kinds for p in prompts}
    statuses: Counter[int] = Counter()
    wrong: list[Any] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for i in range(25):
            key = (kinds[(c + i) % len(kinds)], prompts[(c * 7 + i) % len(prompts)])
            status, answer = ask(*key)
            with lock:
                statuses[status] += 1
                if status == 200 and answer != reference[key]:
                    wrong.append((key, answer, reference[key]))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not wrong, wrong[:3]
    # 8 clients never exceed the queue bound (1 running + QUEUE waiting): no 503 at all
    assert statuses == Counter({200: 200}), statuses


def test_grammar_and_token_errors_come_before_the_stream_starts(server: ServerThread, engine: Engine) -> None:
    """On the real vocabulary the request's grammar is compiled on the request thread: a streaming
    client gets a 4xx status, never `200` and then an error event after its turn in the queue."""
    refused = {"type": "array", "items": {"type": "integer"}, "minItems": 5000}
    for path, body in (
            ("/v1/completions", {"prompt": "the", "stream": True, "response_format": {
                "type": "json_schema", "json_schema": {"schema": refused}}}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True,
                                      "response_format": {"type": "json_schema", "json_schema": {"schema": refused}}}),
            ("/v1/completions", {"prompt": [1, 2, engine.model.n_vocab], "stream": True}),
            ("/v1/completions", {"prompt": "the", "stream": True, "grammar": "root ::= x"})):
        r = requests.post(server.url + path, json=body, timeout=30)
        assert 400 <= r.status_code < 500 and r.headers["Content-Type"] == "application/json", (path, r.text)
    r = requests.post(server.url + "/v1/completions", timeout=30, json={
        "prompt": "the", "max_tokens": 4, "stream": True, "grammar": "root ::= [a-z]+"})
    assert r.status_code == 200 and "error" not in r.text
