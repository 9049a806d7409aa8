"""OpenAI translation: request validation, response and chunk shapes, stream folding."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from llamactypes.chat.types import Delta, ToolCall
from llamactypes.engine import ChatResult, Finished, Usage, fold_events
from llamactypes.errors import InvalidRequestError
from llamactypes.server import openai

MESSAGES = [{"role": "user", "content": "Hi"}]


def test_parse_chat_reads_every_documented_field() -> None:
    body = {
        "model": "whatever", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True},
        "max_completion_tokens": 32000, "temperature": 0.2, "top_p": 0.9, "top_k": 20, "min_p": 0.1, "seed": 7,
        "stop": "END", "presence_penalty": 0.5, "frequency_penalty": -0.5, "logit_bias": {"42": -100, "7": False},
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required",
        "parallel_tool_calls": False, "response_format": {"type": "json_object"},
        "chat_template_kwargs": {"enable_thinking": True, "custom": 1}, "reasoning_format": "none",
        "unknown_field": {"is": "ignored"}, "n": 1,
    }
    call = openai.parse_chat(body)
    r = call.request
    assert call.stream and call.include_usage
    assert r.max_tokens == 32000 and r.stop == ("END",) and r.tool_choice == "required"
    assert not r.parallel_tool_calls and r.response_format == {"type": "json_object"}
    assert r.enable_thinking is True and r.template_kwargs == {"custom": 1} and r.reasoning is False
    s = r.sampling
    assert (s.temperature, s.top_p, s.top_k, s.min_p, s.seed) == (0.2, 0.9, 20, 0.1, 7)
    assert s.logit_bias == {42: -100.0, 7: float("-inf")}


def test_parse_chat_defaults() -> None:
    call = openai.parse_chat({"messages": MESSAGES})
    assert not call.stream and call.request.max_tokens is None and call.request.sampling.kwargs() == {}
    assert call.request.tool_choice == "auto" and call.request.response_format is None


@pytest.mark.parametrize("body,param", [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": MESSAGES, "n": 2}, "n"),
    ({"messages": MESSAGES, "temperature": "hot"}, "temperature"),
    ({"messages": MESSAGES, "top_p": 2}, "top_p"),
    ({"messages": MESSAGES, "max_tokens": 1.5}, "max_tokens"),
    ({"messages": MESSAGES, "stream": "yes"}, "stream"),
    ({"messages": MESSAGES, "stop": [1, 2]}, "stop"),
    ({"messages": MESSAGES, "logit_bias": {"abc": 1}}, "logit_bias"),
    ({"messages": MESSAGES, "response_format": {"type": "xml"}}, "response_format.type"),
    ({"messages": MESSAGES, "response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": 3},
     "tool_choice"),
    ({"messages": MESSAGES, "chat_template_kwargs": {"enable_thinking": "no"}}, "chat_template_kwargs.enable_thinking"),
])
def test_parse_chat_names_the_bad_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        openai.parse_chat(body)
    assert info.value.param == param


def test_n_predict_minus_one_means_no_limit_but_negative_max_tokens_is_refused() -> None:
    assert openai.parse_chat({"messages": MESSAGES, "n_predict": -1}).request.max_tokens is None
    assert openai.parse_chat({"messages": MESSAGES, "max_tokens": 0}).request.max_tokens == 0
    for key, value in (("max_tokens", -1), ("max_tokens", -5), ("max_completion_tokens", -1), ("n_predict", -2)):
        with pytest.raises(InvalidRequestError) as info:
            openai.parse_chat({"messages": MESSAGES, key: value})
        assert info.value.param == key


def test_parse_completion_and_embeddings() -> None:
    assert openai.parse_completion({"prompt": ["Once"]}).request.prompt == "Once"
    assert openai.parse_completion({"prompt": [1, 2, 3]}).request.prompt == [1, 2, 3]
    schema = openai.parse_completion({"prompt": "x", "response_format": {"type": "json_schema", "json_schema": {
        "schema": {"type": "integer"}}}}).request.json_schema
    assert schema == {"type": "integer"}
    with pytest.raises(InvalidRequestError):
        openai.parse_completion({"prompt": ""})
    assert openai.parse_embeddings({"input": "a"}) == (["a"], "float")
    assert openai.parse_embeddings({"input": ["a", "b"], "encoding_format": "base64"}) == (["a", "b"], "base64")
    assert openai.parse_embeddings({"input": [1, 2]}) == ([[1, 2]], "float")
    for bad in ({"input": 3}, {"input": []}, {"input": "a", "encoding_format": "hex"}):
        with pytest.raises(InvalidRequestError):
            openai.parse_embeddings(bad)


def test_chat_response_shape() -> None:
    result = ChatResult(content="", reasoning="hmm", tool_calls=[ToolCall("f", '{"a":1}', "call_1")],
                        finish_reason="tool_calls", usage=Usage(10, 5, 4))
    body = openai.chat_response(result, model="m", id="chatcmpl-1", created=5)
    assert body["object"] == "chat.completion" and body["model"] == "m" and body["id"] == "chatcmpl-1"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": None, "reasoning_content": "hmm",
                                 "tool_calls": [{"id": "call_1", "type": "function",
                                                 "function": {"name": "f", "arguments": '{"a":1}'}}]}
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                             "prompt_tokens_details": {"cached_tokens": 4}}
    plain = openai.chat_response(ChatResult(finish_reason="stop_sequence"), model="m", id="x", created=1)
    assert plain["choices"][0]["message"]["content"] == "" and plain["choices"][0]["finish_reason"] == "stop"


EVENTS = [Delta("reasoning", text="think"), Delta("content", text="Hel"), Delta("content", text="lo"),
          Delta("tool_call", index=0, id="call_a", name="f", arguments='{"x":'),
          Delta("tool_call", index=0, arguments="1}"),
          Delta("tool_call", index=1, id="call_b", name="g", arguments="{}"),
          Finished("tool_calls", Usage(3, 6, 1))]


def fold_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client does with the stream (llama.cpp's test utils fold the same way, with the
    same invariants: non-empty content pieces, id/type/name only in a call's first delta)."""
    content, reasoning, calls, finish, usage = "", "", [], None, None
    for chunk in chunks:
        if not chunk["choices"]:
            usage = chunk["usage"]
            continue
        choice = chunk["choices"][0]
        delta = choice["delta"]
        if delta.get("content") is not None:
            assert delta["content"]
            content += delta["content"]
        if delta.get("reasoning_content") is not None:
            reasoning += delta["reasoning_content"]
        for tc in delta.get("tool_calls", []):
            if tc["index"] >= len(calls):
                assert tc["id"] and tc["type"] == "function" and tc["function"]["name"]
                calls.append({"id": tc["id"], "type": "function", "function": {"name": tc["function"]["name"],
                                                                               "arguments": ""}})
            else:
                assert "id" not in tc and "name" not in tc["function"]
            calls[tc["index"]]["function"]["arguments"] += tc["function"].get("arguments", "")
        finish = choice["finish_reason"] or finish
    return {"content": content, "reasoning": reasoning, "tool_calls": calls, "finish_reason": finish,
            "usage": usage}


