"""Anthropic Messages wire format <-> engine types. Pure functions, no HTTP, no model.

`parse_messages` turns a /v1/messages body into a `ChatRequest` (OpenAI-shaped
messages for the chat layer): system blocks, text / tool_use / tool_result /
thinking blocks, tools and tool_choice, thinking, output_config.format. Fields
real clients send that have no meaning here (metadata, context_management,
cache_control, output_config.effort, ...) are accepted and ignored.

`MessageStream` turns engine events into the exact SSE sequence of the Messages
API (message_start, content_block_start/delta/stop per block, message_delta,
message_stop); `fold_message` folds those events into the non-stream message,
so a streamed and a non-streamed answer agree by construction.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..chat.types import Delta
from ..engine.types import ChatRequest, Finished, Sampling
from ..errors import InvalidRequestError
from ..limits import DEFAULT_LIMITS, Limits
from .fields import (check_count, check_schema_shape, get_bool, get_int, get_list, get_number, get_object, get_stop,
                     get_str, require)

__all__ = [
    "MessagesCall", "parse_messages", "MessageStream", "fold_message", "stop_reason", "models_response",
    "model_card", "count_tokens_response", "BILLING_HEADER_PREFIX", "new_message_id", "tool_use_id",
]

log = logging.getLogger("llamactypes.server")

#: Claude Code's first system block; it changes per session, so rendering it would defeat prefix reuse
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
_ALNUM = string.ascii_letters + string.digits
_IGNORED_BLOCKS = ("redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
                   "code_execution_tool_result", "container_upload", "mcp_tool_use", "mcp_tool_result")


def new_message_id() -> str:
    return "msg_" + "".join(secrets.choice(_ALNUM) for _ in range(24))


def tool_use_id(call_id: str) -> str:
    """Our call ids (`call_…`) shown as Anthropic's `toolu_…`; other ids pass unchanged."""
    return "toolu_" + call_id[5:] if call_id.startswith("call_") else call_id or "toolu_" + new_message_id()[4:]


@dataclass(frozen=True)
class MessagesCall:
    """A parsed /v1/messages body."""

    request: ChatRequest
    stream: bool = False
    model: str | None = None


# ------------------------------------------------------------------ requests

def _unsupported(kind: str, param: str) -> InvalidRequestError:
    if kind in ("image", "document"):
        return InvalidRequestError(f"{kind} input is not supported by this model (text only)", param=param)
    return InvalidRequestError(f"content block type {kind!r} is not supported", param=param)


def _blocks(content: Any, param: str) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or an array of content blocks", param=param)
    for j, block in enumerate(content):
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            raise InvalidRequestError("a content block must be an object with a type", param=f"{param}[{j}]")
    return content


def _text_of(block: Mapping[str, Any], param: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError("a text block needs a string 'text'", param=f"{param}.text")
    return text


def _system_text(value: Any) -> str:
    """The system prompt: a string or text blocks, minus Claude Code's per-session billing header."""
    texts = []
    for j, block in enumerate(_blocks(value, "system")):
        if block["type"] != "text":
            raise _unsupported(block["type"], f"system[{j}]")
        text = _text_of(block, f"system[{j}]")
        if text.startswith(BILLING_HEADER_PREFIX):
            continue
        texts.append(text)
    return "\n\n".join(texts)


def _tool_result_text(block: Mapping[str, Any], param: str) -> str:
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        parts = []
        for k, part in enumerate(_blocks(content, f"{param}.content")):
            if part["type"] != "text":
                raise _unsupported(part["type"], f"{param}.content[{k}]")
            parts.append(_text_of(part, f"{param}.content[{k}]"))
        text = "\n".join(parts)
    if block.get("is_error"):
        text = f"Error: {text}"
    return text


def _user_messages(blocks: list[Mapping[str, Any]], param: str) -> list[dict[str, Any]]:
    """A user turn: its tool results become `tool` messages (first: they answer the previous
    turn's calls), its text one user message after them."""
    tools, texts = [], []
    for j, block in enumerate(blocks):
        where, kind = f"{param}[{j}]", block["type"]
        if kind == "text":
            texts.append(_text_of(block, where))
        elif kind == "tool_result":
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str):
                raise InvalidRequestError("a tool_result needs a string tool_use_id", param=f"{where}.tool_use_id")
            tools.append({"role": "tool", "tool_call_id": call_id, "content": _tool_result_text(block, where)})
        elif kind not in _IGNORED_BLOCKS:
            raise _unsupported(kind, where)
    return tools + ([{"role": "user", "content": "\n".join(texts)}] if texts or not tools else [])


