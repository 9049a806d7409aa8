"""The real app on tiny random models, through werkzeug's test client: generation, tools, clamping,
stream == non-stream, prefix reuse across requests."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from werkzeug.test import Client

from llamactypes.engine import Engine
from llamactypes.server import create_app
from llamactypes.server.anthropic import fold_message
from llamactypes.server.sse import iter_sse

HI = [{"role": "user", "content": "Hello there"}]
GREEDY = {"temperature": 0, "max_tokens": 8}


def events(response: Any) -> list[tuple[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in iter_sse(response.response)]


def fold_openai(chunks: list[Any]) -> dict[str, Any]:
    content, calls, finish = "", [], None
    for chunk in chunks:
        if chunk == "[DONE]" or not chunk["choices"]:
            continue
        delta = chunk["choices"][0]["delta"]
        content += delta.get("content") or ""
        for tc in delta.get("tool_calls", []):
            if tc["index"] == len(calls):
                calls.append({"id": tc["id"], "type": "function",
                              "function": {"name": tc["function"]["name"], "arguments": ""}})
            calls[tc["index"]]["function"]["arguments"] += tc["function"].get("arguments", "")
        finish = chunk["choices"][0]["finish_reason"] or finish
    return {"content": content, "tool_calls": calls, "finish_reason": finish}


def test_chat_stream_folds_to_the_non_stream_answer(tiny_engine: Engine) -> None:
    client = Client(create_app(tiny_engine))
    for sampling in ({"temperature": 0}, {"temperature": 0.9, "seed": 1234}):
        body = {"messages": HI, "max_tokens": 12, **sampling}
        whole = client.post("/v1/chat/completions", json=body).json
        chunks = [d for _, d in events(client.post("/v1/chat/completions", json={**body, "stream": True}))]
        folded = fold_openai(chunks)
        message = whole["choices"][0]["message"]
        assert folded["content"] == (message["content"] or "")
        assert folded["finish_reason"] == whole["choices"][0]["finish_reason"]
        assert whole["usage"]["completion_tokens"] <= 12


def test_max_tokens_beyond_the_context_is_clamped(tiny_engine: Engine) -> None:
    client = Client(create_app(tiny_engine))
    banned = {str(t): False for t in tiny_engine.model.eog_tokens}  # keep it talking
    body = client.post("/v1/chat/completions", json={"messages": HI, "max_tokens": 64000, "temperature": 0,
                                                     "logit_bias": banned}).json
    usage = body["usage"]
    assert body["choices"][0]["finish_reason"] == "length"
    assert usage["prompt_tokens"] + usage["completion_tokens"] == tiny_engine.n_ctx


def test_a_second_turn_reuses_the_cached_prefix(tiny_engine: Engine) -> None:
    client = Client(create_app(tiny_engine))
    first = client.post("/v1/chat/completions", json={"messages": HI, **GREEDY}).json
    history = [*HI, first["choices"][0]["message"], {"role": "user", "content": "And then?"}]
    second = client.post("/v1/chat/completions", json={"messages": history, **GREEDY}).json
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] >= first["usage"]["prompt_tokens"] - 1


def test_anthropic_billing_header_does_not_break_prefix_reuse(tiny_engine: Engine) -> None:
    client = Client(create_app(tiny_engine))

    def ask(session: str, messages: list[Any]) -> dict[str, Any]:
        header = f"x-anthropic-billing-header: cc_version=2.1.197.{session}; cc_entrypoint=sdk-cli;"
        system = [{"type": "text", "text": header},
                  {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
        return client.post("/v1/messages", json={"max_tokens": 4, "temperature": 0, "system": system,
                                                 "messages": messages}).json

    first = ask("aaa", HI)
    text = first["content"][0].get("text", "")
    second = ask("bbb", [*HI, {"role": "assistant", "content": text or "ok"}, {"role": "user", "content": "More"}])
    assert second["usage"]["cache_read_input_tokens"] >= first["usage"]["input_tokens"] - 1


def test_messages_stream_folds_to_the_non_stream_answer(tiny_engine: Engine) -> None:
    client = Client(create_app(tiny_engine))
    body = {"max_tokens": 10, "temperature": 0.7, "top_k": 20, "seed": 99, "messages": HI}
    whole = client.post("/v1/messages", json=body).json
    streamed = events(client.post("/v1/messages", json={**body, "stream": True}))
    folded = fold_message(streamed)
    assert folded["content"] == whole["content"] and folded["stop_reason"] == whole["stop_reason"]
    assert streamed[0][0] == "message_start" and streamed[-1][0] == "message_stop"


def test_completions_tokenize_count_and_embeddings(tiny_engine: Engine) -> None:
    client = Client(create_app(tiny_engine))
    body = client.post("/v1/completions", json={"prompt": "the cat", **GREEDY}).json
    assert body["choices"][0]["finish_reason"] in ("length", "stop")
    tokens = client.post("/tokenize", json={"content": "the cat"}).json["tokens"]
    assert client.post("/detokenize", json={"tokens": tokens}).json["content"] == "the cat"
    count = client.post("/v1/messages/count_tokens", json={"messages": HI}).json["input_tokens"]
    rendered = "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    assert count == len(client.post("/tokenize", json={"content": rendered}).json["tokens"])
    vectors = client.post("/v1/embeddings", json={"input": ["a", "b c"]}).json["data"]
    assert len(vectors) == 2 and len(vectors[0]["embedding"]) == 64


WEATHER = {"type": "object", "properties": {"unit": {"type": "string", "enum": ["c", "f"]},
                                            "days": {"type": "integer", "minimum": 1, "maximum": 9}},
           "required": ["unit", "days"], "additionalProperties": False}


def test_required_tool_call_is_schema_valid_on_a_hermes_template(hermes_engine: Engine) -> None:
    client = Client(create_app(hermes_engine))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    body = {"messages": HI, "tools": tools, "tool_choice": "required", "parallel_tool_calls": False,
            "max_tokens": 120, "temperature": 0.5, "seed": 7}
    whole = client.post("/v1/chat/completions", json=body).json
    choice = whole["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and call["id"]
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER)
    folded = fold_openai([d for _, d in events(client.post("/v1/chat/completions", json={**body, "stream": True}))])
    assert [c["function"] for c in folded["tool_calls"]] == [c["function"] for c in choice["message"]["tool_calls"]]
    anth = client.post("/v1/messages", json={
        "max_tokens": 120, "temperature": 0.5, "seed": 7, "messages": HI,
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "tools": [{"name": "get_weather", "input_schema": WEATHER}]}).json
    assert anth["stop_reason"] == "tool_use"
    use = [b for b in anth["content"] if b["type"] == "tool_use"][0]
    assert use["id"].startswith("toolu_") and use["name"] == "get_weather"
    jsonschema.validate(use["input"], WEATHER)


def test_json_schema_response_format(hermes_engine: Engine) -> None:
    client = Client(create_app(hermes_engine))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    body = client.post("/v1/chat/completions", json={
        "messages": HI, "max_tokens": 60, "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}}).json
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), schema)


def test_an_invalid_grammar_is_a_400_before_anything_runs(tiny_engine: Engine) -> None:
    client = Client(create_app(tiny_engine))
    r = client.post("/v1/chat/completions", json={"messages": HI, "grammar": "root ::= (", "stream": True})
    assert r.status_code == 400 and r.json["error"]["param"] == "grammar"
    r = client.post("/v1/chat/completions", json={"messages": HI, "max_tokens": 4, "grammar": 'root ::= "yes" | "no"'})
    assert r.status_code == 200 and r.json["choices"][0]["message"]["content"] in ("yes", "no")
