"""Exception classes (never messages) decide the status; each API has its error body."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from llamactypes.errors import (
    BusyError, ChatTemplateError, ClosedError, ContextOverflowError, GrammarError, InvalidRequestError, SchemaError,
)
from llamactypes.server.errors import (
    ApiError, anthropic_error_body, anthropic_status, error_info, openai_error_body,
)


@pytest.mark.parametrize("exc,status", [
    (InvalidRequestError("bad", param="x"), 400),
    (ContextOverflowError(10, 5), 400),
    (GrammarError("oops", line=1, column=2), 400),
    (SchemaError("unsupported keyword"), 400),
    (ChatTemplateError("boom", line=3), 400),
    (BusyError(retry_after=3), 503),
    (ClosedError("closed"), 503),
    (ApiError(401, "key"), 401),
    (NotFound(), 404),
    (MethodNotAllowed(["POST"]), 405),
    (RuntimeError("internal"), 500),
    (KeyError("x"), 500),
])
def test_status_by_class(exc: Exception, status: int) -> None:
    assert error_info(exc).status == status


def test_openai_body_shape_and_extras() -> None:
    body = openai_error_body(error_info(ContextOverflowError(10, 5)))
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "context_length_exceeded"
    assert body["error"]["param"] == "messages" and body["error"]["n_prompt_tokens"] == 10
    assert body["error"]["n_ctx"] == 5 and "10" in body["error"]["message"]
    busy = error_info(BusyError(retry_after=3))
    assert busy.headers == {"Retry-After": "3"}
    assert openai_error_body(busy)["error"]["type"] == "server_error"
    assert openai_error_body(error_info(ApiError(401, "no")))["error"]["code"] == "invalid_api_key"
    assert error_info(MethodNotAllowed(["POST"])).headers == {"Allow": "POST"}


def test_anthropic_body_shape() -> None:
    body = anthropic_error_body(error_info(InvalidRequestError("must be a string", param="messages[0].content")))
    assert body == {"type": "error", "error": {"type": "invalid_request_error",
                                               "message": "messages[0].content: must be a string"}}
    busy = error_info(BusyError())
    assert anthropic_status(busy) == 529 and anthropic_error_body(busy)["error"]["type"] == "overloaded_error"
    assert anthropic_error_body(error_info(ApiError(401, "k")))["error"]["type"] == "authentication_error"
    assert anthropic_error_body(error_info(NotFound()))["error"]["type"] == "not_found_error"
    assert anthropic_error_body(error_info(RuntimeError("x")))["error"]["type"] == "api_error"