def _assistant_message(blocks: list[Mapping[str, Any]], param: str) -> dict[str, Any]:
    texts, reasoning, calls = [], [], []
    for j, block in enumerate(blocks):
        where, kind = f"{param}[{j}]", block["type"]
        if kind == "text":
            texts.append(_text_of(block, where))
        elif kind == "thinking":
            thinking = block.get("thinking")
            if isinstance(thinking, str) and thinking:
                reasoning.append(thinking)
        elif kind == "tool_use":
            name, call_input = block.get("name"), block.get("input", {})
            if not isinstance(name, str) or not name:
                raise InvalidRequestError("a tool_use block needs a name", param=f"{where}.name")
            if not isinstance(call_input, Mapping):
                raise InvalidRequestError("tool_use input must be an object", param=f"{where}.input")
            calls.append({"id": str(block.get("id") or ""), "type": "function",
                          "function": {"name": name, "arguments": json.dumps(call_input, ensure_ascii=False)}})
        elif kind not in _IGNORED_BLOCKS:
            raise _unsupported(kind, where)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = require(body, "messages")
    if not isinstance(raw, list):
        raise InvalidRequestError("messages must be an array", param="messages")
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        text = _system_text(system)
        if text:
            out.append({"role": "system", "content": text})
    for i, message in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise InvalidRequestError("a message must be an object", param=param)
        role = message.get("role")
        blocks = _blocks(message.get("content", ""), f"{param}.content")
        if role == "user":
            out.extend(_user_messages(blocks, f"{param}.content"))
        elif role == "assistant":
            out.append(_assistant_message(blocks, f"{param}.content"))
        elif role == "system":  # a beta Claude Code uses: system text inside the conversation
            out.append({"role": "system", "content": _system_text(blocks)})
        else:
            raise InvalidRequestError(f"role must be user, assistant or system, got {role!r}", param=f"{param}.role")
    if not any(m["role"] != "system" for m in out):
        raise InvalidRequestError("messages must contain at least one user message", param="messages")
    return out


