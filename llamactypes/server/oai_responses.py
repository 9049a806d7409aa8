"""OpenAI Responses API (`POST /v1/responses`) wire dicts <-> engine types. Pure: no HTTP, no model.

`parse_responses(body, previous)` turns a request into a `ChatRequest` plus what the
answer needs (`ResponsesCall`): `instructions` and `developer`/`system` input become
system messages, input items (`message`, `function_call`, `function_call_output`,
`reasoning`, `custom_tool_call`, `custom_tool_call_output`) become OpenAI chat messages,
and tools are flattened into function tools the chat layer knows:

- `function` tools pass through;
- `namespace` groups (MCP servers) are flattened to `namespace + name` (a `__` between
  them unless the namespace already ends with `_`), and calls come back split again;
- `custom` (freeform) tools become a function with one string parameter `input`; a
  `lark` or `regex` grammar constrains that string (`grammar.lark_to_gbnf`: the grammar
  becomes an anchored regex the JSON-schema converter turns into GBNF), and a grammar
  that does not translate leaves the input free, with a log line saying why;
- hosted tools (`web_search`, `file_search`, ...) cannot run here: they are left out
  of the prompt and logged, the request does not fail.

The answer side (`ResponseBuilder` in `oai_responses_stream.py`) maps the engine's
events back to output items; a tool call's flat name is looked up in `ResponsesCall.tools`.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..engine.types import ChatRequest
from ..errors import GrammarError, InvalidRequestError
from ..grammar.lark_to_gbnf import UnsupportedGrammar, grammar_to_regex
from .fields import get_bool, get_int, get_list, get_object, get_str
from .openai import parse_sampling

__all__ = [
    "ToolInfo", "ResponsesCall", "parse_responses", "new_response_id", "flat_name",
    "input_tokens_response", "deleted_response", "HOSTED_TOOLS",
]

log = logging.getLogger("llamactypes.server")

_ALNUM = string.ascii_letters + string.digits

# Tool types the real API runs on OpenAI's side; a local model cannot, so they are dropped.
HOSTED_TOOLS = frozenset({
    "web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26",
    "file_search", "computer_use_preview", "computer", "code_interpreter", "image_generation", "mcp",
    "local_shell", "tool_search", "apply_patch", "shell",
})

# Input items that record hosted-tool activity: nothing for the model to read back.
_HOSTED_ITEMS = frozenset({
    "web_search_call", "file_search_call", "computer_call", "computer_call_output", "code_interpreter_call",
    "image_generation_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call",
    "tool_search_call", "tool_search_output", "compaction", "item_reference",
})


def new_response_id(prefix: str = "resp_") -> str:
    """`prefix` + 32 random alphanumerics."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(32))


def flat_name(namespace: str | None, name: str) -> str:
    """The one function name a namespaced tool has in the prompt."""
    if not namespace:
        return name
    return namespace + name if namespace.endswith("_") else f"{namespace}__{name}"


@dataclass(frozen=True)
class ToolInfo:
    """How a flattened tool maps back: its real name, namespace, and whether it is custom."""

    name: str
    namespace: str | None = None
    custom: bool = False


@dataclass
class ResponsesCall:
    """A parsed /v1/responses body: the engine request and what the answer echoes."""

    request: ChatRequest
    conversation: list[dict[str, Any]]          # the messages without instructions (for previous_response_id)
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    stream: bool = False
    store: bool = True
    echo: dict[str, Any] = field(default_factory=dict)   # request fields the response object repeats
    dropped_tools: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ input items

