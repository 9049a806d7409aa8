"""The official `anthropic` SDK against the server on the demo model, and Claude Code's requests replayed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from tests.fixtures.live_server import LiveServer
from llamactypes.server.sse import iter_sse

REQUESTS = Path(__file__).parents[1] / "fixtures" / "requests"
USER = [{"role": "user", "content": "Name three colors."}]
# this SDK version no longer takes sampling arguments; the API (and this server) still does
GREEDY = {"temperature": 0}
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                                            "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"], "additionalProperties": False}


def test_models_list(anthropic_client: Any) -> None:
    models = list(anthropic_client.models.list())
    assert [m.id for m in models] == ["smollm2"] and models[0].type == "model"


def test_messages_create(anthropic_client: Any) -> None:
    message = anthropic_client.messages.create(model="claude-opus-4-8", max_tokens=24, messages=USER,
                                               system="You are terse.", extra_body=GREEDY)
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens") and message.usage.output_tokens > 0


def test_stream_events_and_final_message_equal_the_non_stream_answer(anthropic_client: Any) -> None:
    kwargs = dict(model="x", max_tokens=24, messages=USER, extra_body={"temperature": 0.8, "seed": 11})
    whole = anthropic_client.messages.create(**kwargs)
    with anthropic_client.messages.stream(**kwargs) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in whole.content]
    assert (final.stop_reason, final.stop_sequence) == (whole.stop_reason, whole.stop_sequence)
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_tool_choice_any_gives_a_schema_valid_tool_use(anthropic_client: Any) -> None:
    message = anthropic_client.messages.create(
        model="x", max_tokens=80, extra_body={"temperature": 0.5},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[{"name": "get_weather", "description": "Weather forecast", "input_schema": WEATHER}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert message.stop_reason == "tool_use"
    use = [b for b in message.content if b.type == "tool_use"][0]
    assert use.name == "get_weather" and use.id.startswith("toolu_")
    jsonschema.validate(use.input, WEATHER)
    # the call goes back as a tool_use / tool_result round
    follow = anthropic_client.messages.create(
        model="x", max_tokens=16, extra_body=GREEDY, tools=[{"name": "get_weather", "input_schema": WEATHER}],
        messages=[{"role": "user", "content": "Weather in Oslo?"},
                  {"role": "assistant", "content": [b.model_dump() for b in message.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Snow"}]}])
    assert follow.type == "message"


def test_structured_output_via_output_config(anthropic_client: Any) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 40}}, "required": ["title"],
              "additionalProperties": False}
    message = anthropic_client.messages.create(model="x", max_tokens=40, messages=USER, extra_body=GREEDY,
                                               output_config={"format": {"type": "json_schema", "schema": schema}})
    jsonschema.validate(json.loads(message.content[0].text), schema)


def test_count_tokens(anthropic_client: Any) -> None:
    short = anthropic_client.messages.count_tokens(model="x", messages=USER, system="Be terse.")
    longer = anthropic_client.messages.count_tokens(model="x", messages=USER, system="Be terse. " * 10)
    assert 0 < short.input_tokens < longer.input_tokens


def post(server: LiveServer, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.url + path, data=data, timeout=120,
                         headers={"content-type": "application/json", "anthropic-version": "2023-06-01",
                                  **(headers or {})})


@pytest.mark.parametrize("body,needle", [
    ({"model": "x", "messages": USER}, "max_tokens"),
    ({"model": "x", "max_tokens": 5, "messages": [{"role": "bot", "content": "hi"}]}, "role"),
    ("{\"model\": ", "not valid JSON"),
    ({"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]},
     "image input is not supported"),
])
def test_malformed_requests_get_anthropic_errors(server: LiveServer, body: Any, needle: str) -> None:
    response = post(server, "/v1/messages", body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]


def replay(server: LiveServer, name: str, **changes: Any) -> list[tuple[str, Any]]:
    recorded = json.loads((REQUESTS / name).read_text())
    body = {**recorded["body"], **changes}
    response = post(server, recorded["path"], body, recorded["headers"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [(e.event, json.loads(e.data)) for e in iter_sse(response.iter_content(chunk_size=None))]


def check_sequence(events: list[tuple[str, Any]]) -> None:
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    open_index = None
    for name, data in events:
        if name == "content_block_start":
            assert open_index is None
            open_index = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None


def test_claude_code_requests_replayed(server: LiveServer) -> None:
    """Claude Code's recorded `--bare` request, and the multi-turn shape (tool_use/tool_result, thinking
    blocks, a system message inside the conversation) with two of its tools to keep the prompt short on a
    CPU; max_tokens kept small (the default session's 24 rich schemas go through the grammar in the next test)."""
    check_sequence(replay(server, "claude_code_bare_recorded.json", max_tokens=32))
    constructed = json.loads((REQUESTS / "claude_code_messages.json").read_text())["body"]
    check_sequence(replay(server, "claude_code_messages.json", max_tokens=32, tools=constructed["tools"][:2]))


def test_claude_code_second_turn_reuses_the_cache_despite_a_new_billing_header(server: LiveServer) -> None:
    recorded = json.loads((REQUESTS / "claude_code_bare_recorded.json").read_text())["body"]

    def turn(session: str, messages: list[Any]) -> dict[str, Any]:
        system = [dict(recorded["system"][0], text=f"x-anthropic-billing-header: cc_version=2.1.197.{session}; "
                                                   "cc_entrypoint=sdk-cli;"), *recorded["system"][1:]]
        events = replay(server, "claude_code_bare_recorded.json", max_tokens=8, temperature=0, system=system,
                        messages=messages)
        return [d for n, d in events if n == "message_delta"][0]["usage"]

    first = turn("aaa", recorded["messages"])
    second = turn("bbb", [*recorded["messages"], {"role": "assistant", "content": "Hi."},
                          {"role": "user", "content": "Again, shorter."}])
    assert second["cache_read_input_tokens"] >= first["input_tokens"] + first["cache_read_input_tokens"] - 2


def test_claude_codes_default_session_is_counted_and_refused_clearly_on_a_small_context(server: LiveServer) -> None:
    recorded = json.loads((REQUESTS / "claude_code_default_recorded.json").read_text())
    count = post(server, "/v1/messages/count_tokens", {k: v for k, v in recorded["body"].items()
                                                       if k in ("model", "messages", "system", "tools")}).json()
    assert count["input_tokens"] > 4096
    response = post(server, recorded["path"], recorded["body"], recorded["headers"])
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert str(count["input_tokens"]) in response.json()["error"]["message"]
