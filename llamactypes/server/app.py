"""`create_app(engine, config)`: the WSGI application serving both APIs on one engine.

Routing is a werkzeug `Map`; each endpoint is an `on_<endpoint>` method. The
app holds no global state: everything hangs off the `App` instance, so tests
can build as many as they like. Translation lives in `openai.py` and
`anthropic.py`; the streaming and waiting mechanics live in `responses.py`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..chat.types import Delta
from ..engine import Engine, Finished, Usage, fold_events
from .. import web
from ..errors import BusyError, InvalidRequestError, LlamaError
from ..limits import DEFAULT_LIMITS, Limits, limit_message
from . import anthropic, metrics, oai_responses_app, openai
from .body import decode_json_body
from .errors import ApiError, anthropic_error_body, anthropic_status, error_info, log_text, openai_error_body
from .fields import get_bool, get_list, raise_how, require
from .origin import OriginPolicy, is_json_content_type
from .response_store import ResponseStore
from .responses import Responder
from .router import ModelRouter

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
    origin: the Host allow-list and CORS policy (`origin.py`; default: a loopback server,
        no cross-origin browser access).
    limits: request bounds (nesting, counts, pre-queue concurrency; `llamactypes.limits`).
    """

    api_key: str | None = None
    max_body_bytes: int = DEFAULT_LIMITS.max_body_bytes
    heartbeat: float = 5.0
    commit_after: float = 15.0
    event_keepalive: float = 60.0
    created: int = field(default_factory=lambda: int(time.time()))
    origin: OriginPolicy = field(default_factory=OriginPolicy)
    limits: Limits = DEFAULT_LIMITS


_OPENAI_ROUTES = [
    ("/v1/chat/completions", "chat"), ("/chat/completions", "chat"),
    ("/v1/completions", "completions"), ("/completions", "completions"),
    ("/v1/embeddings", "embeddings"), ("/embeddings", "embeddings"),
]