def _text_of(content: Any, where: str) -> str:
    """The text of a message's content: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content must be a string or an array of content parts", param=where)
    texts = []
    for i, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequestError(f"{where}.content[{i}].text must be a string",
                                          param=f"{where}.content[{i}]")
            texts.append(text)
        elif kind == "refusal":
            texts.append(str(part.get("refusal") or ""))
        elif kind in ("input_image", "input_file", "input_audio"):
            raise InvalidRequestError(f"{where}.content[{i}] is {kind}: this server reads text only",
                                      param=f"{where}.content[{i}]")
        else:
            raise InvalidRequestError(f"{where}.content[{i}] has unknown type {kind!r}",
                                      param=f"{where}.content[{i}]")
    return "".join(texts)


def _output_text(output: Any, where: str) -> str:
    """A tool output: a string, or content parts (their text joined)."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    return _text_of(output, where)


class _Conversation:
    """Builds OpenAI chat messages from Responses input items, in order."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._reasoning = ""

    def _assistant(self) -> dict[str, Any]:
        """The assistant message the next call or reasoning belongs to (a new one when needed)."""
        last = self.messages[-1] if self.messages else None
        if last is None or last["role"] != "assistant":
            last = {"role": "assistant", "content": None}
            self.messages.append(last)
        return last

    @property
    def pending_reasoning(self) -> bool:
        return bool(self._reasoning)

    def message(self, role: str, text: str) -> None:
        if role == "developer":
            role = "system"
        if role == "assistant":
            target = self._assistant()
            if target.get("tool_calls"):  # text after calls starts a new message
                target = {"role": "assistant", "content": None}
                self.messages.append(target)
            target["content"] = (target.get("content") or "") + text
        else:
            self.messages.append({"role": role, "content": text})
        self._flush_reasoning()

    def reasoning(self, text: str) -> None:
        """Reasoning items precede the message or call they led to: kept until that one comes."""
        self._reasoning += text

    def _flush_reasoning(self) -> None:
        last = self.messages[-1] if self.messages else None
        if self._reasoning and last is not None and last["role"] == "assistant":
            last["reasoning_content"] = last.get("reasoning_content", "") + self._reasoning
            self._reasoning = ""

    def call(self, call_id: str, name: str, arguments: str) -> None:
        target = self._assistant()
        self._flush_reasoning()
        target.setdefault("tool_calls", []).append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})

    def output(self, call_id: str, text: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})


def _str_field(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where}.{key} must be a string", param=f"{where}.{key}")
    return value


def _add_item(conv: _Conversation, item: Any, where: str) -> None:
    if not isinstance(item, Mapping):
        raise InvalidRequestError(f"{where} must be an object", param=where)
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise InvalidRequestError(f"{where}.role must be user, assistant, system or developer, got {role!r}",
                                      param=f"{where}.role")
        conv.message(role, _text_of(item.get("content", ""), where))
    elif kind == "function_call":
        name = flat_name(item.get("namespace"), _str_field(item, "name", where))
        conv.call(_str_field(item, "call_id", where), name, str(item.get("arguments") or "{}"))
    elif kind == "custom_tool_call":
        name = flat_name(item.get("namespace"), _str_field(item, "name", where))
        conv.call(_str_field(item, "call_id", where), name,
                  json.dumps({"input": _str_field(item, "input", where)}, ensure_ascii=False))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        conv.output(_str_field(item, "call_id", where), _output_text(item.get("output"), where))
    elif kind == "reasoning":
        parts = list(item.get("content") or []) or list(item.get("summary") or [])
        conv.reasoning(_text_of(parts, where))
    elif kind in _HOSTED_ITEMS:
        log.info("responses: %s is a %s item (hosted tools do not run here); left out", where, kind)
    else:
        raise InvalidRequestError(f"{where}.type {kind!r} is not an input item this server reads "
                                  "(message, function_call, function_call_output, reasoning, custom_tool_call, "
                                  "custom_tool_call_output)", param=f"{where}.type")


def input_messages(value: Any) -> list[dict[str, Any]]:
    """`input` (a string or a list of items) as OpenAI chat messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequestError("input must be a string or an array of input items", param="input")
    conv = _Conversation()
    for i, item in enumerate(value):
        _add_item(conv, item, f"input[{i}]")
    if conv.pending_reasoning:
        log.info("responses: a trailing reasoning item has no message after it; left out")
    return conv.messages


