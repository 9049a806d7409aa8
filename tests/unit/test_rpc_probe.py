"""The RPC handshake probe against fake endpoints: every way an endpoint can be wrong is a clear
RpcEndpointError naming it, within the timeout, and never reaches llama.cpp (no native library here)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Callable, Iterator

import pytest

from llamactypes import LlamaError, RpcEndpointError
from llamactypes.api.rpc import RPC_CMD_HELLO, RPC_CONN_CAPS_SIZE
from llamactypes.native.rpc import parse_endpoint, probe


def _serve_once(handler: Callable[[socket.socket], None]) -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            handler(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        listener.close()
        thread.join(5)


def _read_hello(conn: socket.socket) -> bytes:
    data = b""
    while len(data) < 1 + 8 + RPC_CONN_CAPS_SIZE:
        chunk = conn.recv(64)
        if not chunk:
            break
        data += chunk
    return data


def _answer(version: tuple[int, int, int], size: int | None = None) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        request = _read_hello(conn)
        assert request[0] == RPC_CMD_HELLO and struct.unpack("<Q", request[1:9])[0] == RPC_CONN_CAPS_SIZE
        body = bytes([*version, 0]) + bytes(RPC_CONN_CAPS_SIZE)
        conn.sendall(struct.pack("<Q", len(body) if size is None else size) + body)
    return handler


@pytest.fixture
def worker_v7() -> Iterator[str]:
    yield from _serve_once(_answer((7, 0, 0)))


def test_a_worker_of_our_protocol_passes(worker_v7: str) -> None:
    assert probe(worker_v7, timeout=5) == (7, 0, 0)


def test_another_protocol_version_is_named() -> None:
    for endpoint in _serve_once(_answer((3, 0, 0))):
        with pytest.raises(RpcEndpointError) as info:
            probe(endpoint, timeout=5)
        assert info.value.endpoint == endpoint
        assert "3.0.0" in str(info.value) and "7.0.0" in str(info.value) and "same pinned" in str(info.value)


def test_a_newer_minor_version_is_refused() -> None:
    for endpoint in _serve_once(_answer((7, 1, 0))):
        with pytest.raises(RpcEndpointError, match="7.1.0"):
            probe(endpoint, timeout=5)


def test_an_answer_of_the_wrong_size_is_another_protocol() -> None:
    for endpoint in _serve_once(_answer((7, 0, 0), size=4)):
        with pytest.raises(RpcEndpointError, match="4 bytes"):
            probe(endpoint, timeout=5)


def test_a_server_that_hangs_up_is_not_a_worker() -> None:
    for endpoint in _serve_once(lambda conn: None):
        with pytest.raises(RpcEndpointError, match="closed the connection"):
            probe(endpoint, timeout=5)


def test_a_port_that_accepts_but_never_answers_times_out() -> None:
    gate = threading.Event()
    for endpoint in _serve_once(lambda conn: gate.wait(10)):
        started = time.monotonic()
        with pytest.raises(RpcEndpointError, match="did not answer the RPC handshake within 0.5 s"):
            probe(endpoint, timeout=0.5)
        assert time.monotonic() - started < 3
        gate.set()


def test_nothing_listening_is_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(RpcEndpointError, match="connection refused.*rpc_worker --port") as info:
        probe(f"127.0.0.1:{port}", timeout=2)
    assert isinstance(info.value, LlamaError) and isinstance(info.value, ConnectionError)


def test_an_http_server_is_not_a_worker() -> None:
    """A wrong port that speaks another protocol: an HTTP server waits for a request line."""
    def http(conn: socket.socket) -> None:
        conn.recv(100)
        time.sleep(0.8)  # still waiting for "\r\n" when the probe gives up

    for endpoint in _serve_once(http):
        with pytest.raises(RpcEndpointError, match="not an RPC worker"):
            probe(endpoint, timeout=0.5)


@pytest.mark.parametrize("endpoint", ["localhost", "localhost:", ":50052", "host:port", "host:0", "host:70000", ""])
def test_malformed_endpoints(endpoint: str) -> None:
    with pytest.raises(RpcEndpointError, match="host:port"):
        parse_endpoint(endpoint)


def test_endpoints_split_at_the_last_colon_like_llama_cpp() -> None:
    assert parse_endpoint("192.168.1.20:50052") == ("192.168.1.20", 50052)
    assert parse_endpoint("::1:50052") == ("::1", 50052)


def test_unresolvable_host() -> None:
    with pytest.raises(RpcEndpointError, match="cannot resolve host"):
        probe("no-such-host.invalid:50052", timeout=2)