def _url_map() -> Map:
    rules = [Rule("/", endpoint="root", methods=["GET", "HEAD"]),
             Rule("/web/<name>", endpoint="web", methods=["GET", "HEAD"]),
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
    rules += [Rule("/v1/responses", endpoint="responses", methods=["POST"]),
              Rule("/responses", endpoint="responses", methods=["POST"]),
              Rule("/v1/responses/input_tokens", endpoint="responses_input_tokens", methods=["POST"]),
              Rule("/v1/responses/<response_id>", endpoint="response", methods=["GET", "DELETE"])]
    return Map(rules, strict_slashes=False)


class App:
    """The WSGI application. `active` counts responses still being sent (for a clean shutdown)."""

    def __init__(self, engine: Engine | ModelRouter, config: ServerConfig | None = None) -> None:
        # one model: `engine`; many (serve --models): `router` picks the engine of each request
        self.router = engine if isinstance(engine, ModelRouter) else None
        self.engine: Engine | None = None if self.router is not None else engine  # type: ignore[assignment]
        self.config = config or ServerConfig()
        self.url_map = _url_map()
        self.responder = Responder(self.config, self._track)
        self.response_store = ResponseStore(DEFAULT_LIMITS.max_stored_responses)
        self._active = 0
        self._active_lock = threading.Lock()
        self._preparing = threading.BoundedSemaphore(self.config.limits.max_preparing)

    # ------------------------------------------------------------ WSGI plumbing

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = self.config.max_body_bytes
        started = time.monotonic()
        cors: dict[str, str] = {}
        try:
            cors = self.check_origin(request)
            app = self.preflight(request, cors) if _is_preflight(request) else self.dispatch(request)
        except Exception as exc:
            app = self.error_response(request, exc)
        log.info("%s %s (%.1f ms to respond)", request.method, request.full_path.rstrip("?"),
                 (time.monotonic() - started) * 1000)
        if cors:
            start_response = _with_headers(start_response, cors)
        try:
            return app(environ, start_response)
        except Exception as exc:  # a response that failed to start: still an answer, never werkzeug's HTML 500
            return self.error_response(request, exc)(environ, start_response)

    def dispatch(self, request: Request) -> WSGIApp:
        adapter = self.url_map.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
        self.check_body_size(request)
        if endpoint not in ("root", "health", "web"):  # the page's own files are public; its API calls are not
            self.check_key(request)
        handler = getattr(self, f"on_{endpoint}")
        return handler(request, **args)

    def check_origin(self, request: Request) -> dict[str, str]:
        """403 for a foreign Host or a browser page of another origin (see `origin.py`); the CORS
        headers to add when a `--cors` origin is calling."""
        policy = self.config.origin
        host = request.headers.get("Host")
        if not policy.host_allowed(host):
            raise ApiError(403, f"the Host header {host[:100]!r} is not one of this server's names (a page using "
                           "DNS rebinding sends its own); start the server with --allowed-hosts NAME to accept it")
        origin = request.headers.get("Origin")
        if origin is None:
            return {}
        if not policy.origin_allowed(origin, host):
            raise ApiError(403, f"cross-origin requests from {origin[:100]!r} are not allowed; start the server "
                           "with --cors ORIGIN to let that web page call it")
        return policy.cors_headers(origin)

    def preflight(self, request: Request, cors: dict[str, str]) -> WSGIApp:
        """The answer to an allowed CORS preflight (a refused one raised in `check_origin`)."""
        if not cors:
            raise ApiError(403, "a CORS preflight needs an Origin header")
        headers = self.config.origin.preflight_headers(request.headers["Origin"], request.headers)
        return Response(status=204, headers={k: v for k, v in headers.items() if k not in cors})

    def check_body_size(self, request: Request) -> None:
        """413 from the Content-Length header, before a byte of the body is read (or any key check)."""
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, limit_message("the request body", f"{request.content_length} bytes",
                                              f"{limit} bytes", "start the server with --max-body BYTES"))

    @contextlib.contextmanager
    def preparing(self) -> Iterator[None]:
        """A place among the requests doing pre-queue work (parsing, rendering, grammar compiling,
        tokenizing) on their own threads; `BusyError` (503 + Retry-After) when none frees up within
        `limits.prepare_wait` seconds, so a flood cannot pile up CPU work and memory unboundedly.

        Also the last line of defence for "never a 500 for what a client sends": everything done
        here is a function of the request, so an unexpected exception from a layer below (a shape
        of input nobody checked) is answered 400 with an error id, and logged with its traceback
        under that id as the bug it is."""
        if not self._preparing.acquire(timeout=self.config.limits.prepare_wait):
            raise BusyError(limit_message("requests being prepared", "at the limit", self.config.limits.max_preparing,
                                          "retry shortly, or " + raise_how("max_preparing")), retry_after=1)
        try:
            yield
        except _UNEXPECTED as exc:
            if isinstance(exc, LlamaError):
                raise
            error_id = secrets.token_hex(6)
            log.error("unexpected %s while preparing a request [error id %s]", type(exc).__name__, error_id,
                      exc_info=exc)
            raise InvalidRequestError(f"the request has a value this server cannot handle (error id {error_id}: "
                                      "the server log has the details)") from None
        finally:
            self._preparing.release()

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

    def engine_for(self, body: Mapping[str, Any] | None = None) -> Engine:
        """The engine for a request: the one model, or (router) the model its `model` field names,
        loaded on first use; an unknown id raises `UnknownModelError` (404)."""
        if self.router is None:
            assert self.engine is not None
            return self.engine
        return self.router.engine_for(_model_field(body.get("model") if body is not None else None))

    def submit(self, model: str | None, submit: Callable[[Engine], Any]) -> tuple[Any, str]:
        """(job, model id) for a generation request: `submit(engine)` on the one model, or (router)
        on the model named, loading it first with keep-alives while it loads (`PendingJob`)."""
        if self.router is None:
            engine = self.engine_for()
            return submit(engine), engine.model_id
        model = _model_field(model)
        return self.router.job_for(model, submit), self.router.resolve(model)

    @staticmethod
    def is_anthropic(request: Request) -> bool:
        return request.path.startswith("/v1/messages") or "anthropic-version" in request.headers

    def error_response(self, request: Request, exc: BaseException) -> WSGIApp:
        """An error before any response started, in the shape of the API the client speaks."""
        info = error_info(exc)
        if info.status >= 500 and not info.busy:
            log.error("%s %s failed%s", request.method, request.path, log_text(info), exc_info=exc)
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
        """The request body as a checked JSON object (`body.decode_json_body`): 415 without
        `Content-Type: application/json`, 413 when too large, 400 for anything else."""
        self.check_body_size(request)
        if not is_json_content_type(request.headers.get("Content-Type")):
            raise ApiError(415, "send the body as JSON with the header 'Content-Type: application/json'",
                           code="unsupported_media_type")
        return decode_json_body(request.get_data(cache=False), self.config.limits)

    # ------------------------------------------------------------ small endpoints

    def on_root(self, request: Request) -> WSGIApp:
        """The chat page for a browser (Accept: text/html first), JSON for everyone else."""
        if request.method == "GET" and web.wants_page(request.headers.get("Accept", "")):
            return self.on_web(request, "index.html")
        model_id = self.router.default if self.router is not None else self.engine.model_id  # type: ignore[union-attr]
        return json_response({"status": "ok", "model": model_id,
                              "endpoints": ["/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                            "/v1/models", "/v1/messages", "/v1/messages/count_tokens",
                                            "/tokenize", "/detokenize", "/health", "/v1/responses"]},
                             headers={"Vary": "Accept"})  # browsers get the chat page instead

    def on_web(self, request: Request, name: str) -> WSGIApp:
        """A file of the chat page (llamactypes/web); 404 for anything else."""
        if name not in web.ASSETS:
            raise ApiError(404, f"no such file: /web/{name}")
        response = Response(web.asset(name), content_type=web.ASSETS[name])
        response.headers["Content-Security-Policy"] = web.CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.cache_control.no_cache = True  # a new version of the package shows at once
        response.vary.add("Accept")
        return response

    def on_health(self, request: Request) -> WSGIApp:
        return json_response({"status": "ok"})

    def _loaded_engines(self) -> list[tuple[str, Engine]]:
        """(model id, engine) of every model in memory: the one model, or the router's loaded ones."""
        if self.router is None:
            assert self.engine is not None
            return [(self.engine.model_id, self.engine)]
        engines = [(mid, self.router.loaded_engine(mid)) for mid in self.router.loaded()]
        return [(mid, engine) for mid, engine in engines if engine is not None]

    def on_metrics(self, request: Request) -> WSGIApp:
        """Prometheus text: requests, tokens, slots, queue, prompt cache (docs/engine.md); under a
        router, the sums over the models in memory."""
        totals: dict[str, int] = {}
        for _, engine in self._loaded_engines():
            for key, value in engine.metrics().items():
                totals[key] = totals.get(key, 0) + value
        return Response(metrics.prometheus_text(totals), content_type=metrics.CONTENT_TYPE)

    def on_slots(self, request: Request) -> WSGIApp:
        """One object per slot: id, state (idle, prompt, generating), n_cached, last_used (and, under a
        router, the model it belongs to)."""
        engines = self._loaded_engines()
        if self.router is None:
            return json_response(engines[0][1].slots())
        return json_response([dict(slot, model=mid) for mid, engine in engines for slot in engine.slots()])

    def _meta(self, engine: Engine | None = None) -> dict[str, Any]:
        engine = engine or self.engine
        assert engine is not None
        model = engine.model
        meta = {"n_ctx": engine.n_ctx}
        for key in ("n_ctx_train", "n_vocab", "n_embd"):
            value = getattr(model, key, None)
            if isinstance(value, int):
                meta[key] = value
        return meta

    def _created_at(self) -> str:
        return datetime.fromtimestamp(self.config.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def on_models(self, request: Request) -> WSGIApp:
        if self.router is not None:
            return self._router_models(request)
        model_id = self.engine.model_id  # type: ignore[union-attr]
        if self.is_anthropic(request):
            return json_response(anthropic.models_response(model_id, self._created_at()))
        return json_response(openai.models_response(model_id, self.config.created, self._meta()))

    def on_model(self, request: Request, model_id: str) -> WSGIApp:
        """Any id answers with the served model: clients name models freely (Claude Code sends its own).
        With a router, only the ids it serves (others: 404)."""
        if self.router is not None:
            return self._router_models(request, self.router.resolve(model_id))
        if self.is_anthropic(request):
            return json_response(anthropic.model_card(self.engine.model_id, self._created_at()))  # type: ignore
        return json_response(openai.model_card(self.engine.model_id, self.config.created, self._meta()))  # type: ignore

    def _router_models(self, request: Request, only: str | None = None) -> WSGIApp:
        """Every model the router serves (or one), loaded or not; OpenAI cards say which are loaded."""
        assert self.router is not None
        ids = [only] if only else self.router.ids
        if self.is_anthropic(request):
            cards = [anthropic.model_card(mid, self._created_at()) for mid in ids]
            if only:
                return json_response(cards[0])
            return json_response({"data": cards, "has_more": False, "first_id": ids[0], "last_id": ids[-1]})
        data = []
        for mid in ids:
            engine = self.router.loaded_engine(mid)
            meta = self._meta(engine) if engine is not None else {}
            data.append(openai.model_card(mid, self.config.created, dict(meta, loaded=engine is not None)))
        return json_response(data[0] if only else {"object": "list", "data": data})

    def on_tokenize(self, request: Request) -> WSGIApp:
        with self.preparing():
            body = self.json_body(request)
            engine = self.engine_for(body)
            content = require(body, "content")
            if not isinstance(content, str):
                raise InvalidRequestError("content must be a string", param="content")
            tokens = engine.tokenize(content, add_special=get_bool(body, "add_special", False),
                                     parse_special=get_bool(body, "parse_special", True))
        if get_bool(body, "with_pieces"):
            return json_response({"tokens": [{"id": t, "piece": engine.token_piece(t)} for t in tokens]})
        return json_response({"tokens": tokens})

    def on_detokenize(self, request: Request) -> WSGIApp:
        with self.preparing():
            body = self.json_body(request)
            engine = self.engine_for(body)
            tokens = get_list(body, "tokens") or []
            if not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
                raise InvalidRequestError("tokens must be an array of integers", param="tokens")
            return json_response({"content": engine.detokenize(tokens)})

    def on_embeddings(self, request: Request) -> WSGIApp:
        with self.preparing():
            body = self.json_body(request)
            engine = self.engine_for(body)
            inputs, fmt = openai.parse_embeddings(body, self.config.limits)
            texts = [item if isinstance(item, str) else engine.detokenize(item) for item in inputs]
        result = engine.embed(texts)
        return json_response(openai.embeddings_response(result.vectors, result.n_tokens,
                                                        model=engine.model_id, encoding_format=fmt))

    # ------------------------------------------------------------ OpenAI generation

    def on_chat(self, request: Request) -> WSGIApp:
        with self.preparing():
            body = self.json_body(request)
            call = openai.parse_chat(body, self.config.limits)
            job, model_id = self.submit(body.get("model"), lambda engine: engine.chat(call.request))
        ids = dict(id=openai.new_id("chatcmpl-"), model=model_id, created=int(time.time()))
        if call.stream:
            chunks = openai.ChatChunks(include_usage=call.include_usage, **ids)
            return self.responder.openai_stream(job, chunks, first=chunks.first())
        return self.responder.json_when_done(
            job, lambda events: openai.chat_response(fold_events(events), **ids), anthropic_api=False)

    def on_completions(self, request: Request) -> WSGIApp:
        with self.preparing():
            body = self.json_body(request)
            call = openai.parse_completion(body, self.config.limits)
            job, model_id = self.submit(body.get("model"), lambda engine: engine.complete(call.request))
        ids = dict(id=openai.new_id("cmpl-"), model=model_id, created=int(time.time()))
        if call.stream:
            chunks = openai.CompletionChunks(include_usage=call.include_usage, **ids)
            return self.responder.openai_stream(job, chunks, first=None)

        def build(events: list[Any]) -> dict[str, Any]:
            result = fold_events(events)
            return openai.completion_response(result.content, _finished_of(events), **ids)

        return self.responder.json_when_done(job, build, anthropic_api=False)

    # ------------------------------------------------------------ Anthropic

    def _messages_request(self, request: Request, count_only: bool) -> anthropic.MessagesCall:
        return anthropic.parse_messages(self.json_body(request), count_only=count_only, limits=self.config.limits)

    def on_messages(self, request: Request) -> WSGIApp:
        with self.preparing():
            call = self._messages_request(request, count_only=False)
            job, model_id = self.submit(call.model, lambda engine: engine.chat(call.request))
        stream = anthropic.MessageStream(id=anthropic.new_message_id(), model=call.model or model_id)
        if call.stream:
            return self.responder.anthropic_stream(job, stream)

        def build(events: list[Any]) -> dict[str, Any]:
            return anthropic.fold_message(anthropic_events(stream, job.n_prompt, events))

        return self.responder.json_when_done(job, build, anthropic_api=True)

    def on_count_tokens(self, request: Request) -> WSGIApp:
        with self.preparing():
            call = self._messages_request(request, count_only=True)
            engine = self.engine_for({"model": call.model})
            return json_response(anthropic.count_tokens_response(engine.count_chat_tokens(call.request)))

    # ------------------------------------------------------------ OpenAI Responses (oai_responses_app.py)

    def on_responses(self, request: Request) -> WSGIApp:
        return oai_responses_app.create_response(self, request)

    def on_responses_input_tokens(self, request: Request) -> WSGIApp:
        return json_response(oai_responses_app.count_input_tokens(self, request))

    def on_response(self, request: Request, response_id: str) -> WSGIApp:
        if request.method == "DELETE":
            return json_response(oai_responses_app.delete_response(self, request, response_id))
        return json_response(oai_responses_app.get_response(self, request, response_id))


def anthropic_events(stream: anthropic.MessageStream, n_prompt: int, events: list[Any]) -> list[Any]:
    """The Anthropic stream events for a finished list of engine events."""
    out = stream.start(n_prompt)
    for event in events:
        if isinstance(event, Delta):
            out += stream.delta(event)
        elif isinstance(event, Finished):
            out += stream.finish(event)
    return out


def _model_field(value: Any) -> str | None:
    """A request's `model` (router mode): a string, or None for the default model."""
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError("model must be a string", param="model")
    return value or None


def _finished_of(events: list[Any]) -> Finished:
    for event in reversed(events):
        if isinstance(event, Finished):
            return event
    return Finished("cancelled", Usage(0, 0))


#: what a layer below raises on input shapes it did not expect (programming errors, not I/O or C failures)
_UNEXPECTED = (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError, OverflowError)


def _is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _with_headers(start_response: Callable[..., Any], extra: dict[str, str]) -> Callable[..., Any]:
    """`start_response` that adds `extra` headers (the CORS ones) to whatever the response sends."""
    def wrapped(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        names = {name.lower() for name, _ in headers}
        return start_response(status, headers + [(k, v) for k, v in extra.items() if k.lower() not in names],
                              exc_info)

    return wrapped


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(data, status=status, headers=headers, mimetype="application/json")


def create_app(engine: Engine | ModelRouter, config: ServerConfig | None = None) -> App:
    """The WSGI app for `engine`, or for every model of a `ModelRouter` (any WSGI server can run it;
    `llamactypes.serve` uses werkzeug's)."""
    return App(engine, config)


__all__ += ["json_response", "anthropic_events"]
