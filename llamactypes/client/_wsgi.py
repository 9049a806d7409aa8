"""Run a WSGI app in process behind a `requests.Session` (like httpx's ``WSGITransport``).

    session = requests.Session()
    session.mount("http://app/", WSGIAdapter(create_app(...)))
    chat = Chat(base_url="http://app/v1", session=session)

No socket, no thread: the request is turned into a WSGI environ, the app is
called, and its body iterable is read lazily, so streamed responses arrive
piece by piece and closing the response closes the app's iterable (the app
sees the same thing as a client hanging up).
"""

from __future__ import annotations

import io
import sys
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

__all__ = ["WSGIAdapter"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Body:
    """The app's body iterable as a raw file for `requests.Response` (read, read1, close)."""

    def __init__(self, first: bytes, rest: Iterator[bytes], app_iter: Iterable[bytes]) -> None:
        self._pending = first
        self._rest = rest
        self._app_iter = app_iter
        self.closed = False

    def _next(self) -> bytes:
        while not self._pending and not self.closed:
            try:
                self._pending = next(self._rest)
            except StopIteration:
                self.close()
            except Exception as exc:  # the app failed mid-body: to the client, a broken connection
                self.close()
                raise requests.ConnectionError(f"the WSGI app failed while streaming: {exc!r}") from exc
        return self._pending

    def read1(self, amt: int | None = None) -> bytes:
        data = self._next()
        if amt is None or amt < 0 or amt >= len(data):
            self._pending = b""
            return data
        self._pending = data[amt:]
        return data[:amt]

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        if amt is None or amt < 0:
            parts = []
            while chunk := self.read1():
                parts.append(chunk)
            return b"".join(parts)
        return self.read1(amt)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pending = b""
        close = getattr(self._app_iter, "close", None)
        if close is not None:
            close()


class WSGIAdapter(BaseAdapter):
    """A transport adapter that answers requests by calling a WSGI app in this thread."""

    def __init__(self, app: WSGIApp, script_name: str = "") -> None:
        super().__init__()
        self.app = app
        self.script_name = script_name.rstrip("/")

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        status_headers: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info and status_headers:
                raise exc_info[1].with_traceback(exc_info[2])
            status_headers[:] = [status, headers]
            return lambda data: None  # the legacy write() callable; nobody we serve uses it

        app_iter = self.app(self._environ(request), start_response)
        rest = iter(app_iter)
        first = b""
        while not status_headers or not first:  # headers may only be set on the first yield
            try:
                first = next(rest)
            except StopIteration:
                break
        if not status_headers:
            raise requests.ConnectionError("the WSGI app returned without calling start_response")
        status, headers = status_headers
        response = requests.Response()
        response.status_code = int(status.split(" ", 1)[0])
        response.reason = status.split(" ", 1)[1] if " " in status else ""
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = _Body(first, rest, app_iter)
        response.url = request.url or ""
        response.request = request
        response.connection = self
        if not stream:
            response.content  # noqa: B018 - read the whole body now, as requests does
            response.raw.close()
        return response

    def close(self) -> None:
        pass

    def _environ(self, request: requests.PreparedRequest) -> dict[str, Any]:
        url = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray)):
            body = b"".join(part.encode() if isinstance(part, str) else part for part in body)
        path = unquote(url.path or "/", encoding="latin-1")
        if self.script_name and path.startswith(self.script_name):
            path = path[len(self.script_name):]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method or "GET",
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": path,
            "QUERY_STRING": url.query,
            "SERVER_NAME": url.hostname or "localhost",
            "SERVER_PORT": str(url.port or (443 if url.scheme == "https" else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme or "http",
            "wsgi.input": io.BytesIO(bytes(body)),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        return environ
