"""Issue 10, HTTP level, on a real socket (werkzeug's threaded server on port 0, the scripted fake
model, no native code): slow-loris heads and bodies, malformed request lines, oversized bodies."""

from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest
import requests

from llamactypes.engine import Engine
from llamactypes.server import ServerConfig, ServerThread, create_app

from .fakes import FakeModel


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with Engine(FakeModel()) as engine:
        app = create_app(engine, ServerConfig(max_body_bytes=64 * 1024))
        with ServerThread(app, read_timeout=1.0, head_timeout=2.0) as server:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if requests.get(server.url + "/health", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            yield server


def _raw(server: ServerThread, data: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return out, time.monotonic() - started


def test_slow_loris_heads_and_bodies_are_closed_after_the_read_timeout(server: ServerThread) -> None:
    holders = [socket.create_connection((server.host, server.port)) for _ in range(20)]
    try:
        for sock in holders:
            sock.sendall(b"GET /health HT")  # no end of line, ever
        assert requests.get(server.url + "/health", timeout=5).status_code == 200  # others are served meanwhile
        out, elapsed = _raw(server, b"POST /v1/completions HT")
        assert out == b"" and elapsed < 3  # closed after the 1 s read timeout, not held forever
        head = b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        out, elapsed = _raw(server, head + b"Content-Length: 100\r\n\r\n{\"pro")  # a body that stops
        assert elapsed < 3 and (out == b"" or out.startswith(b"HTTP/1.1 400"))
        for sock in holders:
            sock.settimeout(3)
            assert sock.recv(100) == b""  # the server closed each of them
    finally:
        for sock in holders:
            sock.close()


@pytest.mark.parametrize("line,status", [(b"GARBAGE", b"400"), (b"GET / HTTP/9.9", b"505"),
                                         (b"GET /" + b"a" * 70_000 + b" HTTP/1.1", b"414"),
                                         (b"GET / HTTP/1.1 extra", b"400"), (b"\x00\xff\xfe", b"400")])
def test_malformed_request_lines_get_a_status(server: ServerThread, line: bytes, status: bytes) -> None:
    out, _ = _raw(server, line + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 " + status), out[:100]
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_an_oversized_body_is_answered_413_before_it_is_sent(server: ServerThread) -> None:
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n")
    out, elapsed = _raw(server, head + b"Expect: 100-continue\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413") and b"100 Continue" not in out and elapsed < 2
    assert b"--max-body" in out
    out, elapsed = _raw(server, head + b"\r\n")  # no Expect: the answer comes without a byte of the body
    assert out.startswith(b"HTTP/1.1 413") and elapsed < 2
    # a body that is sent anyway is refused too (werkzeug reads what is in flight, then closes)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head.replace(b"1000000000", b"200000") + b"\r\n" + b" " * 200_000)
        assert sock.recv(100).startswith(b"HTTP/1.1 413")


def test_a_head_trickled_a_byte_at_a_time_is_cut_at_the_head_timeout(server: ServerThread) -> None:
    """Each byte comes within the per-read timeout (1 s): only the total bound on the head (2 s) ends it."""
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        try:
            for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(0.25)
                if time.monotonic() - started > 8:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            assert sock.recv(100) == b""  # closed, no answer
        except ConnectionResetError:
            pass
    assert time.monotonic() - started < 5
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_connections_past_the_cap_get_503_at_once_and_the_server_recovers() -> None:
    """Each connection holds a thread: past the cap a new one is answered 503 + Retry-After and
    closed without being read, instead of one more thread; freed connections make room again."""
    with Engine(FakeModel()) as engine, \
            ServerThread(create_app(engine, ServerConfig()), read_timeout=5.0, head_timeout=5.0,
                         max_connections=3) as server:
        idle = [socket.create_connection((server.host, server.port)) for _ in range(3)]
        try:
            deadline = time.monotonic() + 5
            while server.server.open_connections < 3:  # the accept loop has taken all three
                assert time.monotonic() < deadline
                time.sleep(0.01)
            out, elapsed = _raw(server, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in out
            assert b'"code":"too_many_connections"' in out and elapsed < 2
            assert server.server.refused_connections == 1
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 5
        while True:  # the held threads end when their sockets close
            try:
                if requests.get(server.url + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert server.server.open_connections <= 1
