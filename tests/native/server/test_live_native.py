"""The app on a real socket (werkzeug's threaded server on port 0, in a thread): flushing,
hang-ups, concurrency, shutdown with a stream in flight."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Iterator

import pytest
import requests

from llamactypes.engine import Engine
from llamactypes.server import ServerConfig, ServerThread, create_app
from llamactypes.server.sse import iter_sse
from tests.fixtures.isolation import assert_own_answer

BANNED_EOG = {"289": False, "291": False}  # the tiny model's end tokens (checked below): keep it talking


def test_the_banned_tokens_are_the_tiny_models_end_tokens(tiny_engine: Engine) -> None:
    assert {int(t) for t in BANNED_EOG} == set(tiny_engine.model.eog_tokens)


@pytest.fixture
def server(tiny_engine: Engine) -> Iterator[ServerThread]:
    app = create_app(tiny_engine, ServerConfig(heartbeat=0.2))
    with ServerThread(app) as server:
        wait_ready(server.url)
        yield server


def wait_ready(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready")
        time.sleep(0.02)


def stream_events(url: str, body: dict[str, Any]) -> Iterator[tuple[float, Any]]:
    with requests.post(url, json=body, stream=True, timeout=60) as response:
        assert response.status_code == 200
        for event in iter_sse(response.iter_content(chunk_size=None)):
            yield time.monotonic(), (event.data if event.data == "[DONE]" else json.loads(event.data))


def test_tokens_are_flushed_as_they_are_produced(server: ServerThread, tiny_engine: Engine) -> None:
    body = {"prompt": "the", "max_tokens": 240, "temperature": 0, "stream": True, "logit_bias": BANNED_EOG}
    running_at_first_text = None
    n_text = 0
    for _, data in stream_events(server.url + "/v1/completions", body):
        if data != "[DONE]" and data["choices"] and data["choices"][0]["text"]:
            n_text += 1
            if running_at_first_text is None:  # a buffering server would only answer after the end
                running_at_first_text = tiny_engine.busy
    assert running_at_first_text is True and n_text >= 100


def test_first_bytes_arrive_before_the_job_leaves_the_queue(server: ServerThread, tiny_engine: Engine) -> None:
    hold = {"prompt": "the", "max_tokens": 150, "temperature": 0, "logit_bias": BANNED_EOG}
    blocker = threading.Thread(target=requests.post, args=(server.url + "/v1/completions",), kwargs={"json": hold})
    blocker.start()
    while tiny_engine.queue_length == 0 and not tiny_engine.busy:
        time.sleep(0.005)
    events = stream_events(server.url + "/v1/messages", {"max_tokens": 4, "stream": True, "messages": [
        {"role": "user", "content": "hi"}]})
    _, first = next(events)
    assert first["type"] == "message_start"
    rest = [d["type"] for _, d in events]
    assert rest[-1] == "message_stop"
    blocker.join(60)


def test_a_client_that_hangs_up_cancels_its_generation(server: ServerThread, tiny_engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    generations: list[Any] = []  # the per-slot token steps the engine drives
    token_step = tiny_engine.model.token_step

    def recording_step(*args: Any, **kwargs: Any) -> Any:
        generations.append(token_step(*args, **kwargs))
        return generations[-1]

    monkeypatch.setattr(tiny_engine.model, "token_step", recording_step)
    body = json.dumps({"prompt": "the", "max_tokens": 240, "temperature": 0, "stream": True,
                       "logit_bias": BANNED_EOG}).encode()
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while received.count(b"data:") < 3:
        received += sock.recv(4096)
    sock.close()  # hang up mid-stream
    deadline = time.monotonic() + 5
    while tiny_engine.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not tiny_engine.busy, "the abandoned generation is still running"
    assert generations[0].finish_reason == "cancelled" and len(generations[0].tokens) < 240
    r = requests.post(server.url + "/v1/completions", json={"prompt": "the", "max_tokens": 3}, timeout=30)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 3


def test_concurrent_clients_are_all_answered_and_never_mixed(server: ServerThread) -> None:
    prompts = ["the cat", "a dog", "in the", "on and"]

    def ask(prompt: str) -> str:
        body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 10, "temperature": 0}
        r = requests.post(server.url + "/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200
        return r.json()["choices"][0]["message"]["content"]

    alone = {p: ask(p) for p in prompts}
    together: dict[str, str] = {}
    threads = [threading.Thread(target=lambda p=p: together.__setitem__(p, ask(p))) for p in prompts * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for prompt, text in together.items():  # batched math may differ in the last bits (docs/engine.md)
        assert_own_answer(text, alone, prompt)


def test_closing_the_engine_ends_a_stream_in_flight_with_an_error_event(tiny_model_path: Any) -> None:
    from llamactypes import Model

    with Model(tiny_model_path, n_ctx=256, n_threads=1) as model:
        engine = Engine(model)
        with ServerThread(create_app(engine)) as server:
            wait_ready(server.url)
            body = {"max_tokens": 200, "stream": True, "messages": [{"role": "user", "content": "hi"}],
                    "logit_bias": BANNED_EOG}
            events = stream_events(server.url + "/v1/chat/completions", body)
            next(events)
            next(events)
            engine.close()
            rest = [d for _, d in events]
    assert rest[-1] == "[DONE]" and "error" in rest[-2]


def test_expect_100_continue_is_answered_at_once(server: ServerThread) -> None:
    body = json.dumps({"prompt": "the", "max_tokens": 2}).encode()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        started = time.monotonic()
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        assert time.monotonic() - started < 0.5
        sock.sendall(body)
        reply = b""
        while b"text_completion" not in reply:
            reply += sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200")
