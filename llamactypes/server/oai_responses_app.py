"""The `/v1/responses` endpoints on the app: create (stream or not), retrieve, delete, count.

Kept out of `app.py` (which only routes here): translation is in `oai_responses.py`,
the event sequence in `oai_responses_stream.py`, storage in `response_store.py`.
A prompt longer than the context is the API's error body (400,
`code: context_length_exceeded`) for a non-stream request, and `response.created`
then `response.failed` with `response.error.code = "context_length_exceeded"` for a
stream: that is where Codex looks before it compacts its history.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Iterator

from werkzeug.wrappers import Request, Response

from ..engine import Finished, Job
from ..errors import ContextOverflowError, InvalidRequestError
from .errors import ApiError, error_info
from .oai_responses import ResponsesCall, deleted_response, input_tokens_response, new_response_id, parse_responses
from .oai_responses_stream import ResponseStream, fold_response, stored_conversation
from .response_store import StoredResponse
from .sse import SSE_HEADERS, sse_event

__all__ = ["create_response", "get_response", "delete_response", "count_input_tokens", "responses_sse"]

log = logging.getLogger("llamactypes.server")

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


def _parse(app: Any, request: Request) -> tuple[ResponsesCall, dict[str, Any]]:
    body = app.json_body(request)
    previous = body.get("previous_response_id")
    conversation = None
    if previous is not None:
        if not isinstance(previous, str):
            raise InvalidRequestError("previous_response_id must be a string", param="previous_response_id")
        stored = app.response_store.get(previous)
        if stored is None:
            raise ApiError(400, f"Previous response with id '{previous}' not found (responses are kept in memory "
                           "while the server runs, and only when the request did not say store: false).",
                           param="previous_response_id", code="previous_response_not_found")
        conversation = stored.conversation
    return parse_responses(body, conversation), body


def _error_code(info: Any) -> str:
    """`response.error.code`: context_length_exceeded stays (Codex compacts on it, though the SDK's
    list of codes lacks it); others map to the API's codes."""
    if info.code == "context_length_exceeded":
        return info.code
    return "server_error" if info.status >= 500 else "invalid_prompt"


def _events_response(events: Iterator[bytes]) -> Response:
    return Response(events, mimetype="text/event-stream", headers=SSE_HEADERS)


def responses_sse(responder: Any, job: Job, stream: ResponseStream,
                  on_done: Callable[[dict[str, Any]], None]) -> WSGIApp:
    """The job as a Responses event stream; an error after the headers is `response.failed`."""

    def body(environ: dict) -> Iterator[bytes]:
        for name, data in stream.start():
            yield sse_event(data, name)
        try:
            for event in responder._events(job, environ):
                for name, data in stream.feed(event):
                    yield sse_event(data, name)
                if isinstance(event, Finished):
                    on_done(stream.response())
        except Exception as exc:
            info = error_info(exc)
            if info.status >= 500 and not info.busy:
                log.error("%r failed", job, exc_info=exc)
            for name, data in stream.fail(_error_code(info), info.message):
                yield sse_event(data, name)

    return responder._stream(job, body)


def create_response(app: Any, request: Request) -> WSGIApp:
    """`POST /v1/responses`."""
    with app.preparing():  # the same bound on pre-queue work as every generation route
        call, body = _parse(app, request)
        try:
            job, model_id = app.submit(body.get("model"), lambda engine: engine.chat(call.request))
        except ContextOverflowError as exc:
            if not call.stream:
                raise
            log.info("POST /v1/responses: %s (sent as response.failed)", exc)
            stream = ResponseStream(call, id=new_response_id(), model=app.engine_for(body).model_id)
            events = stream.start() + stream.fail("context_length_exceeded", str(exc))
            return _events_response(iter([sse_event(data, name) for name, data in events]))
    stream = ResponseStream(call, id=new_response_id(), model=model_id)

    def remember(response: dict[str, Any]) -> None:
        if call.store and response["status"] in ("completed", "incomplete"):
            app.response_store.put(response["id"], StoredResponse(response, stored_conversation(call, response)))

    if call.stream:
        return responses_sse(app.responder, job, stream, remember)

    def build(events: list[Any]) -> dict[str, Any]:
        response = fold_response(stream, events)
        remember(response)
        return response

    return app.responder.json_when_done(job, build, anthropic_api=False)


def _stored(app: Any, response_id: str) -> StoredResponse:
    stored = app.response_store.get(response_id)
    if stored is None:
        raise ApiError(404, f"No response found with id '{response_id}' (responses live in memory while the "
                       "server runs, and only when stored).", param="response_id", code="not_found")
    return stored


def get_response(app: Any, request: Request, response_id: str) -> dict[str, Any]:
    """`GET /v1/responses/{id}`: the stored response object."""
    return _stored(app, response_id).response


def delete_response(app: Any, request: Request, response_id: str) -> dict[str, Any]:
    """`DELETE /v1/responses/{id}`."""
    _stored(app, response_id)
    app.response_store.delete(response_id)
    return deleted_response(response_id)


def count_input_tokens(app: Any, request: Request) -> dict[str, Any]:
    """`POST /v1/responses/input_tokens`: the tokens the model would read for this request."""
    with app.preparing():
        call, body = _parse(app, request)
        return input_tokens_response(app.engine_for(body).count_chat_tokens(call.request))
