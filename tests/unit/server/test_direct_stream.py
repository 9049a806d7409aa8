"""Streamed tokens written by the worker thread (`server.direct`): the same bytes, in order,
whatever the socket does, for every streaming API; and the `Job.divert` contract under it."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Iterator

import pytest
import requests

from llamactypes.chat.types import Delta
from llamactypes.engine import Engine, Finished, Job, Usage
from llamactypes.server import ServerConfig, ServerThread, create_app
from llamactypes.server.direct import DirectStream
from llamactypes.server.http import DirectChunks
from llamactypes.server.sse import SSEDecoder, iter_sse

from .fakes import FakeModel

WORDS = [f"w{i} " for i in range(120)]
TEXT = "".join(WORDS)


class _Queue:
    def position(self, job: Any) -> int | None:
        return None

    def withdraw(self, job: Any) -> bool:
        return False


# ------------------------------------------------------------------ Job.divert


def test_a_diversion_starts_only_on_an_empty_queue_and_keeps_the_order() -> None:
    job = Job("chat", None, _Queue())
    taken: list[Any] = []
    job.emit(Delta("content", text="a"))
    assert not job.divert(taken.append)  # "a" waits in the queue: "b" must not overtake it
    events = job.events()
    assert next(events).text == "a"
    assert job.divert(lambda e: taken.append(e) if isinstance(e, Delta) else e)
    job.emit(Delta("content", text="b"))
    assert [e.text for e in taken] == ["b"] and job.diverted
    job.emit(Finished("stop", Usage(1, 1)))  # the sink hands back what it does not take: it goes to the queue
    assert not job.diverted
    assert isinstance(next(events), Finished)


def test_what_a_sink_returns_replaces_the_event_and_ends_the_diversion() -> None:
    job = Job("chat", None, _Queue())
    job.divert(lambda e: ("rest of", e.text))
    job.emit(Delta("content", text="x"))
    job.emit(Delta("content", text="y"))  # not diverted any more: queued as is
    job.complete()
    assert list(job.events()) == [("rest of", "x"), Delta("content", text="y")]


def test_ending_a_diversion_waits_for_a_sink_call_in_progress() -> None:
    job = Job("chat", None, _Queue())
    inside, release, order = threading.Event(), threading.Event(), []

    def slow_sink(event: Any) -> None:
        inside.set()
        release.wait(5)
        order.append("sink done")

    job.divert(slow_sink)
    worker = threading.Thread(target=job.emit, args=(Delta("content", text="x"),))
    worker.start()
    assert inside.wait(5)
    stopper = threading.Thread(target=lambda: (job.divert(None), order.append("diversion ended")))
    stopper.start()
    time.sleep(0.05)
    release.set()
    worker.join(5)
    stopper.join(5)
    assert order == ["sink done", "diversion ended"]


# ------------------------------------------------------------------ over a real socket


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the worker's direct writes (the frames' sizes)."""
    counted: list[int] = []
    original = DirectChunks.send_nowait

    def counting(self: DirectChunks, frame: bytes) -> bytes:
        counted.append(len(frame))
        return original(self, frame)

    monkeypatch.setattr(DirectChunks, "send_nowait", counting)
    return counted


def _serve(model: FakeModel, **config: Any) -> Iterator[tuple[Engine, ServerThread]]:
    with Engine(model) as engine, ServerThread(create_app(engine, ServerConfig(**config))) as server:
        deadline = time.monotonic() + 10
        while True:
            try:
                if requests.get(server.url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        yield engine, server


@pytest.fixture
def served() -> Iterator[tuple[Engine, ServerThread]]:
    yield from _serve(FakeModel(WORDS, delay=0.002))


def _openai_text(events: list[Any]) -> str:
    out = []
    for data in events:
        if data == "[DONE]" or not data["choices"]:
            continue
        choice = data["choices"][0]
        out.append((choice.get("delta") or {}).get("content") or choice.get("text") or "")
    return "".join(out)


def _anthropic_text(events: list[Any]) -> str:
    return "".join(d["delta"].get("text", "") for d in events if d.get("type") == "content_block_delta")


def _responses_text(events: list[Any]) -> str:
    return "".join(d["delta"] for d in events if d.get("type") == "response.output_text.delta")


def _stream(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[list[Any], int]:
    """The decoded events of a streamed answer and how many SSE comments came with them."""
    decoder = SSEDecoder()
    events: list[Any] = []
    with requests.post(url, json=body, headers=headers, stream=True, timeout=30) as response:
        assert response.status_code == 200, response.text
        for chunk in response.iter_content(chunk_size=None):
            for event in decoder.feed(chunk):
                events.append(event.data if event.data == "[DONE]" else json.loads(event.data))
    return events, decoder.comments_seen


CASES = [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}, _openai_text),
    ("/v1/completions", {"prompt": "hi", "stream": True}, _openai_text),
    ("/v1/messages", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 500, "stream": True},
     _anthropic_text),
    ("/v1/responses", {"input": "hi", "stream": True, "store": False}, _responses_text),
]


