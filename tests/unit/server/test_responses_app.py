"""/v1/responses through the WSGI app on a scripted fake model (no sockets, no native code),
and the overflow errors each API sends so that agents compact instead of failing."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from werkzeug.test import Client

from llamactypes.engine import Engine
from llamactypes.server.sse import iter_sse

from .conftest import make_client
from .fakes import FakeModel

APPLY_PATCH = (Path(__file__).parents[2] / "fixtures" / "grammars" / "codex_apply_patch.lark").read_text()
PATCH = "*** Begin Patch\n*** Delete File: a.txt\n*** End Patch\n"


def events_of(response: Any) -> list[tuple[str, dict[str, Any]]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return [(e.event, json.loads(e.data)) for e in iter_sse(response.response)]


def test_non_stream_and_stream_agree(client: Client) -> None:
    body = {"model": "anything", "instructions": "Be kind.", "input": "Hi"}
    whole = client.post("/v1/responses", json=body).json
    assert whole["object"] == "response" and whole["status"] == "completed"
    assert whole["output"][0]["content"][0]["text"] == "Hello there!"
    assert whole["usage"]["output_tokens"] == 3 and whole["instructions"] == "Be kind."
    events = events_of(client.post("/v1/responses", json={**body, "stream": True}))
    assert [n for n, _ in events][:2] == ["response.created", "response.in_progress"]
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    text = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    final = events[-1][1]["response"]
    assert events[-1][0] == "response.completed" and text == "Hello there!"
    assert final["output"][0]["content"] == whole["output"][0]["content"]


def test_store_previous_response_id_get_and_delete(client: Client, model: FakeModel) -> None:
    first = client.post("/v1/responses", json={"input": "My name is Ada."}).json
    second = client.post("/v1/responses",
                         json={"input": "What is my name?", "previous_response_id": first["id"]}).json
    assert "My name is Ada." in model.prompts[-1] and "Hello there!" in model.prompts[-1]
    assert second["previous_response_id"] == first["id"]
    assert client.get(f"/v1/responses/{first['id']}").json == first
    deleted = client.delete(f"/v1/responses/{first['id']}").json
    assert deleted == {"id": first["id"], "object": "response", "deleted": True}
    missing = client.get(f"/v1/responses/{first['id']}")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    gone = client.post("/v1/responses", json={"input": "x", "previous_response_id": first["id"]})
    assert gone.status_code == 400 and gone.json["error"]["code"] == "previous_response_not_found"
    unstored = client.post("/v1/responses", json={"input": "x", "store": False}).json
    assert unstored["store"] is False and client.get(f"/v1/responses/{unstored['id']}").status_code == 404


def test_input_tokens_counts_the_rendered_prompt(client: Client, engine: Engine) -> None:
    short = client.post("/v1/responses/input_tokens", json={"input": "Hi"}).json
    longer = client.post("/v1/responses/input_tokens", json={"input": "Hi", "instructions": "Be kind."}).json
    assert short["object"] == "response.input_tokens"
    assert longer["input_tokens"] > short["input_tokens"] > 2


def test_a_custom_tool_call_is_grammar_constrained_and_comes_back_as_custom_tool_call(
        client: Client, model: FakeModel) -> None:
    model.script = [json.dumps({"tool_call": {"name": "apply_patch", "arguments": {"input": PATCH}}})]
    body = {"input": "delete a.txt", "tool_choice": "required", "stream": True, "tools": [
        {"type": "custom", "name": "apply_patch", "description": "Edit files.",
         "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH}},
        {"type": "web_search"}]}
    events = events_of(client.post("/v1/responses", json=body))
    assert "Begin Patch" in model.calls[-1]["grammar"]  # the patch grammar reached the sampler
    names = [n for n, _ in events]
    assert "response.custom_tool_call_input.done" in names
    item = events[-1][1]["response"]["output"][0]
    assert (item["type"], item["name"], item["input"]) == ("custom_tool_call", "apply_patch", PATCH)


def test_a_namespaced_call_round_trip(client: Client, model: FakeModel) -> None:
    model.script = [json.dumps({"tool_call": {"name": "mcp__fs__read", "arguments": {"path": "a"}}})]
    read = {"type": "function", "name": "read",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
    tools = [{"type": "namespace", "name": "mcp__fs__", "description": "files", "tools": [read]}]
    first = client.post("/v1/responses", json={"input": "read a", "tools": tools}).json
    call = first["output"][0]
    assert (call["type"], call["name"], call["namespace"], json.loads(call["arguments"])) == (
        "function_call", "read", "mcp__fs__", {"path": "a"})
    model.script = ["It says hi."]
    second = client.post("/v1/responses", json={"tools": tools, "store": False, "input": [
        {"role": "user", "content": "read a"}, call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "hi"}]}).json
    assert second["output"][0]["content"][0]["text"] == "It says hi."
    assert "mcp__fs__read" in model.prompts[-1] and "hi" in model.prompts[-1]


def test_heartbeats_are_real_in_progress_events(engine: Engine, model: FakeModel) -> None:
    model.gate = threading.Event()
    client = make_client(engine, heartbeat=0.02)
    threading.Timer(0.2, model.gate.set).start()
    response = client.post("/v1/responses", json={"input": "Hi", "stream": True}, buffered=False)
    names = [n for n, _ in events_of(response)]
    assert names.count("response.in_progress") >= 3 and names[-1] == "response.completed"


def test_max_output_tokens_is_an_incomplete_response(client: Client) -> None:
    whole = client.post("/v1/responses", json={"input": "Hi", "max_output_tokens": 1}).json
    assert whole["status"] == "incomplete" and whole["incomplete_details"] == {"reason": "max_output_tokens"}


def test_bad_requests_are_openai_error_bodies(client: Client) -> None:
    r = client.post("/v1/responses", json={"input": [{"role": "robot", "content": "x"}]})
    assert r.status_code == 400 and r.json["error"]["param"] == "input[0].role"
    assert client.post("/v1/responses", data=b"[1]", content_type="application/json").status_code == 400


# ------------------------------------------------------------------ overflow errors agents understand


@pytest.fixture
def small() -> Iterator[Client]:
    with Engine(FakeModel(n_ctx=30)) as engine:
        yield make_client(engine)


LONG = "x" * 99


def test_responses_overflow_non_stream_is_the_api_error_body(small: Client) -> None:
    r = small.post("/v1/responses", json={"input": LONG})
    assert r.status_code == 400
    assert r.json["error"]["code"] == "context_length_exceeded" and r.json["error"]["n_ctx"] == 30


def test_responses_overflow_stream_is_response_failed(small: Client) -> None:
    events = events_of(small.post("/v1/responses", json={"input": LONG, "stream": True}))
    assert [n for n, _ in events] == ["response.created", "response.in_progress", "response.failed"]
    error = events[-1][1]["response"]["error"]
    assert error["code"] == "context_length_exceeded" and "30" in error["message"]


def test_anthropic_overflow_uses_anthropics_own_words(small: Client) -> None:
    r = small.post("/v1/messages", json={"max_tokens": 5, "messages": [{"role": "user", "content": LONG}]})
    assert r.status_code == 400
    error = r.json["error"]
    assert error["type"] == "invalid_request_error"
    n = int(error["message"].split(": ")[1].split(" ")[0])
    assert error["message"] == f"prompt is too long: {n} tokens > 30 maximum" and n > 30


def test_chat_overflow_keeps_context_length_exceeded(small: Client) -> None:
    r = small.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": LONG}]})
    assert r.status_code == 400 and r.json["error"]["code"] == "context_length_exceeded"


def test_a_request_that_fits_never_fails_and_max_tokens_clamps(small: Client) -> None:
    """A prompt that leaves room is answered, however large max_tokens is."""
    r = small.post("/v1/messages", json={"max_tokens": 100000, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200, r.json
    r = small.post("/v1/responses", json={"input": "x", "max_output_tokens": 100000})
    assert r.status_code == 200 and r.json["status"] == "completed"
