"""How answers leave the server: SSE streams and patient JSON, both fed by engine jobs.

Streams send their headers and a first event *before* the job leaves the queue
(an OpenAI role chunk, Anthropic's `message_start`), keep the connection alive
while waiting or while a long prompt is processed (an SSE comment / a `ping`),
then one event per delta, flushed as produced. An error after the headers is
sent as an error event, so a broken stream fails visibly.

A non-stream answer keeps its real status (400, 503, ...) when it is ready
within `commit_after` seconds; past that the response commits to 200 and sends
a space every `heartbeat` seconds before the JSON (JSON allows leading
whitespace), so a client's idle timeout never fires on a slow CPU.

A client that hangs up is noticed when a write fails, or by peeking at the
socket every `heartbeat`; either way the job is cancelled and the next request runs.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from typing import Any, Callable, Iterable, Iterator

from werkzeug.wrappers import Response
from werkzeug.wsgi import ClosingIterator

from ..chat.types import Delta
from ..engine import Finished, Heartbeat, Job
from ..errors import ClosedError
from .errors import anthropic_error_body, anthropic_status, error_info, log_text, openai_error_body
from .sse import SSE_DONE, SSE_HEADERS, sse_comment, sse_event

__all__ = ["Responder", "client_gone"]

log = logging.getLogger("llamactypes.server")

_STATUS_TEXT = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large",
                500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}


def client_gone(environ: dict) -> bool:
    """True when the client closed its connection (peeks at werkzeug's socket; False when unknown).

    Uses poll(), not select(): select() raises for descriptors >= 1024, which a busy
    process reaches, and that error would read as "gone" and cancel every job."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        events = poller.poll(0)
        if not events:
            return False
        if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return True
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


class _Cancelled(Exception):
    """The engine cancelled the job while the client still listened (the server is stopping)."""


class Responder:
    """Builds the streaming and waiting responses; `track(+1/-1)` counts responses in flight."""

    def __init__(self, config: Any, track: Callable[[int], None]) -> None:
        self.config = config
        self.track = track

    def _events(self, job: Job, environ: dict) -> Iterator[Any]:
        """The job's events; Heartbeats also stand for "check the client", and a job cancelled
        by the engine (shutdown) raises instead of finishing quietly."""
        last_check = time.monotonic()
        events = job.events(heartbeat=self.config.heartbeat)
        try:
            for event in events:
                now = time.monotonic()
                if now - last_check >= min(self.config.heartbeat, 1.0):
                    last_check = now
                    if client_gone(environ):
                        log.info("client went away; cancelling %r", job)
                        return
                if isinstance(event, Finished) and event.reason == "cancelled":
                    raise _Cancelled()
                yield event
        finally:
            events.close()

    def _stream(self, job: Job, body: Callable[[dict], Iterator[bytes]]) -> Callable[..., Iterable[bytes]]:
        def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
            # closing the response cancels the job even if the body never got to read its events
            chunks = ClosingIterator(self._counted(body(environ)), [job.cancel])
            response = Response(chunks, mimetype="text/event-stream", headers=SSE_HEADERS)
            return response(environ, start_response)

        return app

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        self.track(1)
        try:
            yield from chunks
        finally:
            chunks.close()  # type: ignore[attr-defined]
            self.track(-1)

    # ------------------------------------------------------------ OpenAI

    def openai_stream(self, job: Job, chunks: Any, first: dict[str, Any] | None) -> Callable[..., Any]:
        """`data: {chunk}` lines, then `data: [DONE]` (an error becomes `data: {"error": ...}`)."""

        def body(environ: dict) -> Iterator[bytes]:
            yield sse_event(first) if first is not None else sse_comment("queued")
            try:
                for event in self._events(job, environ):
                    if isinstance(event, Heartbeat):
                        yield sse_comment("keep-alive")
                    elif isinstance(event, Delta):
                        chunk = chunks.delta(event)
                        if chunk is not None:
                            yield sse_event(chunk)
                    elif isinstance(event, Finished):
                        for chunk in chunks.finish(event):
                            yield sse_event(chunk)
            except Exception as exc:
                yield sse_event(openai_error_body(_stream_error(exc, job)))
            yield SSE_DONE

        return self._stream(job, body)

    # ------------------------------------------------------------ Anthropic

    def anthropic_stream(self, job: Job, stream: Any) -> Callable[..., Any]:
        """`event:` + `data:` pairs in the Messages API order; `ping` while waiting (and, after
        `event_keepalive` seconds with nothing but pings, an empty delta); `error` on failure."""

        def body(environ: dict) -> Iterator[bytes]:
            for name, data in stream.start(job.n_prompt):
                yield sse_event(data, name)
            last_event = time.monotonic()
            try:
                for event in self._events(job, environ):
                    if isinstance(event, Heartbeat):
                        now = time.monotonic()
                        if now - last_event >= self.config.event_keepalive:
                            last_event = now
                            out = stream.keepalive() or [stream.ping()]
                        else:
                            out = [stream.ping()]
                        for name, data in out:
                            yield sse_event(data, name)
                        continue
                    last_event = time.monotonic()
                    if isinstance(event, Delta):
                        out = stream.delta(event)
                    elif isinstance(event, Finished):
                        out = stream.finish(event)
                    else:
                        continue
                    for name, data in out:
                        yield sse_event(data, name)
            except Exception as exc:
                yield sse_event(anthropic_error_body(_stream_error(exc, job)), "error")

        return self._stream(job, body)

    # ------------------------------------------------------------ non-stream

    def json_when_done(self, job: Job, build: Callable[[list[Any]], dict[str, Any]], *,
                       anthropic_api: bool) -> Callable[..., Iterable[bytes]]:
        """A WSGI app answering with `build(events)` once the job is done (see the module docstring)."""

        def answer(environ: dict, start_response: Callable[..., Any]) -> Iterator[bytes]:
            self.track(1)
            try:
                yield from self._wait_and_answer(environ, start_response, job, build, anthropic_api)
            finally:
                self.track(-1)

        def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
            return ClosingIterator(answer(environ, start_response), [job.cancel])

        return app

    def _wait_and_answer(self, environ: dict, start_response: Callable[..., Any], job: Job,
                         build: Callable[[list[Any]], dict[str, Any]], anthropic_api: bool) -> Iterator[bytes]:
        commit_at = time.monotonic() + self.config.commit_after
        last_write = 0.0
        committed = False
        collected: list[Any] = []
        status, headers = 200, {}
        try:
            for event in self._events(job, environ):
                now = time.monotonic()
                if not committed and now >= commit_at:
                    start_response("200 OK", [("Content-Type", "application/json")])
                    committed = True
                if committed and now - last_write >= self.config.heartbeat:
                    last_write = now
                    yield b" "
                if not isinstance(event, Heartbeat):
                    collected.append(event)
            if not any(isinstance(e, Finished) for e in collected):  # the client went away
                if not committed:
                    start_response("499 Client Closed Request", [("Content-Length", "0")])
                return
            body = build(collected)
        except Exception as exc:
            info = _stream_error(exc, job)
            body = anthropic_error_body(info) if anthropic_api else openai_error_body(info)
            status = anthropic_status(info) if anthropic_api else info.status
            headers = info.headers
            if committed:
                log.warning("%r failed after its 200 status was sent: %s", job, info.message)
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if not committed:
            start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            *headers.items()])
        yield data


def _stream_error(exc: BaseException, job: Job) -> Any:
    if isinstance(exc, _Cancelled):
        exc = ClosedError("the server is shutting down")
    info = error_info(exc)
    if info.status >= 500 and not info.busy:
        log.error("%r failed%s", job, log_text(info), exc_info=exc)
    return info
