"""Message and tool normalization: one shape for templates, InvalidRequestError naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from llamactypes.chat.messages import normalize_messages, normalize_tools
from llamactypes.errors import InvalidRequestError


def test_content_forms() -> None:
    out = normalize_messages([
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
        {"role": "developer", "content": "d"},
        {"role": "assistant", "content": "ok", "reasoning_content": "why"},
    ])
    assert out[0] == {"role": "user", "content": "a\nb"}
    assert out[1]["content"] == "" and out[1]["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]
    assert out[2] == {"role": "tool", "content": "r", "tool_call_id": "c1", "name": "f"}  # name filled in
    assert out[3]["role"] == "developer"
    assert out[4]["reasoning_content"] == "why"


def test_arguments_as_object_or_empty() -> None:
    out = normalize_messages([{"role": "assistant", "tool_calls": [
        {"function": {"name": "f", "arguments": {"y": [1]}}}, {"function": {"name": "g", "arguments": ""}}]}])
    assert [c["function"]["arguments"] for c in out[0]["tool_calls"]] == [{"y": [1]}, {}]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ("hi", "messages"),
        ([], "messages"),
        (["hi"], "messages[0]"),
        ([{"role": "wizard", "content": "x"}], "messages[0].role"),
        ([{"role": "user"}], "messages[0].content"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text"),
        ([{"role": "assistant", "tool_calls": "f()"}], "messages[0].tool_calls"),
        ([{"role": "assistant", "tool_calls": [{"function": {}}]}], "messages[0].tool_calls[0].function.name"),
        ([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}],
         "messages[0].tool_calls[0].function.arguments"),
        ([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}],
         "messages[0].tool_calls[0].function.arguments"),
        ([{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": 3, "content": "r"}], "messages[1].tool_call_id"),
        ([{"role": "assistant", "content": "a", "reasoning_content": 1}], "messages[0].reasoning_content"),
    ],
)
def test_bad_messages_name_the_field(messages: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        normalize_messages(messages)
    assert info.value.param == param


def test_tools() -> None:
    tools = normalize_tools([{"type": "function", "function": {"name": "f", "description": "d"}}])
    assert tools == [{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}]
    assert normalize_tools(None) == []


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ({}, "tools"),
        ([{"type": "code_interpreter"}], "tools[0].type"),
        ([{"type": "function"}], "tools[0].function"),
        ([{"type": "function", "function": {"name": ""}}], "tools[0].function.name"),
        ([{"type": "function", "function": {"name": "f", "parameters": []}}], "tools[0].function.parameters"),
        ([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}],
         "tools[1].function.name"),
    ],
)
def test_bad_tools_name_the_field(tools: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        normalize_tools(tools)
    assert info.value.param == param
