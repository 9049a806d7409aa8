"""OpenAI wire format <-> engine types. Pure functions, no HTTP, no model.

Requests: `parse_chat`, `parse_completion`, `parse_embeddings` validate a decoded
JSON body and return engine requests (unknown fields are ignored; `n > 1` is
refused). Responses: `chat_response`, `completion_response`, `embeddings_response`,
`models_response`; streams: `ChatChunks` / `CompletionChunks` turn engine events
into `chat.completion.chunk` / `text_completion` dicts, one per event.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import struct
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..chat.types import Delta
from ..engine.types import ChatRequest, ChatResult, CompletionRequest, Finished, Sampling, Usage
from ..errors import InvalidRequestError
from ..limits import DEFAULT_LIMITS, Limits
from .fields import (INT_LIMIT, check_count, check_schema_shape, get_bool, get_int, get_list, get_number,
                     get_object, get_stop, get_str, require)

__all__ = [
    "ChatCall", "CompletionCall", "parse_chat", "parse_completion", "parse_embeddings", "parse_sampling",
    "chat_response", "completion_response", "embeddings_response", "models_response", "model_card",
    "ChatChunks", "CompletionChunks", "finish_reason", "usage_dict", "new_id",
]

_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """`prefix` + 24 random alphanumerics (the OpenAI id shape)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(24))


@dataclass(frozen=True)
class ChatCall:
    """A parsed /v1/chat/completions body: the engine request and how to answer."""

    request: ChatRequest
    stream: bool = False
    include_usage: bool = False


@dataclass(frozen=True)
class CompletionCall:
    """A parsed /v1/completions body."""

    request: CompletionRequest
    stream: bool = False
    include_usage: bool = False


# ------------------------------------------------------------------ requests

#: bounds of fields that reach numpy or C as 32-bit values
_INT32 = 2**31 - 1
_FLOAT32_MAX = 3.4e38


def parse_sampling(body: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> Sampling:
    """Sampler fields shared by chat and completions (llama-server's extensions included)."""
    seed = get_int(body, "seed")
    return Sampling(
        temperature=get_number(body, "temperature", lo=0.0),
        top_p=get_number(body, "top_p", lo=0.0, hi=1.0),
        top_k=get_int(body, "top_k", lo=0, hi=_INT32),
        min_p=get_number(body, "min_p", lo=0.0, hi=1.0),
        repeat_penalty=get_number(body, "repeat_penalty", lo=0.0),
        repeat_last_n=get_int(body, "repeat_last_n", lo=-1, hi=_INT32),
        presence_penalty=get_number(body, "presence_penalty", lo=-2.0, hi=2.0),
        frequency_penalty=get_number(body, "frequency_penalty", lo=-2.0, hi=2.0),
        seed=None if seed is None or seed < 0 else seed,
        logit_bias=_logit_bias(body.get("logit_bias"), limits),
    )


def _token_id(key: Any) -> int:
    """A logit_bias key: an int or a decimal string of one (OpenAI sends strings)."""
    if isinstance(key, str) and key.strip().lstrip("-").isdigit() and len(key) <= 20:
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int) or abs(key) > INT_LIMIT:
        raise InvalidRequestError(f"logit_bias key {str(key)[:40]!r} is not a token id", param="logit_bias")
    return key


