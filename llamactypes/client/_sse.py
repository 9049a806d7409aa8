"""Server-sent events, parsed incrementally with our own buffer.

Bytes arrive in whatever pieces the network delivers: a line, an event, or a
single UTF-8 character can be split across reads, and a ``\\r\\n`` can be split
between its two bytes. `SSEDecoder` keeps the unfinished tail between calls
and only decodes complete lines, so none of that matters to the caller.
(``requests.Response.iter_lines`` is not used: it splits on ``\\r`` and
``\\n`` separately inside a chunk and can join or lose lines at chunk edges.)

The rules are the WHATWG "event stream interpretation": lines end with CRLF,
LF or CR; a blank line dispatches the event; ``data`` lines are joined with
``\\n``; a line starting with ``:`` is a comment; one space after the colon is
dropped. At end of stream an event that lacks its final blank line is still
delivered (some servers omit it before closing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

__all__ = ["ServerSentEvent", "SSEDecoder", "iter_sse"]


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type (default ``"message"``), data and last event id."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed raw bytes in any pieces with `feed`; call `flush` at end of stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Add `chunk` and return the events it completed (possibly none)."""
        self._buffer += chunk
        if not self._started:
            if len(self._buffer) < 3 and b"\xef\xbb\xbf".startswith(bytes(self._buffer)):
                return []  # might still be a byte-order mark
            if self._buffer.startswith(b"\xef\xbb\xbf"):
                del self._buffer[:3]
            self._started = True
        events: list[ServerSentEvent] = []
        for line in self._complete_lines():
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: process a last unterminated line and a pending event."""
        events: list[ServerSentEvent] = []
        if self._buffer:
            rest = bytes(self._buffer).rstrip(b"\r")
            self._buffer.clear()
            event = self._line(rest.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _complete_lines(self) -> Iterator[str]:
        """Pop every complete line off the buffer (a trailing CR waits: an LF may follow)."""
        buf = self._buffer
        start = 0
        n = len(buf)
        while start < n:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, lf if lf >= 0 else n)
            if cr >= 0:
                if cr + 1 == n:
                    break  # "\r" at the very end: wait to see whether "\n" follows
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            yield bytes(buf[start:end]).decode("utf-8", errors="replace")
            start = nxt
        del buf[:start]

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment (servers send these as keep-alives)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields are ignored
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(data="\n".join(self._data), event=self._event or "message", id=self._last_id)
        self._data = []
        self._event = ""
        return event


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """The events in a stream of byte chunks, each yielded as soon as it is complete."""
    decoder = SSEDecoder()
    for chunk in chunks:
        if chunk:
            yield from decoder.feed(chunk)
    yield from decoder.flush()