def _tools(body: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> list[dict[str, Any]] | None:
    raw = get_list(body, "tools")
    if not raw:
        return None
    check_count("tools", raw, limits.max_tools, "max_tools")
    tools = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            raise InvalidRequestError("a tool must be an object with a name", param=f"tools[{i}]")
        schema = tool.get("input_schema")
        if tool.get("type") not in (None, "custom") and schema is None:
            log.info("ignoring server tool %s (%s): this server runs no tools itself", tool["name"], tool["type"])
            continue
        if schema is not None:
            check_schema_shape(schema, f"tools[{i}].input_schema")
        function: dict[str, Any] = {"name": tool["name"], "parameters": dict(schema or {"type": "object"})}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    return tools or None


def _tool_choice(body: Mapping[str, Any]) -> tuple[Any, bool]:
    """(OpenAI tool_choice, parallel_tool_calls)."""
    choice = get_object(body, "tool_choice")
    if choice is None:
        return "auto", True
    parallel = not get_bool(choice, "disable_parallel_tool_use")
    kind = choice.get("type")
    if kind == "tool":
        name = get_str(choice, "name")
        if not name:
            raise InvalidRequestError("tool_choice of type tool needs a name", param="tool_choice.name")
        return {"type": "function", "function": {"name": name}}, parallel
    mapping = {"auto": "auto", "any": "required", "none": "none"}
    if not isinstance(kind, str) or kind not in mapping:
        shown = repr(kind) if isinstance(kind, str) and len(kind) <= 40 else type(kind).__name__
        raise InvalidRequestError(f"tool_choice.type must be auto, any, tool or none, got {shown}",
                                  param="tool_choice.type")
    return mapping[kind], parallel


def _thinking(body: Mapping[str, Any]) -> bool | None:
    """enabled -> on, disabled -> off, adaptive (Claude Code's default) or absent -> the server's choice."""
    thinking = get_object(body, "thinking")
    kind = thinking.get("type") if thinking else None
    return {"enabled": True, "disabled": False}.get(kind) if isinstance(kind, str) else None


def _response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Structured output: `output_config.format` (or the older `output_format`) with a JSON schema."""
    config = get_object(body, "output_config") or {}
    fmt = config.get("format") or body.get("output_format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), Mapping):
        raise InvalidRequestError("output format must be {\"type\": \"json_schema\", \"schema\": {...}}",
                                  param="output_config.format")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": dict(fmt["schema"])}}


def parse_messages(body: Mapping[str, Any], *, count_only: bool = False,
                   limits: Limits = DEFAULT_LIMITS) -> MessagesCall:
    """Validate a /v1/messages (or count_tokens, without `max_tokens`) body."""
    max_tokens = None if count_only else get_int(body, "max_tokens", lo=1)
    if max_tokens is None and not count_only:
        raise InvalidRequestError("max_tokens is required", param="max_tokens")
    stops = get_list(body, "stop_sequences") or []
    if not all(isinstance(s, str) for s in stops):
        raise InvalidRequestError("stop_sequences must be an array of strings", param="stop_sequences")
    stops = list(get_stop(body, "stop_sequences", limits))
    tool_choice, parallel = _tool_choice(body)
    request = ChatRequest(
        messages=_messages(body),
        tools=_tools(body, limits),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=_response_format(body),
        enable_thinking=_thinking(body),
        max_tokens=max_tokens,
        stop=tuple(s for s in stops if s),
        sampling=Sampling(temperature=get_number(body, "temperature", lo=0.0),
                          top_p=get_number(body, "top_p", lo=0.0, hi=1.0),
                          top_k=get_int(body, "top_k", lo=0, hi=2**31 - 1),
                          seed=get_int(body, "seed", lo=0)),  # an extension: reproducible sampling
    )
    return MessagesCall(request, stream=get_bool(body, "stream"), model=get_str(body, "model"))


# ------------------------------------------------------------------ responses

def stop_reason(reason: str) -> str:
    """Engine reason -> Anthropic `stop_reason`."""
    reasons = {"length": "max_tokens", "tool_calls": "tool_use", "stop_sequence": "stop_sequence"}
    return reasons.get(reason, "end_turn")


def _usage(finished: Finished) -> dict[str, int]:
    usage = finished.usage
    return {"input_tokens": usage.prompt_tokens - usage.cached_tokens, "output_tokens": usage.completion_tokens,
            "cache_read_input_tokens": usage.cached_tokens, "cache_creation_input_tokens": 0}


class MessageStream:
    """Engine events -> Messages API stream events, as `(event name, data)` pairs.

    Blocks are numbered in the order they open; a delta of another kind (or
    another tool call) closes the open block first. Thinking blocks end with an
    empty `signature_delta` (local models sign nothing), as the API's do.
    """

    def __init__(self, *, id: str, model: str) -> None:
        self.id, self.model = id, model
        self._index = -1
        self._open: tuple[str, int | None] | None = None  # (kind, tool call index)

    def start(self, n_prompt: int) -> list[tuple[str, dict[str, Any]]]:
        message = {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": n_prompt, "output_tokens": 0, "cache_read_input_tokens": 0,
                             "cache_creation_input_tokens": 0}}
        return [("message_start", {"type": "message_start", "message": message})]

    @staticmethod
    def ping() -> tuple[str, dict[str, Any]]:
        return ("ping", {"type": "ping"})

    def keepalive(self) -> list[tuple[str, dict[str, Any]]]:
        """An empty delta: a real event for clients whose idle watchdog ignores `ping` (Claude Code
        gives up after 5 minutes without one, and a long prompt on a CPU can take longer).

        With no block open it opens the text block the answer will most likely start with; an
        answer that starts otherwise gets an empty text block first."""
        out = [] if self._open is not None else self._begin(("content", None), {"type": "text", "text": ""})
        kind = self._open[0] if self._open else None
        if kind == "content":
            out.append(self._delta({"type": "text_delta", "text": ""}))
        elif kind == "reasoning":
            out.append(self._delta({"type": "thinking_delta", "thinking": ""}))
        return out

    def _close(self) -> list[tuple[str, dict[str, Any]]]:
        if self._open is None:
            return []
        out = []
        if self._open[0] == "reasoning":
            out.append(self._delta({"type": "signature_delta", "signature": ""}))
        self._open = None
        out.append(("content_block_stop", {"type": "content_block_stop", "index": self._index}))
        return out

    def _begin(self, key: tuple[str, int | None], block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        out = self._close()
        self._index += 1
        self._open = key
        out.append(("content_block_start", {"type": "content_block_start", "index": self._index,
                                            "content_block": block}))
        return out

    def _delta(self, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return ("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})

    def delta(self, delta: Delta) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        if delta.kind == "tool_call":
            key = ("tool_call", delta.index or 0)
            if self._open != key:
                block = {"type": "tool_use", "id": tool_use_id(delta.id or ""), "name": delta.name or "",
                         "input": {}}
                out += self._begin(key, block)
            if delta.arguments:
                out.append(self._delta({"type": "input_json_delta", "partial_json": delta.arguments}))
            return out
        if not delta.text:
            return out
        if delta.kind == "reasoning":
            if self._open != ("reasoning", None):
                out += self._begin(("reasoning", None), {"type": "thinking", "thinking": "", "signature": ""})
            out.append(self._delta({"type": "thinking_delta", "thinking": delta.text}))
        else:
            if self._open != ("content", None):
                out += self._begin(("content", None), {"type": "text", "text": ""})
            out.append(self._delta({"type": "text_delta", "text": delta.text}))
        return out

    def finish(self, finished: Finished) -> list[tuple[str, dict[str, Any]]]:
        out = []
        if self._index < 0:  # nothing was generated: one empty text block, as the non-stream answer has
            out += self._begin(("content", None), {"type": "text", "text": ""})
        out += self._close()
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": stop_reason(finished.reason),
                                                "stop_sequence": finished.stop_sequence},
                                      "usage": _usage(finished)}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out


def fold_message(events: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Fold stream events into the message a non-stream request returns."""
    message: dict[str, Any] = {}
    partial_json: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = json.loads(json.dumps(data["message"]))
        elif name == "content_block_start":
            message["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                block["text"] += delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] = delta["signature"]
            elif kind == "input_json_delta":
                partial_json[data["index"]] = partial_json.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and data["index"] in partial_json:
            try:
                value = json.loads(partial_json[data["index"]])
            except json.JSONDecodeError:
                value = {}
            message["content"][data["index"]]["input"] = value if isinstance(value, dict) else {}
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"].update(data["usage"])
    return message


def model_card(model_id: str, created_at: str) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": created_at}


def models_response(model_id: str, created_at: str) -> dict[str, Any]:
    """`GET /v1/models` for Anthropic clients (told apart by the `anthropic-version` header)."""
    return {"data": [model_card(model_id, created_at)], "has_more": False, "first_id": model_id,
            "last_id": model_id}


def count_tokens_response(n: int) -> dict[str, int]:
    return {"input_tokens": n}
