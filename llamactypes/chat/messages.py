"""Normalize OpenAI-style chat messages and tools into the shape chat templates expect.

Clients send messages in several equivalent spellings: content as a string or a
list of text parts, tool-call arguments as a JSON string or an object. Templates
are written against one shape (the Hugging Face convention), so everything is
converted here once, and anything that cannot be served is rejected with an
`InvalidRequestError` whose `param` points at the offending field
(``messages[2].tool_calls[0].function.arguments``).

The normalized message is a plain dict:

    {"role": "system"|"developer"|"user"|"assistant"|"tool",
     "content": str,                       # "" when absent
     "tool_calls": [{"id", "type": "function",
                     "function": {"name", "arguments": dict}}],   # assistant only
     "reasoning_content": str,             # assistant only, when given
     "tool_call_id": str, "name": str}     # tool only (name filled in when known)

Arguments always reach templates as dicts, because several templates iterate
them (``tool_call.arguments.items()``) and others serialize them with ``tojson``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llamactypes.errors import InvalidRequestError

__all__ = ["ROLES", "normalize_messages", "normalize_tools", "tool_parameters"]

ROLES = ("system", "developer", "user", "assistant", "tool")
_TEXT_PART_TYPES = ("text", "input_text", "output_text")


def _content_text(content: Any, param: str) -> str:
    """Turn message content (None, str, or a list of text parts) into one string.

    Text parts are joined with a newline, as llama.cpp does for templates that
    take string content.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, Sequence) or isinstance(content, (bytes, bytearray)):
        raise InvalidRequestError("content must be a string or a list of content parts", param=param)
    texts: list[str] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping):
            raise InvalidRequestError("a content part must be an object", param=where)
        kind = part.get("type", "text")
        if kind not in _TEXT_PART_TYPES:
            raise InvalidRequestError(
                f"content part type {kind!r} is not supported (only text)", param=f"{where}.type"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError("a text part needs a string 'text'", param=f"{where}.text")
        texts.append(text)
    return "\n".join(texts)


def _arguments(value: Any, param: str) -> dict[str, Any]:
    """Tool-call arguments as a dict, from a JSON string or an object."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"arguments are not valid JSON: {exc.msg}", param=param) from exc
    if not isinstance(value, Mapping):
        raise InvalidRequestError("arguments must be a JSON object", param=param)
    return dict(value)


def _tool_calls(calls: Any, param: str) -> list[dict[str, Any]]:
    """Normalize an assistant message's `tool_calls` list."""
    if not isinstance(calls, Sequence) or isinstance(calls, (str, bytes)):
        raise InvalidRequestError("tool_calls must be a list", param=param)
    out: list[dict[str, Any]] = []
    for j, call in enumerate(calls):
        where = f"{param}[{j}]"
        if not isinstance(call, Mapping):
            raise InvalidRequestError("a tool call must be an object", param=where)
        kind = call.get("type", "function")
        if kind != "function":
            raise InvalidRequestError(f"tool call type {kind!r} is not supported", param=f"{where}.type")
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise InvalidRequestError("a tool call needs a 'function' object", param=f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("a tool call needs a function name", param=f"{where}.function.name")
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise InvalidRequestError("a tool call id must be a string", param=f"{where}.id")
        arguments = _arguments(function.get("arguments"), f"{where}.function.arguments")
        out.append(
            {
                "id": call_id or "",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    return out


def _message(message: Any, i: int, call_names: dict[str, str]) -> dict[str, Any]:
    """Normalize one message; `call_names` maps earlier tool-call ids to names."""
    param = f"messages[{i}]"
    if not isinstance(message, Mapping):
        raise InvalidRequestError("a message must be an object", param=param)
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequestError(
            f"role must be one of {', '.join(ROLES)}, got {role!r}", param=f"{param}.role"
        )
    out: dict[str, Any] = {"role": role}
    raw_content = message.get("content")
    out["content"] = _content_text(raw_content, f"{param}.content")
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls:
            out["tool_calls"] = _tool_calls(calls, f"{param}.tool_calls")
            for call in out["tool_calls"]:
                if call["id"]:
                    call_names[call["id"]] = call["function"]["name"]
        reasoning = message.get("reasoning_content")
        if reasoning is not None:
            if not isinstance(reasoning, str):
                raise InvalidRequestError(
                    "reasoning_content must be a string", param=f"{param}.reasoning_content"
                )
            if reasoning:
                out["reasoning_content"] = reasoning
    elif role == "tool":
        call_id = message.get("tool_call_id")
        if call_id is not None and not isinstance(call_id, str):
            raise InvalidRequestError("tool_call_id must be a string", param=f"{param}.tool_call_id")
        out["tool_call_id"] = call_id or ""
        name = message.get("name") or call_names.get(call_id or "", "")
        if name:
            out["name"] = str(name)
    elif role in ("user", "system", "developer") and raw_content is None:
        raise InvalidRequestError(f"a {role} message needs content", param=f"{param}.content")
    elif message.get("name") and isinstance(message.get("name"), str):
        out["name"] = message["name"]
    return out


def normalize_messages(messages: Any) -> list[dict[str, Any]]:
    """Validate and normalize a list of OpenAI-style messages (see the module docstring).

    Raises `InvalidRequestError` with `param` naming the bad field.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise InvalidRequestError("messages must be a list", param="messages")
    if not messages:
        raise InvalidRequestError("messages must not be empty", param="messages")
    call_names: dict[str, str] = {}
    return [_message(m, i, call_names) for i, m in enumerate(messages)]


def normalize_tools(tools: Any) -> list[dict[str, Any]]:
    """Validate OpenAI `tools` and return them as ``{"type": "function", "function": {...}}``.

    `parameters` defaults to an empty object schema; names must be unique.
    """
    if tools is None:
        return []
    if not isinstance(tools, Sequence) or isinstance(tools, (str, bytes)):
        raise InvalidRequestError("tools must be a list", param="tools")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise InvalidRequestError("a tool must be an object", param=where)
        if tool.get("type", "function") != "function":
            raise InvalidRequestError(f"tool type {tool.get('type')!r} is not supported", param=f"{where}.type")
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise InvalidRequestError("a tool needs a 'function' object", param=f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("a tool needs a name", param=f"{where}.function.name")
        if name in seen:
            raise InvalidRequestError(f"duplicate tool name {name!r}", param=f"{where}.function.name")
        seen.add(name)
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise InvalidRequestError("parameters must be a JSON Schema object", param=f"{where}.function.parameters")
        entry: dict[str, Any] = {"name": name}
        description = function.get("description")
        if description is not None:
            entry["description"] = str(description)
        entry["parameters"] = tool_parameters(function)
        out.append({"type": "function", "function": entry})
    return out


def tool_parameters(function: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a function's parameters; an empty object schema when absent."""
    params = function.get("parameters")
    if not params:
        return {"type": "object", "properties": {}}
    return dict(params)
