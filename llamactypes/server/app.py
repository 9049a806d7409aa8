"""`create_app(engine, config)`: the WSGI application serving both APIs on one engine.

Routing is a werkzeug `Map`; each endpoint is an `on_<endpoint>` method. The
app holds no global state: everything hangs off the `App` instance, so tests
can build as many as they like. Translation lives in `openai.py` and
`anthropic.py`; the streaming and waiting mechanics live in `responses.py`.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..chat.types import Delta
from ..engine import Engine, Finished, Usage, fold_events
from ..errors import InvalidRequestError
from . import anthropic, metrics, openai
from .errors import ApiError, anthropic_error_body, anthropic_status, error_info, openai_error_body
from .fields import get_bool, get_list, require
from .responses import Responder

__all__ = ["ServerConfig", "App", "create_app"]

log = logging.getLogger("llamactypes.server")

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


@dataclass
class ServerConfig:
    """How the app behaves (not what it serves: that is the engine's model).

    api_key: when set, every endpoint but `/` and `/health` needs it (Bearer or x-api-key).
    max_body_bytes: larger request bodies get 413.
    heartbeat: seconds of silence before a keep-alive (SSE comment / Anthropic ping).
    commit_after: a non-stream answer not ready after this long commits to 200 and
        sends whitespace until the JSON (so no client idle timeout fires on a long prompt).
    event_keepalive: an Anthropic stream with nothing but pings for this long gets an empty
        text delta: Claude Code's idle watchdog (5 minutes) does not count pings.
    """

    api_key: str | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    heartbeat: float = 5.0
    commit_after: float = 15.0
    event_keepalive: float = 60.0
    created: int = field(default_factory=lambda: int(time.time()))


_OPENAI_ROUTES = [
    ("/v1/chat/completions", "chat"), ("/chat/completions", "chat"),
    ("/v1/completions", "completions"), ("/completions", "completions"),
    ("/v1/embeddings", "embeddings"), ("/embeddings", "embeddings"),
]


def _url_map() -> Map:
    rules = [Rule("/", endpoint="root", methods=["GET", "HEAD"]),
             Rule("/health", endpoint="health", methods=["GET"]),
             Rule("/v1/health", endpoint="health", methods=["GET"]),
             Rule("/v1/models", endpoint="models", methods=["GET"]),
             Rule("/models", endpoint="models", methods=["GET"]),
             Rule("/v1/models/<path:model_id>", endpoint="model", methods=["GET"]),
             Rule("/tokenize", endpoint="tokenize", methods=["POST"]),
             Rule("/detokenize", endpoint="detokenize", methods=["POST"]),
             Rule("/v1/messages", endpoint="messages", methods=["POST"]),
             Rule("/v1/messages/count_tokens", endpoint="count_tokens", methods=["POST"]),
             Rule("/metrics", endpoint="metrics", methods=["GET"]),
             Rule("/slots", endpoint="slots", methods=["GET"])]
    rules += [Rule(path, endpoint=endpoint, methods=["POST"]) for path, endpoint in _OPENAI_ROUTES]
    return Map(rules, strict_slashes=False)


class App:
    """The WSGI application. `active` counts responses still being sent (for a clean shutdown)."""

    def __init__(self, engine: Engine, config: ServerConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ServerConfig()
        self.url_map = _url_map()
        self.responder = Responder(self.config, self._track)
        self._active = 0
        self._active_lock = threading.Lock()

    # ------------------------------------------------------------ WSGI plumbing

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = self.config.max_body_bytes
        started = time.monotonic()
        try:
            app = self.dispatch(request)
        except Exception as exc:
            app = self.error_response(request, exc)
        log.info("%s %s (%.1f ms to respond)", request.method, request.full_path.rstrip("?"),
                 (time.monotonic() - started) * 1000)
        return app(environ, start_response)

    def dispatch(self, request: Request) -> WSGIApp:
        adapter = self.url_map.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
        if endpoint not in ("root", "health"):
            self.check_key(request)
        handler = getattr(self, f"on_{endpoint}")
        return handler(request, **args)

    def _track(self, delta: int) -> None:
        with self._active_lock:
            self._active += delta

    @property
    def active(self) -> int:
        """Responses in progress (streams and waiting non-stream answers)."""
        return self._active

    def check_key(self, request: Request) -> None:
        key = self.config.api_key
        if not key:
            return
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = given or auth[7:].strip()
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
            raise ApiError(401, "invalid or missing API key (send 'Authorization: Bearer KEY' or 'x-api-key: KEY')")

    @staticmethod
    def is_anthropic(request: Request) -> bool:
        return request.path.startswith("/v1/messages") or "anthropic-version" in request.headers

    def error_response(self, request: Request, exc: BaseException) -> WSGIApp:
        """An error before any response started, in the shape of the API the client speaks."""
        info = error_info(exc)
        if info.status >= 500 and not info.busy:
            log.error("%s %s failed", request.method, request.path, exc_info=exc)
        elif not isinstance(exc, HTTPException):
            log.info("%s %s -> %d: %s", request.method, request.path, info.status, info.message)
        if self.is_anthropic(request):
            body, status = anthropic_error_body(info), anthropic_status(info)
        else:
            body, status = openai_error_body(info), info.status
        if request.method == "HEAD":
            return Response(status=status, headers=info.headers)
        return json_response(body, status, info.headers)

    def json_body(self, request: Request) -> dict[str, Any]:
        """The request body as a JSON object (400 for anything else, 413 when too large)."""
        if request.content_length is not None and request.content_length > self.config.max_body_bytes:
            raise ApiError(413, f"the request body is larger than {self.config.max_body_bytes} bytes")
        data = request.get_data(cache=False)
        if not data.strip():
            raise ApiError(400, "the request body is empty: send a JSON object")
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    # ------------------------------------------------------------ small endpoints

    def on_root(self, request: Request) -> WSGIApp:
        return json_response({"status": "ok", "model": self.engine.model_id,
                              "endpoints": ["/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                            "/v1/models", "/v1/messages", "/v1/messages/count_tokens",
                                            "/tokenize", "/detokenize", "/health"]})

    def on_health(self, request: Request) -> WSGIApp:
        return json_response({"status": "ok"})

    def on_metrics(self, request: Request) -> WSGIApp:
        """Prometheus text: requests, tokens, slots, queue, prompt cache (docs/engine.md)."""
        return Response(metrics.prometheus_text(self.engine.metrics()), content_type=metrics.CONTENT_TYPE)

    def on_slots(self, request: Request) -> WSGIApp:
        """One object per slot: id, state (idle, prompt, generating), n_cached, last_used."""
        return json_response(self.engine.slots())

    def _meta(self) -> dict[str, Any]:
        model = self.engine.model
        meta = {"n_ctx": self.engine.n_ctx}
        for key in ("n_ctx_train", "n_vocab", "n_embd"):
            value = getattr(model, key, None)
            if isinstance(value, int):
                meta[key] = value
        return meta

    def _created_at(self) -> str:
        return datetime.fromtimestamp(self.config.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def on_models(self, request: Request) -> WSGIApp:
        model_id = self.engine.model_id
        if self.is_anthropic(request):
            return json_response(anthropic.models_response(model_id, self._created_at()))
        return json_response(openai.models_response(model_id, self.config.created, self._meta()))

    def on_model(self, request: Request, model_id: str) -> WSGIApp:
        """Any id answers with the served model: clients name models freely (Claude Code sends its own)."""
        if self.is_anthropic(request):
            return json_response(anthropic.model_card(self.engine.model_id, self._created_at()))
        return json_response(openai.model_card(self.engine.model_id, self.config.created, self._meta()))

    def on_tokenize(self, request: Request) -> WSGIApp:
        body = self.json_body(request)
        content = require(body, "content")
        if not isinstance(content, str):
            raise InvalidRequestError("content must be a string", param="content")
        tokens = self.engine.tokenize(content, add_special=get_bool(body, "add_special", False),
                                      parse_special=get_bool(body, "parse_special", True))
        if get_bool(body, "with_pieces"):
            return json_response({"tokens": [{"id": t, "piece": self.engine.token_piece(t)} for t in tokens]})
        return json_response({"tokens": tokens})

    def on_detokenize(self, request: Request) -> WSGIApp:
        body = self.json_body(request)
        tokens = get_list(body, "tokens") or []
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise InvalidRequestError("tokens must be an array of integers", param="tokens")
        return json_response({"content": self.engine.detokenize(tokens)})

    def on_embeddings(self, request: Request) -> WSGIApp:
        inputs, fmt = openai.parse_embeddings(self.json_body(request))
        texts = [item if isinstance(item, str) else self.engine.detokenize(item) for item in inputs]
        result = self.engine.embed(texts)
        return json_response(openai.embeddings_response(result.vectors, result.n_tokens,
                                                        model=self.engine.model_id, encoding_format=fmt))

    # ------------------------------------------------------------ OpenAI generation

    def on_chat(self, request: Request) -> WSGIApp:
        call = openai.parse_chat(self.json_body(request))
        job = self.engine.chat(call.request)
        ids = dict(id=openai.new_id("chatcmpl-"), model=self.engine.model_id, created=int(time.time()))
        if call.stream:
            chunks = openai.ChatChunks(include_usage=call.include_usage, **ids)
            return self.responder.openai_stream(job, chunks, first=chunks.first())
        return self.responder.json_when_done(
            job, lambda events: openai.chat_response(fold_events(events), **ids), anthropic_api=False)

    def on_completions(self, request: Request) -> WSGIApp:
        call = openai.parse_completion(self.json_body(request))
        job = self.engine.complete(call.request)
        ids = dict(id=openai.new_id("cmpl-"), model=self.engine.model_id, created=int(time.time()))
        if call.stream:
            chunks = openai.CompletionChunks(include_usage=call.include_usage, **ids)
            return self.responder.openai_stream(job, chunks, first=None)

        def build(events: list[Any]) -> dict[str, Any]:
            result = fold_events(events)
            return openai.completion_response(result.content, _finished_of(events), **ids)

        return self.responder.json_when_done(job, build, anthropic_api=False)

    # ------------------------------------------------------------ Anthropic

    def _messages_request(self, request: Request, count_only: bool) -> anthropic.MessagesCall:
        return anthropic.parse_messages(self.json_body(request), count_only=count_only)

    def on_messages(self, request: Request) -> WSGIApp:
        call = self._messages_request(request, count_only=False)
        job = self.engine.chat(call.request)
        stream = anthropic.MessageStream(id=anthropic.new_message_id(), model=call.model or self.engine.model_id)
        if call.stream:
            return self.responder.anthropic_stream(job, stream)

        def build(events: list[Any]) -> dict[str, Any]:
            return anthropic.fold_message(anthropic_events(stream, job.n_prompt, events))

        return self.responder.json_when_done(job, build, anthropic_api=True)

    def on_count_tokens(self, request: Request) -> WSGIApp:
        call = self._messages_request(request, count_only=True)
        return json_response(anthropic.count_tokens_response(self.engine.count_chat_tokens(call.request)))


def anthropic_events(stream: anthropic.MessageStream, n_prompt: int, events: list[Any]) -> list[Any]:
    """The Anthropic stream events for a finished list of engine events."""
    out = stream.start(n_prompt)
    for event in events:
        if isinstance(event, Delta):
            out += stream.delta(event)
        elif isinstance(event, Finished):
            out += stream.finish(event)
    return out


def _finished_of(events: list[Any]) -> Finished:
    for event in reversed(events):
        if isinstance(event, Finished):
            return event
    return Finished("cancelled", Usage(0, 0))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(data, status=status, headers=headers, mimetype="application/json")


def create_app(engine: Engine, config: ServerConfig | None = None) -> App:
    """The WSGI app for `engine` (any WSGI server can run it; `llamactypes.serve` uses werkzeug's)."""
    return App(engine, config)


__all__ += ["json_response", "anthropic_events"]
