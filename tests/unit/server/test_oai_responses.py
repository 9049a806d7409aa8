"""Responses API translation both ways, without HTTP: requests -> ChatRequest, events -> the event
sequence, each event validated against the official `openai` SDK's own types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from llamactypes.chat.types import Delta
from llamactypes.engine.types import Finished, Heartbeat, Started, Usage
from llamactypes.errors import InvalidRequestError
from llamactypes.server.oai_responses import flat_name, parse_responses
from llamactypes.server.oai_responses_stream import ResponseStream, fold_response, stored_conversation

APPLY_PATCH = (Path(__file__).parents[2] / "fixtures" / "grammars" / "codex_apply_patch.lark").read_text()
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def parse(**body: Any) -> Any:
    body.setdefault("input", "Hi")
    return parse_responses(body)


# ------------------------------------------------------------------ requests


def test_a_string_input_is_one_user_message_and_instructions_a_system_message() -> None:
    call = parse(instructions="Be brief.", input="Hi")
    assert call.request.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert call.conversation == [{"role": "user", "content": "Hi"}]  # instructions are not carried over
    assert call.store is True and call.stream is False


def test_input_items_of_every_kind_become_chat_messages() -> None:
    call = parse(instructions="I", input=[
        {"type": "message", "role": "developer", "content": "D"},
        {"role": "system", "content": [{"type": "input_text", "text": "S"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "think"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
        {"type": "function_call", "call_id": "c1", "name": "read", "namespace": "mcp__fs__", "arguments": "{}"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch\n"},
        {"type": "function_call_output", "call_id": "c1", "output": "file text"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "done"}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"role": "user", "content": "next"},
    ])
    messages = call.request.messages
    assert messages[0] == {"role": "system", "content": "I\n\nD\n\nS"}
    assert messages[1] == {"role": "user", "content": "ab"}
    assistant = messages[2]
    assert assistant["content"] == "Let me look." and assistant["reasoning_content"] == "think"
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["mcp__fs__read", "apply_patch"]
    assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"input": "*** Begin Patch\n"}
    assert messages[3:] == [{"role": "tool", "tool_call_id": "c1", "content": "file text"},
                            {"role": "tool", "tool_call_id": "c2", "content": "done"},
                            {"role": "user", "content": "next"}]


def test_tools_function_namespace_custom_and_hosted() -> None:
    call = parse(tools=[
        {"type": "function", "name": "shell",
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
        {"type": "namespace", "name": "mcp__fs__", "description": "files",
         "tools": [{"type": "function", "name": "read", "parameters": {"type": "object"}}]},
        {"type": "namespace", "name": "docs", "description": "docs", "tools": [{"type": "function", "name": "find"}]},
        {"type": "custom", "name": "apply_patch",
         "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH}},
        {"type": "custom", "name": "note"},
        {"type": "web_search"},
    ], tool_choice="required")
    names = [t["function"]["name"] for t in call.request.tools]
    assert names == ["shell", "mcp__fs__read", "docs__find", "apply_patch", "note"]
    assert call.dropped_tools == ["web_search"]
    assert call.tools["mcp__fs__read"].namespace == "mcp__fs__" and call.tools["mcp__fs__read"].name == "read"
    patch_input = call.request.tools[3]["function"]["parameters"]["properties"]["input"]
    assert patch_input["type"] == "string" and patch_input["pattern"].startswith("^")
    assert "pattern" not in call.request.tools[4]["function"]["parameters"]["properties"]["input"]
    assert call.request.tool_choice == "required"
    assert flat_name("docs", "find") == "docs__find" and flat_name(None, "x") == "x"


def test_an_untranslatable_grammar_leaves_the_input_free_and_says_so(caplog: Any) -> None:
    call = parse(tools=[{"type": "custom", "name": "expr", "format": {
        "type": "grammar", "syntax": "lark", "definition": "start: \"(\" start \")\" | \"x\""}}])
    assert "pattern" not in call.request.tools[0]["function"]["parameters"]["properties"]["input"]
    assert "recursive" in caplog.text


def test_options_map_to_the_engine_request() -> None:
    call = parse(max_output_tokens=7, temperature=0.5, top_p=0.9, parallel_tool_calls=False, store=False,
                 reasoning={"effort": "high"}, stream=True,
                 text={"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}}},
                 tools=[{"type": "function", "name": "f"}], tool_choice={"type": "function", "name": "f"})
    r = call.request
    assert (r.max_tokens, r.sampling.temperature, r.sampling.top_p, r.parallel_tool_calls) == (7, 0.5, 0.9, False)
    assert r.enable_thinking is True and call.store is False and call.stream is True
    assert r.response_format == {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}}
    assert r.tool_choice == {"type": "function", "function": {"name": "f"}}
    assert parse(reasoning={"effort": "minimal"}).request.enable_thinking is False
    assert parse().request.enable_thinking is None


@pytest.mark.parametrize("body, param", [
    ({}, "input"),
    ({"input": 3}, "input"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "teleport"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"input": "x", "tools": {"a": 1}}, "tools"),
    ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}},
     "tool_choice"),
    ({"input": "x", "tools": [{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "ebnf",
                                                                         "definition": "x"}}]}, "tools[0].format"),
    ({"input": "x", "tools": [{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "lark",
                                                                         "definition": "start: ("}}]},
     "tools[0].format"),
    ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"input": "x", "reasoning": {"effort": "max"}}, "reasoning.effort"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
])
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_responses(body)
    assert info.value.param == param, str(info.value)


# ------------------------------------------------------------------ events


def run(call: Any, events: list[Any]) -> tuple[list[tuple[str, dict[str, Any]]], ResponseStream]:
    stream = ResponseStream(call, id="resp_1", model="m", created_at=1)
    out = stream.start()
    for event in events:
        out += stream.feed(event)
    return out, stream


def check_events(out: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Every event parses as the SDK's own type, names match, sequence numbers count up from 0."""
    for i, (name, data) in enumerate(out):
        assert name == data["type"] and data["sequence_number"] == i
        EVENT.validate_python(data)
    return [name for name, _ in out]


