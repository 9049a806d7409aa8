"""Errors on the wire: which HTTP status an exception gets, and each API's error body.

Statuses come from exception classes, never from message text:

    InvalidRequestError (and ContextOverflowError, GrammarError, SchemaError,
    ChatTemplateError)                              400
    UnknownModelError (router: no such model id)    404 (model_not_found / not_found_error)
    ApiError (401 bad key, 404, 405, 413, ...)      its own status
    werkzeug HTTPException (404, 405, 413)          its own code
    BusyError                                       503 (OpenAI) / 529 overloaded (Anthropic), Retry-After
    ClosedError                                     503 (shutting down)
    anything else                                   500 with an error id only: the exception text
                                                    stays in the server log, under that id

OpenAI body:    {"error": {"message", "type", "param", "code"}}
Anthropic body: {"type": "error", "error": {"type", "message"}}; a context overflow says
                "prompt is too long: N tokens > M maximum" (Anthropic's words: Claude Code compacts on it)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException

from ..errors import BusyError, ClosedError, ContextOverflowError, InvalidRequestError
from .router import UnknownModelError

__all__ = ["ApiError", "ErrorInfo", "error_info", "openai_error_body", "anthropic_error_body"]


class ApiError(Exception):
    """An error the server itself raises with a given status (bad key, bad JSON, ...)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


@dataclass
class ErrorInfo:
    """What the wire needs to know about an error, API-neutral."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    busy: bool = False


def error_info(exc: BaseException) -> ErrorInfo:
    """Classify an exception (see the module docstring)."""
    if isinstance(exc, ApiError):
        return ErrorInfo(exc.status, exc.message, exc.param, exc.code, dict(exc.headers))
    if isinstance(exc, HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        return ErrorInfo(exc.code or 500, exc.description or exc.name, headers=headers)
    if isinstance(exc, ContextOverflowError):
        return ErrorInfo(400, str(exc), exc.param, "context_length_exceeded",
                         extra={"n_prompt_tokens": exc.n_prompt, "n_ctx": exc.n_ctx})
    if isinstance(exc, UnknownModelError):
        return ErrorInfo(404, str(exc), exc.param, "model_not_found")
    if isinstance(exc, InvalidRequestError):
        return ErrorInfo(400, str(exc), exc.param)
    if isinstance(exc, BusyError):
        return ErrorInfo(503, str(exc), code="server_busy", headers={"Retry-After": str(exc.retry_after)},
                         busy=True)
    if isinstance(exc, ClosedError):
        return ErrorInfo(503, "the server is shutting down", code="shutting_down", busy=True)
    error_id = secrets.token_hex(6)
    return ErrorInfo(500, f"internal server error (error id {error_id}: the server log has the details)",
                     code="internal_error", extra={"error_id": error_id})


def log_text(info: ErrorInfo) -> str:
    """How a log line names an error: its error id when it has one (so a user's report finds the traceback)."""
    error_id = info.extra.get("error_id")
    return f" [error id {error_id}]" if error_id else ""


_OPENAI_TYPES = {401: "invalid_request_error", 503: "server_error", 500: "server_error"}
_OPENAI_CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def openai_error_body(info: ErrorInfo) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}` (+ token counts for a context overflow)."""
    kind = _OPENAI_TYPES.get(info.status, "invalid_request_error" if info.status < 500 else "server_error")
    error: dict[str, Any] = {"message": info.message, "type": kind, "param": info.param,
                             "code": info.code or _OPENAI_CODES.get(info.status)}
    error.update(info.extra)
    return {"error": error}


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    503: "overloaded_error", 529: "overloaded_error"}


def anthropic_status(info: ErrorInfo) -> int:
    """Anthropic reports an overloaded server as 529 (its SDKs retry it)."""
    return 529 if info.busy else info.status


def anthropic_error_body(info: ErrorInfo) -> dict[str, Any]:
    """`{"type": "error", "error": {"type", "message"}}`."""
    status = anthropic_status(info)
    kind = _ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    message = info.message
    if info.code == "context_length_exceeded" and "n_prompt_tokens" in info.extra:
        # Anthropic's own wording: Claude Code reads the two numbers from it and compacts
        message = f"prompt is too long: {info.extra['n_prompt_tokens']} tokens > {info.extra['n_ctx']} maximum"
    elif info.param and info.param not in message:
        message = f"{info.param}: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}


__all__ += ["anthropic_status", "log_text"]