def _logit_bias(value: Any, limits: Limits = DEFAULT_LIMITS) -> dict[int, float] | None:
    """`{"token id": bias}` (OpenAI) or `[[id, bias], ...]` (llama-server); `false` bans a token."""
    if value is None:
        return None
    items = list(value.items()) if isinstance(value, Mapping) else value if isinstance(value, list) else None
    if items is None:
        raise InvalidRequestError("logit_bias must be an object of token id -> bias", param="logit_bias")
    check_count("logit_bias", items, limits.max_logit_bias, "max_logit_bias")
    out: dict[int, float] = {}
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidRequestError("logit_bias entries must be [token id, bias]", param="logit_bias")
        key, bias = item
        token = _token_id(key)
        if bias is False:
            out[token] = float("-inf")
            continue
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -_FLOAT32_MAX <= bias <= _FLOAT32_MAX:
            raise InvalidRequestError(f"logit_bias value for {token} must be a finite number (false bans the token)",
                                      param="logit_bias")
        out[token] = float(bias)
    return out


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    """The token budget: `max_completion_tokens` / `max_tokens` >= 0 (OpenAI refuses negatives),
    or llama-server's `n_predict` where -1 means "as many as the context leaves"."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = get_int(body, key, lo=0)
        if value is not None:
            return value
    value = get_int(body, "n_predict", lo=-1)
    return None if value is None or value < 0 else value


def _check_n(body: Mapping[str, Any]) -> None:
    n = get_int(body, "n", 1)
    if n != 1:
        raise InvalidRequestError(f"n={n} is not supported: this server returns one choice per request", param="n")


def _response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = get_object(body, "response_format")
    if fmt is None:
        schema = get_object(body, "json_schema")  # llama-server's shortcut
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}} if schema else None
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        if not isinstance(fmt.get("schema", {}), (Mapping, bool)):
            raise InvalidRequestError("response_format.schema must be a JSON Schema object",
                                      param="response_format.schema")
        return fmt
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema", {}), Mapping):
            raise InvalidRequestError("response_format.json_schema must be an object with a 'schema' object",
                                      param="response_format.json_schema")
        return fmt
    raise InvalidRequestError(f"response_format.type must be text, json_object or json_schema, got {_short(kind)}",
                              param="response_format.type")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: variables the chat layer passes to the template itself: a request may not replace them
RESERVED_TEMPLATE_KWARGS = frozenset({"messages", "tools", "add_generation_prompt", "bos_token", "eos_token",
                                      "tool_choice", "parallel_tool_calls", "response_format", "template_kwargs"})


def _template_kwargs(body: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = get_object(body, "chat_template_kwargs") or {}
    reserved = sorted(RESERVED_TEMPLATE_KWARGS.intersection(kwargs))
    if reserved:
        raise InvalidRequestError(f"chat_template_kwargs may not set {', '.join(reserved)}: the server passes "
                                  "them to the template itself (send them as request fields)",
                                  param=f"chat_template_kwargs.{reserved[0]}")
    return kwargs


def _check_tool_call_arguments(messages: list[Any]) -> None:
    """Tool-call `arguments` strings must be JSON the chat layer can read (a 5,000-digit integer
    raises ValueError in `json.loads`, not JSONDecodeError)."""
    for i, message in enumerate(messages):
        calls = message.get("tool_calls") if isinstance(message, Mapping) else None
        if not isinstance(calls, list):
            continue
        for j, call in enumerate(calls):
            function = call.get("function") if isinstance(call, Mapping) else None
            arguments = function.get("arguments") if isinstance(function, Mapping) else None
            if not isinstance(arguments, str) or not arguments:
                continue
            try:
                json.loads(arguments)
            except (ValueError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
                raise InvalidRequestError(f"arguments are not valid JSON: {reason[:200]}",
                                          param=f"messages[{i}].tool_calls[{j}].function.arguments") from None


def _tool_choice(value: Any) -> Any:
    if value is None:
        return "auto"
    if value in ("auto", "none", "required"):
        return value
    if isinstance(value, Mapping):
        function = value.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return {"type": "function", "function": {"name": function["name"]}}
    raise InvalidRequestError("tool_choice must be auto, none, required or {\"type\": \"function\", "
                              "\"function\": {\"name\": ...}}", param="tool_choice")


def parse_chat(body: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> ChatCall:
    """Validate a /v1/chat/completions body."""
    _check_n(body)
    messages = require(body, "messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages must be a non-empty array", param="messages")
    _check_tool_call_arguments(messages)
    tools = get_list(body, "tools") or None
    if tools:
        check_count("tools", tools, limits.max_tools, "max_tools")
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, Mapping) else None
            if isinstance(function, Mapping) and function.get("parameters") is not None:
                check_schema_shape(function["parameters"], f"tools[{i}].function.parameters")
    template_kwargs = _template_kwargs(body)
    thinking = template_kwargs.get("enable_thinking")
    if thinking is not None and not isinstance(thinking, bool):
        raise InvalidRequestError("chat_template_kwargs.enable_thinking must be a boolean",
                                  param="chat_template_kwargs.enable_thinking")
    reasoning_format = get_str(body, "reasoning_format", "auto")
    stream_options = get_object(body, "stream_options") or {}
    request = ChatRequest(
        messages=messages,
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")) if tools else "auto",
        parallel_tool_calls=get_bool(body, "parallel_tool_calls", True),
        response_format=_response_format(body),
        grammar=get_str(body, "grammar") or None,
        enable_thinking=thinking,
        template_kwargs={k: v for k, v in template_kwargs.items() if k != "enable_thinking"} or None,
        reasoning=reasoning_format != "none",
        max_tokens=_max_tokens(body),
        stop=get_stop(body, limits=limits),
        sampling=parse_sampling(body, limits),
    )
    return ChatCall(request, stream=get_bool(body, "stream"),
                    include_usage=get_bool(stream_options, "include_usage"))


def parse_completion(body: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> CompletionCall:
    """Validate a /v1/completions body (prompt: a string, [string] or token ids)."""
    _check_n(body)
    prompt = require(body, "prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, list):
        if not prompt or not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            raise InvalidRequestError("prompt must be a string or an array of token ids (one prompt per request)",
                                      param="prompt")
    elif not isinstance(prompt, str):
        raise InvalidRequestError("prompt must be a string", param="prompt")
    if prompt == "":
        raise InvalidRequestError("prompt must not be empty", param="prompt")
    fmt = _response_format(body)
    schema = fmt.get("json_schema", {}).get("schema") if fmt and fmt["type"] == "json_schema" else None
    if fmt and fmt["type"] == "json_object":
        schema = fmt.get("schema") or {"type": "object"}
    if schema is True:
        schema = {}
    stream_options = get_object(body, "stream_options") or {}
    request = CompletionRequest(prompt=prompt, max_tokens=_max_tokens(body), stop=get_stop(body, limits=limits),
                                grammar=get_str(body, "grammar") or None, json_schema=schema,
                                sampling=parse_sampling(body, limits))
    return CompletionCall(request, stream=get_bool(body, "stream"),
                          include_usage=get_bool(stream_options, "include_usage"))


def parse_embeddings(body: Mapping[str, Any],
                     limits: Limits = DEFAULT_LIMITS) -> tuple[list[str] | list[list[int]], str]:
    """Validate a /v1/embeddings body: (inputs, encoding_format). Token-id inputs stay lists of ints."""
    value = require(body, "input")
    fmt = get_str(body, "encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise InvalidRequestError("encoding_format must be float or base64", param="encoding_format")
    if isinstance(value, str):
        inputs: list[Any] = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        inputs = [value]
    elif isinstance(value, list) and value and all(isinstance(v, (str, list)) for v in value):
        inputs = value
    else:
        raise InvalidRequestError("input must be a string, an array of strings, or token ids", param="input")
    check_count("input", inputs, limits.max_embedding_inputs, "max_embedding_inputs")
    for i, item in enumerate(inputs):
        if isinstance(item, list) and not all(isinstance(t, int) and not isinstance(t, bool) for t in item):
            raise InvalidRequestError("token inputs must be arrays of integers", param=f"input[{i}]")
        if not item:
            raise InvalidRequestError("inputs must not be empty", param=f"input[{i}]")
    return inputs, fmt


# ------------------------------------------------------------------ responses

def finish_reason(finished_reason: str) -> str:
    """Engine reason -> OpenAI `finish_reason`."""
    return {"length": "length", "tool_calls": "tool_calls"}.get(finished_reason, "stop")


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens}}


def _tool_call(call: Any) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def chat_response(result: ChatResult, *, model: str, id: str, created: int) -> dict[str, Any]:
    """A `chat.completion` object for a whole message."""
    message: dict[str, Any] = {"role": "assistant",
                               "content": result.content if result.content or not result.tool_calls else None}
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    if result.tool_calls:
        message["tool_calls"] = [_tool_call(c) for c in result.tool_calls]
    return {"id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish_reason(result.finish_reason)}],
            "usage": usage_dict(result.usage)}


def completion_response(text: str, finished: Finished, *, model: str, id: str, created: int) -> dict[str, Any]:
    """A `text_completion` object."""
    return {"id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": None,
                         "finish_reason": finish_reason(finished.reason)}],
            "usage": usage_dict(finished.usage)}


def _embedding(vector: Sequence[float], fmt: str) -> Any:
    if fmt == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)


def embeddings_response(vectors: Sequence[Sequence[float]], n_tokens: int, *, model: str,
                        encoding_format: str = "float") -> dict[str, Any]:
    """The `/v1/embeddings` list object (base64: little-endian float32, as OpenAI sends)."""
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": _embedding(v, encoding_format)}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}


def model_card(model_id: str, created: int, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {"id": model_id, "object": "model", "created": created, "owned_by": "llamactypes"}
    if meta:
        card["meta"] = dict(meta)
    return card


def models_response(model_id: str, created: int, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`GET /v1/models` for OpenAI clients: the one served model."""
    return {"object": "list", "data": [model_card(model_id, created, meta)]}