@pytest.mark.parametrize("path,body,text", CASES, ids=["chat", "completions", "messages", "responses"])
def test_every_streaming_api_sends_its_tokens_from_the_worker(served: tuple[Engine, ServerThread], sends: list[int],
                                                             path: str, body: dict[str, Any], text: Any) -> None:
    _, server = served
    events, _ = _stream(server.url + path, body)
    assert text(events) == TEXT
    assert len(sends) >= len(WORDS) - 5  # all but the first few went out directly


@pytest.mark.parametrize("taken", [0, 5])
def test_what_the_socket_cannot_take_goes_out_in_order(served: tuple[Engine, ServerThread],
                                                       monkeypatch: pytest.MonkeyPatch, taken: int) -> None:
    """A full socket buffer (a slow client): the frame's rest is written by the request thread."""
    writes: list[bytes] = []

    def partial(self: DirectChunks, frame: bytes) -> bytes:
        if taken:
            self.sock.sendall(frame[:taken])
        writes.append(frame)
        return frame[taken:]

    monkeypatch.setattr(DirectChunks, "send_nowait", partial)
    _, server = served
    for path, body, text in CASES:
        events, _ = _stream(server.url + path, body)
        assert text(events) == TEXT, path
    assert len(writes) > 20  # the diversion starts again after each spill


def test_a_client_that_reads_nothing_for_a_while_gets_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real socket buffers fill while the client sleeps: nothing is lost or reordered."""
    spills: list[int] = []
    original = DirectStream.write_spill
    monkeypatch.setattr(DirectStream, "write_spill", lambda self, spill: (spills.append(len(spill.data)),
                                                                          original(self, spill)))
    usable = DirectChunks.usable

    def small_buffer(self: DirectChunks) -> bool:  # the server's side holds ~16 KB: it fills for sure
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        return usable(self)

    monkeypatch.setattr(DirectChunks, "usable", small_buffer)
    words = [f"{i:05d}" + "x" * 2000 + "\n" for i in range(400)]  # ~800 KB of content
    for _, server in _serve(FakeModel(words, delay=0.002)):
        body = json.dumps({"prompt": "hi", "stream": True}).encode()
        with socket.create_connection((server.host, server.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            time.sleep(0.5)
            raw = b""
            while chunk := sock.recv(1 << 16):
                raw += chunk
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert b"chunked" in head.lower()
        data = _dechunk(rest)
        events = [e.data for e in SSEDecoder().feed(data)]
        assert events[-1] == "[DONE]"
        assert _openai_text([json.loads(e) for e in events[:-1]]) == "".join(words)
    assert spills  # the worker met a full buffer and handed the rest back


def _dechunk(body: bytes) -> bytes:
    out, i = b"", 0
    while True:
        end = body.index(b"\r\n", i)
        size = int(body[i:end], 16)
        if size == 0:
            return out
        out += body[end + 2:end + 2 + size]
        assert body[end + 2 + size:end + 4 + size] == b"\r\n"
        i = end + 4 + size


def test_heartbeats_between_slow_tokens_keep_the_stream_whole() -> None:
    """Tokens slower than the heartbeat: the request thread takes the stream back for each
    comment (the worker's sink was waiting for the next token); the framing stays intact."""
    for _, server in _serve(FakeModel(WORDS[:6], delay=0.1), heartbeat=0.04):
        for path, body, text in CASES:
            events, comments = _stream(server.url + path, body)
            assert text(events) == "".join(WORDS[:6]), path
            if path.startswith("/v1/chat"):
                assert comments > 0


def test_heartbeats_do_not_interrupt_a_stream_that_flows(sends: list[int]) -> None:
    for _, server in _serve(FakeModel(WORDS * 3, delay=0.002), heartbeat=0.05):
        events, comments = _stream(server.url + "/v1/chat/completions",
                                   {"messages": [{"role": "user", "content": "hi"}], "stream": True})
        assert _openai_text(events) == TEXT * 3
        assert len(sends) >= 3 * len(WORDS) - 10  # the stream was not taken back for each heartbeat


def test_a_client_that_hangs_up_mid_stream_cancels_it(sends: list[int]) -> None:
    model = FakeModel([f"w{i} " for i in range(100000)], delay=0.001)
    for engine, server in _serve(model):
        with requests.post(server.url + "/v1/chat/completions", stream=True, timeout=30,
                           json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as response:
            for event in iter_sse(response.iter_content(chunk_size=None)):
                if len(sends) > 50:
                    break
        deadline = time.monotonic() + 10
        while model.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert model.running == 0
        model.script = ["Hello", " there"]
        answer = requests.post(server.url + "/v1/chat/completions", timeout=30,
                               json={"messages": [{"role": "user", "content": "hi"}]}).json()
        assert answer["choices"][0]["message"]["content"] == "Hello there"
