"""Running the app on werkzeug's threaded server, tuned for token streaming.

`make_http_server(app, host, port)` is werkzeug's `make_server(threaded=True)`
with a request handler that sends each SSE event as one TCP segment at once
(werkzeug writes a chunk in four small writes; unbuffered and with Nagle on, a
later one can wait ~40 ms for the client's delayed ACK) and logs through the
`llamactypes.server` logger. Port 0 picks a free port: read it back from
`server.port`. `ServerThread` runs one in a background thread (tests, notebooks).

Hardened against clients that misbehave at the HTTP level: every socket read
waits at most `read_timeout` seconds and the whole head (request line and headers) at
most `head_timeout` seconds (a connection that sends a few bytes and no end of line,
or trickles a byte at a time, is closed instead of holding its thread); a malformed request
line (`GARBAGE`, `HTTP/9.9`, a URI over 64 KiB) gets its 400/505/414 status; a
body announced larger than the app's limit gets no `100 Continue` (the client
never sends it; the app answers 413 from the header). Each connection holds a
thread: past `max_connections` open at once, a new one gets `503` with
`Retry-After` at once and is closed, so a flood of idle sockets cannot exhaust
the process.
"""

from __future__ import annotations

import io
import logging
import math
import socket
import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

from ..limits import DEFAULT_LIMITS

__all__ = ["StreamingRequestHandler", "CappedThreadedServer", "make_http_server", "ServerThread"]

log = logging.getLogger("llamactypes.server")


class _DeadlineSocketReader(io.RawIOBase):
    """The socket's read side, where every `recv` waits at most until the handler's deadline
    (and at most its per-read timeout): a total bound on the request head, which a per-read
    timeout alone is not (a client trickling one byte per read would reset it forever)."""

    def __init__(self, handler: StreamingRequestHandler) -> None:
        self.handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        sock = self.handler.connection
        remaining = self.handler.head_deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("the request head took too long")
        per_read = self.handler.timeout
        sock.settimeout(remaining if per_read is None else min(per_read, remaining))
        return sock.recv_into(buffer)


class StreamingRequestHandler(WSGIRequestHandler):
    """werkzeug's handler with TCP_NODELAY, a buffered socket writer and quiet logging.

    werkzeug writes a chunk of a chunked response as four small writes and then flushes;
    with a buffered writer (`wbufsize=-1`) they leave as one `send` at that flush, and
    TCP_NODELAY sends it at once: one segment per SSE event, no Nagle delay.
    """

    disable_nagle_algorithm = True
    wbufsize = -1
    protocol_version = "HTTP/1.1"
    timeout: float | None = DEFAULT_LIMITS.http_read_timeout  # socket timeout (StreamRequestHandler.setup)
    head_timeout: float = DEFAULT_LIMITS.http_head_timeout
    head_deadline: float = math.inf
    # a request line without a version (`GARBAGE`) is answered with a status line, not as HTTP/0.9
    default_request_version = "HTTP/1.0"

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineSocketReader(self), 65536)

    def handle_one_request(self) -> None:
        self.head_deadline = time.monotonic() + self.head_timeout  # until run_wsgi: the head is in
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        # http.server writes "100 Continue" without flushing; with a buffered writer it must be
        # flushed here, or a client that waits for it (curl, for bodies over 1 MiB) stalls. A body
        # over the app's limit gets none: the app answers 413 and the client never sends it.
        if not self._body_too_large():
            self.send_response_only(100)
            self.end_headers()
            self.wfile.flush()
        return True

    def run_wsgi(self) -> None:
        self.head_deadline = math.inf  # the head is read: the body has the per-read timeout only
        self.connection.settimeout(self.timeout)  # (and writes too, not what was left of the head's time)
        # werkzeug would write "100 Continue" once more: handle_expect_100 has answered it
        if "Expect" in self.headers:
            del self.headers["Expect"]
        super().run_wsgi()

    def _body_too_large(self) -> bool:
        config = getattr(self.server.app, "config", None)  # type: ignore[attr-defined]
        limit = getattr(config, "max_body_bytes", None)
        try:
            return limit is not None and int(self.headers.get("Content-Length", "0")) > limit
        except ValueError:
            return False

    def finish(self) -> None:
        # flushing what is left for a client that already hung up is not an error worth a traceback
        try:
            super().finish()
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # a malformed request line leaves command/path unset: this runs while its error is sent
        log.debug("%s %s -> %s", getattr(self, "command", None) or "-", _short(getattr(self, "path", "-")), code)

    def log(self, type: str, message: str, *args: Any) -> None:
        getattr(log, "error" if type == "error" else "debug")(f"{self.address_string()} {message}", *args)


def _short(path: str) -> str:
    return path if len(path) <= 200 else path[:200] + f"... ({len(path)} characters)"


#: what a connection past the cap gets (the request is not read, so the API it speaks is unknown:
#: the OpenAI shape; every SDK retries a 503 after Retry-After)
_BUSY_BODY = (b'{"error":{"message":"the server has too many open connections; retry shortly",'
              b'"type":"server_error","code":"too_many_connections"}}')
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class CappedThreadedServer(ThreadedWSGIServer):
    """werkzeug's thread-per-connection server with a bound on connections open at once."""

    max_connections = DEFAULT_LIMITS.http_max_connections

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open = 0
        self._open_lock = threading.Lock()
        self.refused_connections = 0
        super().__init__(*args, **kwargs)

    @property
    def open_connections(self) -> int:
        return self._open

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            full = self._open >= self.max_connections
            if not full:
                self._open += 1
        if full:
            self.refused_connections += 1
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._open_lock:
            self._open -= 1


def make_http_server(app: Any, host: str = "127.0.0.1", port: int = 0, read_timeout: float | None = None,
                     head_timeout: float | None = None, max_connections: int | None = None) -> BaseWSGIServer:
    """A threaded werkzeug server bound to (host, port); `server.port` is the real port.

    `read_timeout`: seconds a socket read may wait; `head_timeout`: seconds the request line and
    headers may take in all; `max_connections`: connections open at once (defaults:
    `Limits.http_read_timeout` / `http_head_timeout` / `http_max_connections`, from the app's
    `config.limits` when it has one)."""
    limits = getattr(getattr(app, "config", None), "limits", DEFAULT_LIMITS)
    handler = type("StreamingRequestHandler", (StreamingRequestHandler,), {
        "timeout": limits.http_read_timeout if read_timeout is None else read_timeout,
        "head_timeout": limits.http_head_timeout if head_timeout is None else head_timeout})
    server = CappedThreadedServer(host, port, app, handler)
    server.max_connections = limits.http_max_connections if max_connections is None else max_connections
    return server


class ServerThread:
    """Serve `app` from a background thread: `with ServerThread(app) as s: requests.get(s.url)`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, read_timeout: float | None = None,
                 head_timeout: float | None = None, max_connections: int | None = None) -> None:
        self.server = make_http_server(app, host, port, read_timeout, head_timeout, max_connections)
        self.host = host
        self.port: int = self.server.port
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="llamactypes-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting connections and close the socket (in-flight requests finish on their threads)."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(10)
        self.server.server_close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