# ------------------------------------------------------------------ streams

class ChatChunks:
    """Engine events -> `chat.completion.chunk` dicts for one streamed response.

    First the role, then one chunk per delta (a tool call's id, type and name only
    in its first chunk), then the finish chunk, then (when asked) the usage chunk
    with `choices: []`. The caller adds `data: [DONE]`.
    """

    def __init__(self, *, id: str, model: str, created: int, include_usage: bool = False) -> None:
        self.id, self.model, self.created, self.include_usage = id, model, created, include_usage

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def first(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": None})

    def delta(self, delta: Delta) -> dict[str, Any] | None:
        if delta.kind == "content":
            return self._chunk({"content": delta.text}) if delta.text else None
        if delta.kind == "reasoning":
            return self._chunk({"reasoning_content": delta.text}) if delta.text else None
        call: dict[str, Any] = {"index": delta.index or 0}
        function: dict[str, Any] = {}
        if delta.name:
            call["id"] = delta.id
            call["type"] = "function"
            function["name"] = delta.name
        if delta.arguments or delta.name:
            function["arguments"] = delta.arguments
        if not function:
            return None
        call["function"] = function
        return self._chunk({"tool_calls": [call]})

    def finish(self, finished: Finished) -> list[dict[str, Any]]:
        chunks = [self._chunk({}, finish_reason(finished.reason))]
        if self.include_usage:
            chunks.append({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model, "choices": [], "usage": usage_dict(finished.usage)})
        return chunks


class CompletionChunks:
    """Engine events -> streamed `text_completion` dicts."""

    def __init__(self, *, id: str, model: str, created: int, include_usage: bool = False) -> None:
        self.id, self.model, self.created, self.include_usage = id, model, created, include_usage

    def _chunk(self, text: str, finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}

    def delta(self, delta: Delta) -> dict[str, Any] | None:
        return self._chunk(delta.text) if delta.text else None

    def finish(self, finished: Finished) -> list[dict[str, Any]]:
        chunks = [self._chunk("", finish_reason(finished.reason))]
        if self.include_usage:
            chunks.append({"id": self.id, "object": "text_completion", "created": self.created,
                           "model": self.model, "choices": [], "usage": usage_dict(finished.usage)})
        return chunks
