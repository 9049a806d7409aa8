"""Server-sent events: encoding (one event per `bytes`, ready to flush) and a small
incremental decoder (for tests, benchmarks and anyone reading our streams).

    sse_event({"x": 1})                 -> b'data: {"x":1}\n\n'
    sse_event({"type": "ping"}, "ping") -> b'event: ping\ndata: {"type":"ping"}\n\n'
    sse_comment("keep-alive")           -> b': keep-alive\n\n'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

__all__ = ["SSE_HEADERS", "SSE_DONE", "sse_event", "sse_comment", "ServerSentEvent", "SSEDecoder", "iter_sse"]

#: headers for an event stream: never cached, never buffered by a proxy (nginx honours X-Accel-Buffering)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DONE = b"data: [DONE]\n\n"


#: one encoder for every event (json.dumps with options builds a new one per call: a per-token cost)
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One event: `data` (JSON-encoded unless already a str) with an optional `event:` name.

    A str with newlines becomes several `data:` lines, as the SSE grammar requires."""
    if not isinstance(data, str):  # encoded JSON holds no line break: one data line
        head = f"event: {event}\ndata: " if event else "data: "
        return (head + _json(data) + "\n\n").encode("utf-8")
    text = data
    lines = [f"event: {event}"] if event else []
    lines += [f"data: {line}" for line in text.split("\n")]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def sse_comment(text: str = "") -> bytes:
    """A comment line: ignored by clients, but it keeps an idle connection alive."""
    return f": {text}\n\n".encode("utf-8") if text else b":\n\n"


@dataclass(frozen=True)
class ServerSentEvent:
    """One decoded event: `event` ("message" when unnamed) and its `data` text."""

    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class SSEDecoder:
    """Incremental decoder: `feed(bytes)` returns the events completed so far.

    Keeps its own buffer (lines may be split anywhere across network reads) and
    accepts \\n, \\r\\n and \\r line ends. Comments are dropped unless `comments`."""

    def __init__(self, comments: bool = False) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._comments = comments
        self.comments_seen = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._buffer += chunk
        out: list[ServerSentEvent] = []
        while True:
            i = min((k for k in (self._buffer.find(b"\n"), self._buffer.find(b"\r")) if k >= 0), default=-1)
            if i < 0:
                return out
            end = i + 1
            if self._buffer[i:i + 2] == b"\r\n":
                end = i + 2
            elif self._buffer[i:i + 1] == b"\r" and end == len(self._buffer):
                return out  # a lone \r at the end may be half of \r\n: wait for more
            line = self._buffer[:i].decode("utf-8")
            self._buffer = self._buffer[end:]
            event = self._line(line)
            if event is not None:
                out.append(event)

    def _line(self, line: str) -> ServerSentEvent | None:
        if line == "":
            if not self._data and not self._event:
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            self.comments_seen += 1
            return ServerSentEvent("comment", line[1:].lstrip()) if self._comments else None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def iter_sse(chunks: Iterable[bytes], comments: bool = False) -> Iterator[ServerSentEvent]:
    """Decode a byte stream (e.g. `response.iter_bytes()`) into events as they complete."""
    decoder = SSEDecoder(comments=comments)
    for chunk in chunks:
        yield from decoder.feed(chunk)
