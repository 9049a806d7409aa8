"""Anthropic translation: Messages bodies to chat requests, events to the exact stream sequence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llamactypes.chat.types import Delta
from llamactypes.engine import Finished, Usage
from llamactypes.errors import InvalidRequestError
from llamactypes.server import anthropic

REQUESTS = Path(__file__).parents[2] / "fixtures" / "requests"
CLAUDE_CODE = REQUESTS / "claude_code_messages.json"
USER = [{"role": "user", "content": "Hi"}]


def parse(**body: Any) -> Any:
    return anthropic.parse_messages({"max_tokens": 16, "messages": USER, **body}).request


def test_system_blocks_drop_the_billing_header_and_cache_control() -> None:
    request = parse(system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=1; cc_entrypoint=cli;"},
                            {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                            {"type": "text", "text": "B"}])
    assert request.messages[0] == {"role": "system", "content": "A\n\nB"}
    assert parse(system="plain").messages[0] == {"role": "system", "content": "plain"}


def test_tool_use_and_tool_result_become_openai_calls_and_tool_messages() -> None:
    request = parse(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "need a tool", "signature": "s"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
            {"type": "text", "text": "thanks"}]}])
    assert request.messages[1] == {
        "role": "assistant", "content": "Checking.", "reasoning_content": "need a tool",
        "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert request.messages[2:] == [{"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                                    {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"},
                                    {"role": "user", "content": "thanks"}]


def test_a_system_message_inside_the_conversation_is_kept_as_system() -> None:
    request = parse(messages=[*USER, {"role": "system", "content": [{"type": "text", "text": "note"}]},
                              {"role": "user", "content": "go"}])
    assert [m["role"] for m in request.messages] == ["user", "system", "user"]


def test_tools_tool_choice_and_options() -> None:
    tools = [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}},
              "cache_control": {"type": "ephemeral"}},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    request = parse(tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True},
                    stop_sequences=["END"], temperature=0.5, top_p=0.9, top_k=3, metadata={"user_id": "u"},
                    thinking={"type": "enabled", "budget_tokens": 100}, context_management={"edits": []})
    assert request.tools == [{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}]
    assert request.tool_choice == "required" and request.parallel_tool_calls is False
    assert request.stop == ("END",) and request.enable_thinking is True and request.max_tokens == 16
    assert (request.sampling.temperature, request.sampling.top_p, request.sampling.top_k) == (0.5, 0.9, 3)
    assert parse(tool_choice={"type": "tool", "name": "f"}, tools=tools[:1]).tool_choice == {
        "type": "function", "function": {"name": "f"}}
    assert parse(tool_choice={"type": "none"}).tool_choice == "none"
    assert parse(thinking={"type": "adaptive"}).enable_thinking is None
    assert parse(thinking={"type": "disabled"}).enable_thinking is False


def test_output_config_format_is_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    request = parse(output_config={"effort": "low", "format": {"type": "json_schema", "schema": schema}})
    assert request.response_format == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert parse(output_config={"effort": "high"}).response_format is None


@pytest.mark.parametrize("body,param", [
    ({"messages": USER}, "max_tokens"),
    ({"max_tokens": 0, "messages": USER}, "max_tokens"),
    ({"max_tokens": 5}, "messages"),
    ({"max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]},
     "messages[0].content[0]"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                                  "content": [{"type": "image"}]}]}]},
     "messages[0].content[0].content[0]"),
    ({"max_tokens": 5, "messages": USER, "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({"max_tokens": 5, "messages": USER, "stop_sequences": [1]}, "stop_sequences"),
    ({"max_tokens": 5, "messages": USER, "output_config": {"format": {"type": "xml"}}}, "output_config.format"),
])
def test_bad_bodies_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        anthropic.parse_messages(body)
    assert info.value.param == param


def test_images_are_refused_with_a_clear_message() -> None:
    with pytest.raises(InvalidRequestError, match="image input is not supported"):
        parse(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}])


def test_count_tokens_needs_no_max_tokens() -> None:
    assert anthropic.parse_messages({"messages": USER}, count_only=True).request.max_tokens is None


def test_the_recorded_claude_code_request_parses() -> None:
    recorded = json.loads(CLAUDE_CODE.read_text())
    call = anthropic.parse_messages(recorded["body"])
    request = call.request
    assert call.stream and call.model == "claude-opus-4-8" and request.max_tokens == 32000
    assert request.enable_thinking is None  # adaptive: the server decides
    assert not any("x-anthropic-billing-header" in m["content"] for m in request.messages)
    assert request.messages[0]["content"].startswith("You are Claude Code")
    assert [m["role"] for m in request.messages] == ["system", "user", "assistant", "tool", "user", "system", "user"]
    assert len(request.tools) == len(recorded["body"]["tools"])


def run_stream(events: list[Any], n_prompt: int = 5) -> list[tuple[str, dict[str, Any]]]:
    stream = anthropic.MessageStream(id="msg_1", model="m")
    out = stream.start(n_prompt)
    for event in events:
        out += stream.delta(event) if isinstance(event, Delta) else stream.finish(event)
    return out


def test_stream_sequence_for_thinking_text_and_two_tool_calls() -> None:
    events = [Delta("reasoning", text="hm"), Delta("content", text="A"), Delta("content", text="B"),
              Delta("tool_call", index=0, id="call_x", name="f", arguments='{"a":'),
              Delta("tool_call", index=0, arguments="1}"),
              Delta("tool_call", index=1, id="call_y", name="g", arguments=""),
              Finished("tool_calls", Usage(10, 7, 4))]
    out = run_stream(events)
    names = [name for name, _ in out]
    assert names == ["message_start",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_stop",
                     "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in out)
    starts = [data for name, data in out if name == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2, 3]
    assert starts[2]["content_block"] == {"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}}
    assert out[3][1]["delta"] == {"type": "signature_delta", "signature": ""}
    delta = dict(out[-2][1])
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {"input_tokens": 6, "output_tokens": 7, "cache_read_input_tokens": 4,
                              "cache_creation_input_tokens": 0}
    message = anthropic.fold_message(out)
    assert message["content"] == [{"type": "thinking", "thinking": "hm", "signature": ""},
                                  {"type": "text", "text": "AB"},
                                  {"type": "tool_use", "id": "toolu_x", "name": "f", "input": {"a": 1}},
                                  {"type": "tool_use", "id": "toolu_y", "name": "g", "input": {}}]
    assert message["stop_reason"] == "tool_use" and message["id"] == "msg_1" and message["role"] == "assistant"
    assert message["usage"]["input_tokens"] == 6 and message["usage"]["output_tokens"] == 7


def test_an_empty_answer_still_has_one_text_block_and_stop_reasons_map() -> None:
    out = run_stream([Finished("length", Usage(3, 0))])
    assert [n for n, _ in out] == ["message_start", "content_block_start", "content_block_stop", "message_delta",
                                   "message_stop"]
    assert anthropic.fold_message(out)["content"] == [{"type": "text", "text": ""}]
    assert anthropic.stop_reason("length") == "max_tokens"
    assert anthropic.stop_reason("stop") == "end_turn"
    assert anthropic.stop_reason("stop_sequence") == "stop_sequence"
    events = [Delta("content", text="x"), Finished("stop_sequence", Usage(1, 1), "END")]
    folded = anthropic.fold_message(run_stream(events))
    assert folded["stop_reason"] == "stop_sequence" and folded["stop_sequence"] == "END"


def test_models_and_count_tokens_shapes() -> None:
    body = anthropic.models_response("m", "2026-01-01T00:00:00Z")
    assert body == {"data": [{"type": "model", "id": "m", "display_name": "m", "created_at": "2026-01-01T00:00:00Z"}],
                    "has_more": False, "first_id": "m", "last_id": "m"}
    assert anthropic.count_tokens_response(12) == {"input_tokens": 12}


def test_keepalive_opens_a_text_block_the_answer_continues() -> None:
    stream = anthropic.MessageStream(id="m", model="m")
    out = stream.start(1) + stream.keepalive() + stream.keepalive()
    out += stream.delta(Delta("content", text="Hi")) + stream.finish(Finished("stop", Usage(1, 1)))
    assert [n for n, _ in out].count("content_block_start") == 1
    assert anthropic.fold_message(out)["content"] == [{"type": "text", "text": "Hi"}]
    stream = anthropic.MessageStream(id="m", model="m")
    out = stream.start(1) + stream.keepalive()
    out += stream.delta(Delta("tool_call", index=0, id="call_1", name="f", arguments="{}"))
    out += stream.finish(Finished("tool_calls", Usage(1, 1)))
    assert [b["type"] for b in anthropic.fold_message(out)["content"]] == ["text", "tool_use"]


def test_the_requests_recorded_from_claude_code_parse() -> None:
    bare = json.loads((REQUESTS / "claude_code_bare_recorded.json").read_text())
    call = anthropic.parse_messages(bare["body"])
    assert call.stream and call.request.max_tokens == 64000 and len(call.request.tools) == 3
    assert call.request.messages[0]["role"] == "system" and "billing" not in call.request.messages[0]["content"]
    default = json.loads((REQUESTS / "claude_code_default_recorded.json").read_text())
    call = anthropic.parse_messages(default["body"])
    assert len(call.request.tools) == 24 and call.request.messages[-1]["role"] == "system"
    schemas = [t["function"]["parameters"] for t in call.request.tools]
    assert all(s.get("$schema") and s.get("additionalProperties") is False for s in schemas)
