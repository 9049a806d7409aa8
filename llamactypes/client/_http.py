"""HTTP to an OpenAI-compatible server with `requests`: JSON calls, SSE streams, errors as `ServerError`.

Every failure a caller can meet talking to a server becomes one `ServerError`:
an error status (its ``.status`` and decoded ``.body``, the message taken from
the OpenAI ``{"error": {"message": ...}}`` shape or the Anthropic one), an
``error`` object sent inside a stream, a connection that cannot be made, and a
stream that breaks before ``data: [DONE]``.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import requests

from ..errors import ServerError
from ._sse import SSEDecoder

__all__ = ["HTTPClient", "normalize_base_url", "error_message"]

DEFAULT_TIMEOUT = (10.0, 600.0)  # (connect, between two reads): a long prompt on CPU may take minutes


def normalize_base_url(url: str) -> str:
    """``http://host:port`` or ``…/v1`` or ``…/v1/`` → ``http://host:port/v1``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url if url.endswith("/v1") else url + "/v1"


def error_message(body: Any, fallback: str) -> str:
    """The human message inside an error body (OpenAI, Anthropic or plain shapes)."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        if isinstance(body.get("detail"), str):
            return body["detail"]
    if isinstance(body, str) and body.strip():
        return body.strip()[:2000]
    return fallback


class HTTPClient:
    """A `requests.Session` bound to one server; paths starting with ``/`` are from the root
    (``/health``), others from the base URL (``chat/completions`` → ``…/v1/chat/completions``)."""

    def __init__(self, base_url: str, api_key: str | None = None, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] | None = DEFAULT_TIMEOUT) -> None:
        self.base_url = normalize_base_url(base_url)
        self.root = self.base_url[: -len("/v1")]
        self.timeout = timeout
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self.session.headers.setdefault("User-Agent", "llamactypes-client")
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def url(self, path: str) -> str:
        return self.root + path if path.startswith("/") else f"{self.base_url}/{path}"

    def request(self, method: str, path: str, body: Any = None, stream: bool = False,
                timeout: float | tuple[float, float] | None = None) -> requests.Response:
        """Send one request; a non-2xx answer or a failed connection raises `ServerError`."""
        url = self.url(path)
        try:
            response = self.session.request(method, url, json=body, stream=stream,
                                            timeout=timeout if timeout is not None else self.timeout)
        except requests.RequestException as exc:
            raise ServerError(f"cannot reach the server at {url}: {exc}") from exc
        if response.status_code >= 400:
            raise _status_error(response)
        return response

    def get_json(self, path: str, timeout: float | tuple[float, float] | None = None) -> Any:
        return _json(self.request("GET", path, timeout=timeout))

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return _json(self.request("POST", path, body))

    def stream_json(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST with ``stream: true`` and yield each ``data:`` JSON object until ``[DONE]``.

        Closing the generator early closes the connection, which tells the server to
        stop generating.
        """
        response = self.request("POST", path, {**body, "stream": True}, stream=True)
        decoder = SSEDecoder()
        try:
            for chunk in _iter_raw(response):
                for event in decoder.feed(chunk):
                    if event.data.strip() == "[DONE]":
                        return
                    yield _decode_event(event.data)
            for event in decoder.flush():
                if event.data.strip() == "[DONE]":
                    return
                yield _decode_event(event.data)
            raise ServerError("the server closed the stream before data: [DONE]")
        finally:
            response.close()

    def close(self) -> None:
        if self._own_session:
            self.session.close()


def _decode_event(data: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ServerError(f"the server sent an event that is not JSON: {data[:200]!r}") from exc
    if isinstance(obj, dict) and obj.get("error") is not None and "choices" not in obj:
        raise ServerError(error_message(obj, "error inside the stream"), body=obj)
    if not isinstance(obj, dict):
        raise ServerError(f"the server sent an event that is not a JSON object: {data[:200]!r}")
    return obj


def _iter_raw(response: requests.Response) -> Iterator[bytes]:
    """Body bytes as soon as they arrive (``read1``: whatever one read returns, never waiting
    to fill a buffer, so each SSE event reaches the caller when the server sends it)."""
    raw = response.raw
    read1 = getattr(raw, "read1", None)
    try:
        if read1 is None:
            yield from response.iter_content(chunk_size=None)
            return
        while True:
            chunk = read1(65536)
            if not chunk:
                return
            yield chunk
    except (requests.RequestException, OSError, ValueError) as exc:
        raise ServerError(f"the stream from {response.url} broke: {exc}") from exc
    except Exception as exc:  # urllib3's ProtocolError and friends (not all are RequestException)
        if type(exc).__module__.startswith(("urllib3", "http.client")):
            raise ServerError(f"the stream from {response.url} broke: {exc}") from exc
        raise


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ServerError(f"the server answered {response.url} with something that is not JSON: "
                          f"{response.text[:200]!r}", status=response.status_code) from exc


def _status_error(response: requests.Response) -> ServerError:
    try:
        text = response.text
    except Exception:  # a broken error body: the status is still worth reporting
        text = ""
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    reason = f"{response.status_code} {response.reason or ''}".strip()
    message = error_message(body, reason)
    return ServerError(f"HTTP {response.status_code}: {message}", status=response.status_code, body=body)