def test_chunks_fold_to_the_non_stream_response() -> None:
    chunker = openai.ChatChunks(id="c", model="m", created=1, include_usage=True)
    chunks = [chunker.first()]
    for event in EVENTS:
        if isinstance(event, Delta):
            chunk = chunker.delta(event)
            if chunk:
                chunks.append(chunk)
        else:
            chunks += chunker.finish(event)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "c" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    folded = fold_chunks(chunks)
    whole = openai.chat_response(fold_events(EVENTS), model="m", id="c", created=1)
    message = whole["choices"][0]["message"]
    assert folded["content"] == message["content"]
    assert folded["reasoning"] == message["reasoning_content"]
    assert folded["tool_calls"] == message["tool_calls"]
    assert folded["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert folded["usage"] == whole["usage"]


def test_no_usage_chunk_unless_asked() -> None:
    chunker = openai.ChatChunks(id="c", model="m", created=1)
    assert len(chunker.finish(Finished("length", Usage(1, 1)))) == 1
    assert chunker.delta(Delta("content", text="")) is None


def test_embeddings_response_float_and_base64() -> None:
    body = openai.embeddings_response([[0.5, -1.0]], 3, model="m")
    assert body["data"][0] == {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3} and body["object"] == "list"
    packed = openai.embeddings_response([[0.5, -1.0]], 3, model="m", encoding_format="base64")["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(packed)) == (0.5, -1.0)


def test_models_response() -> None:
    body = openai.models_response("m", 123, {"n_ctx": 8})
    card = {"id": "m", "object": "model", "created": 123, "owned_by": "llamactypes", "meta": {"n_ctx": 8}}
    assert body == {"object": "list", "data": [card]}
