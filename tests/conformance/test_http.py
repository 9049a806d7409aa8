"""Raw HTTP against the served demo model: malformed input, routes, concurrent clients, hang-ups."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
import requests

from llamactypes.server.sse import iter_sse
from tests.fixtures.live_server import LiveServer


def post(server: LiveServer, path: str, data: Any, **kwargs: Any) -> requests.Response:
    payload = data if isinstance(data, (bytes, str)) else json.dumps(data)
    return requests.post(server.url + path, data=payload, headers={"content-type": "application/json"},
                         timeout=120, **kwargs)


@pytest.mark.parametrize("data,status,param", [
    (b"{", 400, None),
    (b"[]", 400, None),
    ({"messages": "hello"}, 400, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "warm"}, 400, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n"),
    ({"messages": [{"role": "user"}]}, 400, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {}}]}, 400,
     "tools[0].function.name"),
])
def test_malformed_openai_requests(server: LiveServer, data: Any, status: int, param: str | None) -> None:
    response = post(server, "/v1/chat/completions", data)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["param"] == param


def test_routes_methods_and_head(server: LiveServer) -> None:
    assert requests.head(server.url + "/", timeout=10).status_code == 200
    assert requests.get(server.url + "/v1/chat/completions", timeout=10).status_code == 405
    assert requests.get(server.url + "/v2/anything", timeout=10).status_code == 404
    assert requests.get(server.url + "/health", timeout=10).json() == {"status": "ok"}


MARKERS = ["apple", "river", "stone", "tiger", "piano"]  # words the demo model repeats when asked (checked alone)


def test_concurrent_clients_are_all_answered_and_none_mixed(server: LiveServer) -> None:
    """Ten requests at once (five prompts, streamed and not), each asking for its own marker word
    with a grammar that allows any of the five: a request that read another's prompt (a mixed-up
    KV cache or slot) answers another word. The words' margins are wide, so batched math, which
    is not bit-identical to decoding alone (docs/engine.md), cannot flip them."""
    grammar = "root ::= " + " | ".join(f'"{w}"' for w in MARKERS)

    def ask(word: str, stream: bool) -> str:
        body = {"messages": [{"role": "user", "content": f"Reply with exactly one word: {word}"}],
                "max_tokens": 8, "temperature": 0, "stream": stream, "grammar": grammar}
        response = post(server, "/v1/chat/completions", body, stream=stream)
        assert response.status_code == 200
        if not stream:
            return response.json()["choices"][0]["message"]["content"]
        text = ""
        for event in iter_sse(response.iter_content(chunk_size=None)):
            if event.data != "[DONE]":
                choices = json.loads(event.data)["choices"]
                text += (choices[0]["delta"].get("content") or "") if choices else ""
        return text

    assert {w: ask(w, False) for w in MARKERS} == {w: w for w in MARKERS}  # alone: each its own word
    results: list[tuple[str, str]] = []
    threads = [threading.Thread(target=lambda w=w, s=s: results.append((w, ask(w, s))))
               for w in MARKERS for s in (False, True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == sorted((w, w) for w in MARKERS for _ in range(2))


def test_concurrent_free_answers_stay_close_to_their_own(server: LiveServer) -> None:
    """Free text, greedy, four at once: every request is answered, and each answer starts with the
    word its prompt gives alone (later words may part: batched math is not bit-identical)."""
    prompts = ["Name a fruit.", "Name an animal.", "Name a city.", "Name a planet."]

    def ask(prompt: str) -> str:
        body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 12, "temperature": 0}
        return post(server, "/v1/chat/completions", body).json()["choices"][0]["message"]["content"]

    alone = {p: ask(p) for p in prompts}
    results: list[tuple[str, str]] = []
    threads = [threading.Thread(target=lambda p=p: results.append((p, ask(p)))) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == len(prompts)
    for prompt, answer in results:
        assert answer.split()[:1] == alone[prompt].split()[:1], (prompt, answer, alone[prompt])


def test_a_client_that_hangs_up_mid_stream_frees_the_model(server: LiveServer) -> None:
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 3000, "temperature": 0.7, "stream": True,
                       "logit_bias": {"0": False, "1": False, "2": False}}).encode()  # SmolLM2's end tokens
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while received.count(b"data:") < 5:
        received += sock.recv(4096)
    sock.close()
    # 3000 tokens would take most of a minute; a cancelled generation frees the model at once
    started = time.monotonic()
    response = post(server, "/v1/completions", {"prompt": "Hello", "max_tokens": 2, "temperature": 0})
    assert response.status_code == 200
    assert time.monotonic() - started < 10
