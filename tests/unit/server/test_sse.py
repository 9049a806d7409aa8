"""SSE encoding and the incremental decoder."""

from __future__ import annotations

import json

from llamactypes.server.sse import SSE_DONE, SSEDecoder, iter_sse, sse_comment, sse_event


def test_event_encoding() -> None:
    assert sse_event({"a": 1}) == b'data: {"a":1}\n\n'
    assert sse_event({"type": "ping"}, "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert sse_event("line1\nline2") == b"data: line1\ndata: line2\n\n"
    assert sse_event({"t": "é"}) == 'data: {"t":"é"}\n\n'.encode()
    assert sse_comment("keep-alive") == b": keep-alive\n\n"
    assert SSE_DONE == b"data: [DONE]\n\n"


def test_decoder_round_trip_split_at_every_byte() -> None:
    stream = (sse_event({"x": "a\nb"}, "first") + sse_comment("ping") + sse_event("two\nlines") + SSE_DONE)
    events = list(iter_sse(stream[i:i + 1] for i in range(len(stream))))
    first = json.dumps({"x": "a\nb"}, separators=(",", ":"))
    assert [(e.event, e.data) for e in events] == [("first", first), ("message", "two\nlines"), ("message", "[DONE]")]
    assert events[0].json() == {"x": "a\nb"}


def test_decoder_handles_crlf_and_cr_line_ends_and_counts_comments() -> None:
    decoder = SSEDecoder(comments=True)
    events = decoder.feed(b"event: a\r\ndata: 1\r\n\r\n: hi\r\rdata: 2\r")
    assert [(e.event, e.data) for e in events] == [("a", "1"), ("comment", "hi")]
    assert decoder.feed(b"\n") == []  # \r\n completed, still no blank line
    assert [(e.event, e.data) for e in decoder.feed(b"\n")] == [("message", "2")]
    assert decoder.comments_seen == 1