# ------------------------------------------------------------------ tools

def _custom_parameters(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A custom tool's one string parameter, constrained by its grammar when that translates."""
    string_schema: dict[str, Any] = {"type": "string"}
    fmt = tool.get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "grammar":
        syntax, definition = fmt.get("syntax"), fmt.get("definition")
        if syntax not in ("lark", "regex") or not isinstance(definition, str):
            raise InvalidRequestError(f"{where}.format needs syntax 'lark' or 'regex' and a definition string",
                                      param=f"{where}.format")
        try:
            string_schema["pattern"] = "^" + grammar_to_regex(definition, syntax) + "$"
        except UnsupportedGrammar as exc:
            log.warning("responses: %s (%s) grammar is not constrained: %s", where, tool.get("name"), exc)
        except GrammarError as exc:
            raise InvalidRequestError(f"{where}.format.definition: {exc}", param=f"{where}.format") from None
    return {"type": "object", "properties": {"input": string_schema}, "required": ["input"],
            "additionalProperties": False}


def _add_tool(tool: Any, where: str, namespace: str | None, out: list[dict[str, Any]],
              infos: dict[str, ToolInfo], dropped: list[str]) -> None:
    if not isinstance(tool, Mapping):
        raise InvalidRequestError(f"{where} must be an object", param=where)
    kind = tool.get("type")
    if kind == "namespace" and namespace is None:
        name = _str_field(tool, "name", where)
        for i, inner in enumerate(get_list(tool, "tools") or []):
            _add_tool(inner, f"{where}.tools[{i}]", name, out, infos, dropped)
        return
    if kind in ("function", "custom"):
        name = _str_field(tool, "name", where)
        flat = flat_name(namespace, name)
        description = tool.get("description") or ""
        if kind == "function":
            parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        else:
            parameters = _custom_parameters(tool, where)
            description = (description + "\nPut the tool's whole input text in the `input` string.").strip()
        out.append({"type": "function", "function": {"name": flat, "description": description,
                                                     "parameters": parameters}})
        infos[flat] = ToolInfo(name, namespace, kind == "custom")
        return
    if isinstance(kind, str):
        dropped.append(kind)
        return
    raise InvalidRequestError(f"{where}.type must be a string", param=f"{where}.type")


def parse_tools(value: Any) -> tuple[list[dict[str, Any]], dict[str, ToolInfo], list[str]]:
    """Responses tools -> chat function tools, the map back, and the hosted tool types left out."""
    out: list[dict[str, Any]] = []
    infos: dict[str, ToolInfo] = {}
    dropped: list[str] = []
    if value is None:
        return out, infos, dropped
    if not isinstance(value, list):
        raise InvalidRequestError("tools must be an array", param="tools")
    for i, tool in enumerate(value):
        _add_tool(tool, f"tools[{i}]", None, out, infos, dropped)
    return out, infos, dropped


def _tool_choice(value: Any, infos: Mapping[str, ToolInfo]) -> Any:
    if value is None or value == "auto":
        return "auto"
    if value in ("none", "required"):
        return value
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind in ("function", "custom") and isinstance(value.get("name"), str):
            flat = flat_name(value.get("namespace"), value["name"])
            if flat not in infos:
                raise InvalidRequestError(f"tool_choice names {value['name']!r}, which is not in tools",
                                          param="tool_choice")
            return {"type": "function", "function": {"name": flat}}
        if kind == "allowed_tools":
            return "required" if value.get("mode") == "required" else "auto"
        if kind in HOSTED_TOOLS:
            return "auto"
    raise InvalidRequestError("tool_choice must be auto, none, required or {\"type\": \"function\", \"name\": ...}",
                              param="tool_choice")


# ------------------------------------------------------------------ the request

def _response_format(text: Mapping[str, Any] | None) -> dict[str, Any] | None:
    fmt = (text or {}).get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping):
        raise InvalidRequestError("text.format must be an object", param="text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, Mapping):
            raise InvalidRequestError("text.format.schema must be an object", param="text.format.schema")
        return {"type": "json_schema", "json_schema": {"name": fmt.get("name") or "response", "schema": schema}}
    raise InvalidRequestError(f"text.format.type must be text, json_object or json_schema, got {kind!r}",
                              param="text.format.type")


def _thinking(reasoning: Mapping[str, Any] | None) -> bool | None:
    """`reasoning.effort` -> thinking on/off for hybrid models (None: the server's default)."""
    effort = (reasoning or {}).get("effort")
    if effort is None:
        return None
    if effort in ("none", "minimal"):
        return False
    if effort in ("low", "medium", "high", "xhigh"):
        return True
    raise InvalidRequestError(f"reasoning.effort must be none, minimal, low, medium, high or xhigh, got {effort!r}",
                              param="reasoning.effort")


def _system_first(instructions: str | None, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instructions and leading system/developer messages merged into one system message
    (templates often accept a single one, at the start)."""
    head = [instructions] if instructions else []
    i = 0
    while i < len(messages) and messages[i]["role"] == "system":
        head.append(messages[i]["content"])
        i += 1
    rest = messages[i:]
    return ([{"role": "system", "content": "\n\n".join(head)}] if head else []) + rest


def parse_responses(body: Mapping[str, Any], previous: Sequence[Mapping[str, Any]] | None = None) -> ResponsesCall:
    """Validate a /v1/responses body; `previous` is the stored conversation of
    `previous_response_id` (the caller looks it up: this module holds no state)."""
    if body.get("input") is None:
        raise InvalidRequestError("input is required", param="input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        instructions = _text_of(instructions, "instructions")
    conversation = [dict(m) for m in previous or []] + input_messages(body["input"])
    if not conversation:
        raise InvalidRequestError("input must hold at least one message", param="input")
    tools, infos, dropped = parse_tools(body.get("tools"))
    if dropped:
        log.info("responses: hosted tools left out of the prompt (they cannot run here): %s", ", ".join(dropped))
    max_output = get_int(body, "max_output_tokens", lo=1)
    request = ChatRequest(
        messages=_system_first(instructions, conversation),
        tools=tools or None,
        tool_choice=_tool_choice(body.get("tool_choice"), infos) if tools else "auto",
        parallel_tool_calls=get_bool(body, "parallel_tool_calls", True),
        response_format=_response_format(get_object(body, "text")),
        enable_thinking=_thinking(get_object(body, "reasoning")),
        max_tokens=max_output,
        sampling=parse_sampling(body),  # temperature, top_p, and llama-server's extensions (top_k, seed, ...)
    )
    echo = {
        "instructions": instructions, "max_output_tokens": max_output,
        "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": get_str(body, "previous_response_id"),
        "temperature": request.sampling.temperature, "top_p": request.sampling.top_p,
        "tool_choice": body.get("tool_choice") or "auto", "tools": list(body.get("tools") or []),
        "text": get_object(body, "text") or {"format": {"type": "text"}},
        "reasoning": get_object(body, "reasoning"), "metadata": get_object(body, "metadata") or {},
    }
    return ResponsesCall(request=request, conversation=conversation, tools=infos, stream=get_bool(body, "stream"),
                         store=get_bool(body, "store", True), echo=echo, dropped_tools=dropped)


def input_tokens_response(n_tokens: int) -> dict[str, Any]:
    """`POST /v1/responses/input_tokens`."""
    return {"object": "response.input_tokens", "input_tokens": n_tokens}


def deleted_response(response_id: str) -> dict[str, Any]:
    """`DELETE /v1/responses/{id}`."""
    return {"id": response_id, "object": "response", "deleted": True}


def now() -> int:
    return int(time.time())


__all__ += ["input_messages", "parse_tools", "now"]
