"""Find out what a chat template can render, and reshape messages for what it cannot.

Templates differ in what they accept: Gemma 2 refuses a system message, many
ChatML templates ignore ``tool_calls`` and ``tool`` messages, Mistral's insist
that a tool result is followed by an assistant turn. `probe_caps` renders a few
tiny conversations with marker strings (as llama.cpp and minja do) to learn
this once per template; `adapt_messages` then rewrites a conversation so the
template renders it faithfully:

* a system message it drops or refuses is merged into the first user message;
* tool calls it ignores are written into the assistant content, in the text
  form of the request's dialect;
* tool results it ignores become user messages ``{"tool_response": ...}``;
* an empty assistant turn is inserted between a tool result and a user message
  where the template demands alternation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llamactypes.chat.template import ChatTemplate
from llamactypes.errors import ChatTemplateError

__all__ = ["TemplateCaps", "adapt_messages", "probe_caps"]

_SYS, _RESULT = "<<sys-probe>>", "<<result-probe>>"
_TOOL, _CALL, _CALL2 = "probe_tool_fn", "probe_call_fn", "probe_call_gn"
_PROBE_TOOL = {
    "type": "function",
    "function": {"name": _TOOL, "description": "probe", "parameters": {"type": "object", "properties": {}}},
}


@dataclass(frozen=True)
class TemplateCaps:
    """What a template renders (True = renders it faithfully)."""

    system_role: bool = True
    tools: bool = True
    tool_calls: bool = True
    tool_responses: bool = True
    parallel_tool_calls: bool = True
    user_after_tool: bool = True
    #: Content of the assistant turn inserted between a tool result and a user message.
    filler: str = ""


def _call(name: str, call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": {"probe_arg": "v"}}}


def _renders(template: ChatTemplate, messages: list[dict[str, Any]], **kwargs: Any) -> str | None:
    """The rendering, or None if the template raised."""
    try:
        return template.render(messages, add_generation_prompt=False, **kwargs)
    except ChatTemplateError:
        return None


def probe_caps(template: ChatTemplate) -> TemplateCaps:
    """Render probe conversations to learn what `template` supports."""
    user = {"role": "user", "content": "hi"}
    out = _renders(template, [{"role": "system", "content": _SYS}, user])
    system_role = out is not None and _SYS in out
    out = _renders(template, [user], tools=[_PROBE_TOOL])
    tools = out is not None and _TOOL in out
    caller = {"role": "assistant", "content": "", "tool_calls": [_call(_CALL, "aaaaaaaa1")]}
    out = _renders(template, [user, caller])
    tool_calls = out is not None and _CALL in out
    if not tool_calls:
        caller = {"role": "assistant", "content": "calling"}
    result = {"role": "tool", "tool_call_id": "aaaaaaaa1", "name": _CALL, "content": _RESULT}
    out = _renders(template, [user, caller, result])
    tool_responses = out is not None and _RESULT in out
    parallel = False
    if tool_calls:
        calls = [_call(_CALL, "aaaaaaaa1"), _call(_CALL2, "aaaaaaaa2")]
        two = {"role": "assistant", "content": "", "tool_calls": calls}
        out = _renders(template, [user, two])
        parallel = out is not None and _CALL in out and _CALL2 in out
    caps = TemplateCaps(system_role, tools, tool_calls, tool_responses, parallel)
    conversation = [user, caller, result, user]
    if _renders(template, adapt_messages(conversation, caps, _no_text)) is not None:
        return caps
    # Some templates refuse an empty assistant turn too: fall back to a blank one.
    for filler in ("", " "):
        fixed = TemplateCaps(system_role, tools, tool_calls, tool_responses, parallel, False, filler)
        if _renders(template, adapt_messages(conversation, fixed, _no_text)) is not None:
            return fixed
    return caps


def _no_text(calls: Sequence[dict[str, Any]]) -> str:
    return ""


def adapt_messages(
    messages: Sequence[dict[str, Any]],
    caps: TemplateCaps,
    calls_text: Callable[[Sequence[dict[str, Any]]], str],
    *,
    system_extra: str = "",
) -> list[dict[str, Any]]:
    """Rewrite normalized messages for a template with `caps` (see the module docstring).

    `calls_text` writes tool calls as text for templates that ignore them;
    `system_extra` is appended to the system prompt (tool descriptions and
    instructions), creating one if needed.
    """
    out = [dict(m) for m in messages]
    if not caps.tool_calls:
        for message in out:
            calls = message.pop("tool_calls", None)
            if calls:
                text = calls_text(calls)
                message["content"] = f"{message['content']}\n{text}" if message.get("content") else text
    if not caps.tool_responses:
        out = _tool_results_as_user(out)
    if system_extra:
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{system_extra}" if out[0]["content"] else system_extra
        else:
            out.insert(0, {"role": "system", "content": system_extra})
    if not caps.system_role:
        out = _merge_system(out)
    if not caps.user_after_tool:
        fixed: list[dict[str, Any]] = []
        for message in out:
            if message["role"] == "user" and fixed and fixed[-1]["role"] == "tool":
                fixed.append({"role": "assistant", "content": caps.filler})
            fixed.append(message)
        out = fixed
    return out


def _tool_results_as_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results as user messages; a result and its neighbouring user turns are merged."""
    out: list[dict[str, Any]] = []
    merge_next = False
    for message in messages:
        if message["role"] == "tool":
            response = {"tool": message.get("name", ""), "content": message["content"]}
            if message.get("tool_call_id"):
                response["tool_call_id"] = message["tool_call_id"]
            text = json.dumps({"tool_response": response}, ensure_ascii=False)
            if out and out[-1]["role"] == "user" and merge_next:
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text})
            merge_next = True
            continue
        if message["role"] == "user" and merge_next and out and out[-1]["role"] == "user":
            out[-1]["content"] += "\n\n" + message["content"]
            continue
        merge_next = False
        out.append(message)
    return out


def _merge_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """System messages folded into the next user message (or turned into one)."""
    out: list[dict[str, Any]] = []
    pending = ""
    for message in messages:
        if message["role"] in ("system", "developer"):
            pending = f"{pending}\n\n{message['content']}" if pending else message["content"]
            continue
        if pending and message["role"] == "user":
            message = {**message, "content": f"{pending}\n\n{message['content']}"}
            pending = ""
        out.append(message)
    if pending:
        out.insert(0, {"role": "user", "content": pending})
    return out
