"""Running the app on werkzeug's threaded server, tuned for token streaming.

`make_http_server(app, host, port)` is werkzeug's `make_server(threaded=True)`
with a request handler that sends each SSE event as one TCP segment at once
(werkzeug writes a chunk in four small writes; unbuffered and with Nagle on, a
later one can wait ~40 ms for the client's delayed ACK) and logs through the
`llamactypes.server` logger. Port 0 picks a free port: read it back from
`server.port`. `ServerThread` runs one in a background thread (tests, notebooks).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

__all__ = ["StreamingRequestHandler", "make_http_server", "ServerThread"]

log = logging.getLogger("llamactypes.server")


class StreamingRequestHandler(WSGIRequestHandler):
    """werkzeug's handler with TCP_NODELAY, a buffered socket writer and quiet logging.

    werkzeug writes a chunk of a chunked response as four small writes and then flushes;
    with a buffered writer (`wbufsize=-1`) they leave as one `send` at that flush, and
    TCP_NODELAY sends it at once: one segment per SSE event, no Nagle delay.
    """

    disable_nagle_algorithm = True
    wbufsize = -1
    protocol_version = "HTTP/1.1"

    def run_wsgi(self) -> None:
        # werkzeug writes "100 Continue" without flushing; with a buffered writer it must be
        # flushed here, or a client that waits for it (curl, for bodies over 1 KiB) stalls.
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
            del self.headers["Expect"]
        super().run_wsgi()

    def finish(self) -> None:
        # flushing what is left for a client that already hung up is not an error worth a traceback
        try:
            super().finish()
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)

    def log(self, type: str, message: str, *args: Any) -> None:
        getattr(log, "error" if type == "error" else "debug")(f"{self.address_string()} {message}", *args)


def make_http_server(app: Any, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """A threaded werkzeug server bound to (host, port); `server.port` is the real port."""
    return make_server(host, port, app, threaded=True, request_handler=StreamingRequestHandler)


class ServerThread:
    """Serve `app` from a background thread: `with ServerThread(app) as s: requests.get(s.url)`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_http_server(app, host, port)
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