def test_text_and_reasoning_event_sequence() -> None:
    call = parse()
    out, stream = run(call, [Heartbeat(0), Started(5), Delta("reasoning", "hm"), Delta("reasoning", "m"),
                             Delta("content", "Hel"), Delta("content", "lo"), Heartbeat(0),
                             Finished("stop", Usage(5, 4, 2))])
    names = check_events(out)
    assert names == [
        "response.created", "response.in_progress", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.reasoning_text.delta", "response.reasoning_text.delta", "response.reasoning_text.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.in_progress",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    final = Response.model_validate(out[-1][1]["response"])
    assert final.status == "completed" and final.output_text == "Hello"
    assert final.output[0].content[0].text == "hmm"
    assert final.usage.input_tokens == 5 and final.usage.input_tokens_details.cached_tokens == 2
    assert final.usage.output_tokens == 4 and final.usage.total_tokens == 9


def test_function_and_custom_tool_call_events() -> None:
    call = parse(tools=[{"type": "namespace", "name": "mcp__fs__", "description": "",
                         "tools": [{"type": "function", "name": "read"}]},
                        {"type": "custom", "name": "apply_patch"}])
    args = json.dumps({"input": 'say "hi"\n\u00e9'})
    out, _ = run(call, [Delta("tool_call", index=0, id="call_a", name="mcp__fs__read", arguments='{"p":'),
                        Delta("tool_call", index=0, arguments='"x"}'),
                        Delta("tool_call", index=1, id="call_b", name="apply_patch", arguments=args[:14]),
                        Delta("tool_call", index=1, arguments=args[14:20]),
                        Delta("tool_call", index=1, arguments=args[20:]),
                        Finished("tool_calls", Usage(3, 9))])
    names = check_events(out)
    assert names == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.output_item.added"] + \
        ["response.custom_tool_call_input.delta"] * names.count("response.custom_tool_call_input.delta") + \
        ["response.custom_tool_call_input.done", "response.output_item.done", "response.completed"]
    deltas = "".join(d["delta"] for n, d in out if n == "response.custom_tool_call_input.delta")
    assert deltas == 'say "hi"\n\u00e9'
    final = Response.model_validate(out[-1][1]["response"])
    fc, ctc = final.output
    assert (fc.type, fc.name, fc.namespace, fc.call_id, fc.arguments) == (
        "function_call", "read", "mcp__fs__", "call_a", '{"p":"x"}')
    assert (ctc.type, ctc.name, ctc.input, ctc.call_id) == ("custom_tool_call", "apply_patch", 'say "hi"\n\u00e9',
                                                            "call_b")


def test_a_custom_call_cut_by_max_output_tokens_keeps_the_decoded_input() -> None:
    call = parse(tools=[{"type": "custom", "name": "c"}], max_output_tokens=3)
    out, _ = run(call, [Delta("tool_call", index=0, id="call_c", name="c", arguments='{"input": "ab\\n'),
                        Delta("tool_call", index=0, arguments='cd'), Finished("length", Usage(1, 3))])
    check_events(out)
    item = out[-1][1]["response"]["output"][0]
    assert (item["type"], item["input"], item["status"]) == ("custom_tool_call", "ab\ncd", "incomplete")


def test_max_output_tokens_makes_the_response_incomplete() -> None:
    out, _ = run(parse(max_output_tokens=2), [Delta("content", "ab"), Finished("length", Usage(1, 2))])
    check_events(out)
    assert out[-1][0] == "response.incomplete"
    final = out[-1][1]["response"]
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"


def test_failure_is_response_failed_with_the_code_codex_reads() -> None:
    stream = ResponseStream(parse(), id="resp_1", model="m")
    out = stream.start() + stream.delta(Delta("content", "x")) + stream.fail("context_length_exceeded", "too long")
    names = check_events(out[:-1]) + [out[-1][0]]
    assert names[-2:] == ["response.output_item.done", "response.failed"]
    assert out[-1][1]["response"]["error"] == {"code": "context_length_exceeded", "message": "too long"}
    # the SDK's list of error codes lacks this one (it parses without validating, so clients read it)
    with pytest.raises(pydantic.ValidationError):
        check_events(out)


def test_the_non_stream_fold_equals_the_last_streamed_response() -> None:
    events = [Delta("content", "Hi"), Delta("tool_call", index=0, id="call_z", name="f", arguments="{}"),
              Finished("tool_calls", Usage(2, 3))]
    call = parse(tools=[{"type": "function", "name": "f"}])
    out, _ = run(call, events)
    folded = fold_response(ResponseStream(call, id="resp_1", model="m", created_at=1), events)
    streamed = out[-1][1]["response"]
    Response.model_validate(folded)
    for response in (folded, streamed):
        response.pop("completed_at")
        for item in response["output"]:
            item.pop("id")
    assert folded == streamed


def test_the_stored_conversation_continues_with_the_output() -> None:
    call = parse(instructions="I", input="Hi", tools=[{"type": "custom", "name": "c"}])
    out, _ = run(call, [Delta("content", "Hello"),
                        Delta("tool_call", index=0, id="call_q", name="c", arguments='{"input": "x"}'),
                        Finished("tool_calls", Usage(1, 1))])
    conversation = stored_conversation(call, out[-1][1]["response"])
    assert conversation[0] == {"role": "user", "content": "Hi"}
    assert conversation[1]["content"] == "Hello"
    assert conversation[1]["tool_calls"][0]["function"] == {"name": "c", "arguments": '{"input": "x"}'}
    again = parse_responses({"input": [{"type": "custom_tool_call_output", "call_id": "call_q", "output": "ok"}]},
                            conversation)
    assert again.request.messages[-1] == {"role": "tool", "tool_call_id": "call_q", "content": "ok"}
