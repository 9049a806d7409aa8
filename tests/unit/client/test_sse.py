"""The client's SSE buffer: events come out the same however the bytes are cut."""

from __future__ import annotations

import random

import pytest

from llamactypes.client import ServerSentEvent, SSEDecoder, iter_sse

STREAM = (
    ": keep-alive\n\n"
    "data: {\"a\": \"h\u00e9llo \U0001f999\"}\n\n"
    "event: ping\ndata: {}\n\n"
    "data: line one\ndata: line two\n\n"
    "id: 7\ndata:no-space\n\n"
    "retry: 100\nunknown: x\ndata: [DONE]\n\n"
).encode("utf-8")
EXPECTED = [
    ServerSentEvent('{"a": "h\u00e9llo \U0001f999"}'),
    ServerSentEvent("{}", event="ping"),
    ServerSentEvent("line one\nline two"),
    ServerSentEvent("no-space", id="7"),
    ServerSentEvent("[DONE]", id="7"),
]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:])]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_single_cut_point(newline: str) -> None:
    data = STREAM.replace(b"\n", newline.encode())
    for cut in range(len(data) + 1):
        assert list(iter_sse(_split(data, [cut]))) == EXPECTED, cut


def test_byte_by_byte_and_random_pieces() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert list(iter_sse(bytes([b]) for b in crlf)) == EXPECTED
    rng = random.Random(0)
    for _ in range(300):
        data = rng.choice([STREAM, crlf])
        cuts = [rng.randrange(len(data)) for _ in range(rng.randrange(1, 12))]
        assert list(iter_sse(_split(data, cuts))) == EXPECTED


def test_events_are_delivered_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent("one")]
    assert decoder.feed(b"data: two\r") == []  # the CR might be half of a CRLF
    assert decoder.feed(b"\n\r\n") == [ServerSentEvent("two")]


def test_byte_order_mark_and_unterminated_last_event() -> None:
    assert list(iter_sse([b"\xef\xbb", b"\xbfdata: x\n\n"])) == [ServerSentEvent("x")]
    assert list(iter_sse([b"data: tail"])) == [ServerSentEvent("tail")]
    assert list(iter_sse([b": only a comment\n\n", b""])) == []
