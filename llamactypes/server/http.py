"""Running the app on werkzeug's threaded server, tuned for token streaming.

`make_http_server(app, host, port)` is werkzeug's `make_server(threaded=True)`
with a request handler that turns off Nagle's algorithm (werkzeug writes each
chunk of a chunked response in several small `send`s; with Nagle on, the second
one can wait for the client's delayed ACK, ~40 ms per token) and logs through
the `llamactypes.server` logger. Port 0 picks a free port: read it back from
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
    """werkzeug's handler with TCP_NODELAY (each SSE event leaves at once) and quiet logging."""

    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

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
