"""The WSGI app on a scripted fake model, through werkzeug's test client (no sockets, no native code)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from werkzeug.test import Client

from llamactypes.engine import Engine
from llamactypes.server import ServerConfig, create_app
from llamactypes.server.sse import iter_sse

from .conftest import make_client
from .fakes import FakeModel

HI = [{"role": "user", "content": "Hi"}]
ANTHROPIC = {"anthropic-version": "2023-06-01"}


def sse(response: Any) -> list[tuple[str, Any]]:
    """(event, data) pairs of an SSE response; data decoded from JSON unless it is [DONE]."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    out = []
    for event in iter_sse(response.response):
        out.append((event.event, event.data if event.data == "[DONE]" else json.loads(event.data)))
    return out


# ------------------------------------------------------------------ small endpoints


def test_head_root_and_health(client: Client) -> None:
    head = client.head("/")
    assert head.status_code == 200 and head.get_data() == b""
    assert client.get("/health").json == {"status": "ok"}


def test_models_answer_in_the_shape_of_the_asking_api(client: Client) -> None:
    assert client.get("/v1/models").json["data"][0]["id"] == "fake-model"
    assert client.get("/models").json["object"] == "list"
    anth = client.get("/v1/models", headers=ANTHROPIC).json
    assert anth["data"][0]["type"] == "model" and anth["has_more"] is False and anth["first_id"] == "fake-model"
    assert client.get("/v1/models/claude-opus-4-8", headers=ANTHROPIC).json["id"] == "fake-model"


def test_tokenize_and_detokenize(client: Client) -> None:
    tokens = client.post("/tokenize", json={"content": "ab"}).json["tokens"]
    assert tokens == [97, 98]
    assert client.post("/tokenize", json={"content": "a", "with_pieces": True}).json == {
        "tokens": [{"id": 97, "piece": "a"}]}
    assert client.post("/detokenize", json={"tokens": tokens}).json == {"content": "ab"}
    assert client.post("/detokenize", json={"tokens": [10**9]}).status_code == 400


def test_embeddings(client: Client) -> None:
    body = client.post("/v1/embeddings", json={"input": ["a", "bb"], "model": "x"}).json
    assert [d["index"] for d in body["data"]] == [0, 1] and len(body["data"][0]["embedding"]) == 4
    assert body["usage"]["prompt_tokens"] == 3


# ------------------------------------------------------------------ errors


def test_unknown_route_is_404_in_each_api_shape(client: Client) -> None:
    r = client.post("/v1/nope", json={})
    assert r.status_code == 404 and r.json["error"]["type"] == "invalid_request_error"
    assert set(r.json["error"]) == {"message", "type", "param", "code"}
    r = client.post("/v1/nope", json={}, headers=ANTHROPIC)
    assert r.status_code == 404 and r.json == {"type": "error", "error": {"type": "not_found_error",
                                                                          "message": r.json["error"]["message"]}}


def test_wrong_method_is_405_with_allow(client: Client) -> None:
    r = client.get("/v1/chat/completions")
    assert r.status_code == 405 and "POST" in r.headers["Allow"] and "error" in r.json


def test_body_too_large_is_413(engine: Engine) -> None:
    client = make_client(engine, max_body_bytes=100)
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 200}]})
    assert r.status_code == 413 and r.json["error"]["code"] == "request_too_large"
    r = client.post("/v1/messages", json={"messages": [{"role": "user", "content": "x" * 200}]})
    assert r.status_code == 413 and r.json["error"]["type"] == "request_too_large"


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_malformed_bodies_are_400(client: Client, data: bytes) -> None:
    r = client.post("/v1/chat/completions", data=data, content_type="application/json")
    assert r.status_code == 400 and r.json["error"]["type"] == "invalid_request_error"
    r = client.post("/v1/messages", data=data, content_type="application/json")
    assert r.status_code == 400 and r.json["type"] == "error" and r.json["error"]["type"] == "invalid_request_error"


def test_field_errors_name_the_param(client: Client) -> None:
    r = client.post("/v1/chat/completions", json={"messages": HI, "n": 3})
    assert r.status_code == 400 and r.json["error"]["param"] == "n"
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "wizard", "content": "x"}]})
    assert r.status_code == 400 and r.json["error"]["param"] == "messages[0].role"
    r = client.post("/v1/messages", json={"messages": HI})
    assert r.status_code == 400 and "max_tokens" in r.json["error"]["message"]


def test_context_overflow_is_400_with_the_token_counts() -> None:
    with Engine(FakeModel(n_ctx=30)) as engine:
        r = make_client(engine).post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 99}]})
    assert r.status_code == 400
    error = r.json["error"]
    assert error["code"] == "context_length_exceeded" and error["n_ctx"] == 30 and error["n_prompt_tokens"] > 30


def test_api_key_bearer_and_x_api_key(engine: Engine) -> None:
    client = make_client(engine, api_key="sekrit")
    assert client.get("/v1/models").status_code == 401
    r = client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json["error"]["code"] == "invalid_api_key"
    r = client.post("/v1/messages", json={}, headers={"x-api-key": "nope"})
    assert r.status_code == 401 and r.json["error"]["type"] == "authentication_error"
    assert client.get("/v1/models", headers={"Authorization": "Bearer sekrit"}).status_code == 200
    assert client.get("/v1/models", headers={"x-api-key": "sekrit"}).status_code == 200
    assert client.head("/").status_code == 200 and client.get("/health").status_code == 200


def test_a_full_queue_is_503_with_retry_after_and_529_for_anthropic(engine: Engine, model: FakeModel) -> None:
    model.gate = threading.Event()
    client = make_client(engine)
    first = engine.chat(engine_request())
    while engine.queue_length:
        time.sleep(0.005)
    second = engine.chat(engine_request())
    r = client.post("/v1/chat/completions", json={"messages": HI})
    assert r.status_code == 503 and r.headers["Retry-After"] and r.json["error"]["type"] == "server_error"
    r = client.post("/v1/messages", json={"max_tokens": 5, "messages": HI})
    assert r.status_code == 529 and r.json["error"]["type"] == "overloaded_error" and r.headers["Retry-After"]
    model.gate.set()
    list(first.events())
    list(second.events())


def engine_request() -> Any:
    from llamactypes.engine import ChatRequest

    return ChatRequest(HI)


# ------------------------------------------------------------------ OpenAI generation


def test_chat_completion(client: Client) -> None:
    body = client.post("/v1/chat/completions", json={"model": "anything", "messages": HI, "max_tokens": 32000}).json
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "fake-model"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there!"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 3 and body["usage"]["prompt_tokens"] > 0


def test_chat_stream_sequence(client: Client) -> None:
    events = sse(client.post("/v1/chat/completions", json={"messages": HI, "stream": True,
                                                           "stream_options": {"include_usage": True}}))
    datas = [d for _, d in events]
    assert datas[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [d["choices"][0]["delta"]["content"] for d in datas[1:4]] == ["Hello", " there", "!"]
    assert datas[4]["choices"][0]["finish_reason"] == "stop"
    assert datas[5]["choices"] == [] and datas[5]["usage"]["completion_tokens"] == 3
    assert datas[6] == "[DONE]" and len(datas) == 7


def test_completions(client: Client, model: FakeModel) -> None:
    body = client.post("/v1/completions", json={"prompt": "Once", "max_tokens": 2}).json
    assert body["object"] == "text_completion" and body["choices"][0]["text"] == "Hello there"
    assert body["choices"][0]["finish_reason"] == "length" and model.prompts[-1] == "Once"
    events = sse(client.post("/v1/completions", json={"prompt": "Once", "stream": True}))
    texts = [d["choices"][0]["text"] for _, d in events if d != "[DONE]"]
    assert "".join(texts) == "Hello there!" and events[-1][1] == "[DONE]"


def test_an_error_during_a_stream_is_an_error_event(client: Client, model: FakeModel,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    def boom(prompt: str) -> list[str]:
        raise RuntimeError("disk on fire")

    model.script = boom
    events = sse(client.post("/v1/chat/completions", json={"messages": HI, "stream": True}))
    assert events[0][1]["choices"][0]["delta"]["role"] == "assistant"
    error = events[1][1]["error"]
    assert error["type"] == "server_error" and "disk on fire" not in error["message"]  # never echoed
    assert error["error_id"] in error["message"] and f"error id {error['error_id']}" in caplog.text  # but logged
    assert events[-1][1] == "[DONE]"
    events = sse(client.post("/v1/messages", json={"max_tokens": 5, "messages": HI, "stream": True}))
    assert events[0][0] == "message_start" and events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "api_error"


def test_streams_send_keep_alives_while_queued(engine: Engine, model: FakeModel) -> None:
    model.gate = threading.Event()
    client = make_client(engine, heartbeat=0.02)
    threading.Timer(0.2, model.gate.set).start()
    response = client.post("/v1/messages", json={"max_tokens": 5, "messages": HI, "stream": True}, buffered=False)
    names = [name for name, _ in sse(response)]
    assert names[0] == "message_start" and names[1] == "ping" and names[-1] == "message_stop"


def test_a_slow_non_stream_answer_commits_to_200_and_sends_whitespace(engine: Engine, model: FakeModel) -> None:
    model.gate = threading.Event()
    client = make_client(engine, heartbeat=0.02, commit_after=0.05)
    threading.Timer(0.3, model.gate.set).start()
    response = client.post("/v1/chat/completions", json={"messages": HI})
    data = response.get_data()
    assert response.status_code == 200 and data.startswith(b" ")
    assert json.loads(data)["choices"][0]["message"]["content"] == "Hello there!"


# ------------------------------------------------------------------ Anthropic


def test_messages_non_stream(client: Client, model: FakeModel) -> None:
    body = client.post("/v1/messages?beta=true", json={
        "model": "claude-opus-4-8", "max_tokens": 64000, "messages": HI,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=9;"},
                   {"type": "text", "text": "S"}],
        "thinking": {"type": "adaptive"}, "context_management": {}, "output_config": {"effort": "low"},
        "metadata": {"user_id": "u"}}, headers=ANTHROPIC).json
    assert body["type"] == "message" and body["role"] == "assistant" and body["id"].startswith("msg_")
    assert body["content"] == [{"type": "text", "text": "Hello there!"}] and body["stop_reason"] == "end_turn"
    assert body["model"] == "claude-opus-4-8" and body["usage"]["output_tokens"] == 3
    assert "billing" not in model.prompts[-1] and model.prompts[-1].startswith("<|im_start|>system\nS<|im_end|>")


def test_messages_stream_sequence_folds_to_the_non_stream_answer(client: Client) -> None:
    request = {"max_tokens": 50, "messages": HI}
    events = sse(client.post("/v1/messages", json={**request, "stream": True}))
    names = [n for n, _ in events]
    assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    from llamactypes.server.anthropic import fold_message

    folded = fold_message(events)
    whole = client.post("/v1/messages", json=request).json
    for key in ("content", "stop_reason", "stop_sequence", "role", "type"):
        assert folded[key] == whole[key]


def test_count_tokens(client: Client, engine: Engine) -> None:
    body = client.post("/v1/messages/count_tokens", json={"model": "m", "messages": HI, "system": "S"}).json
    assert body["input_tokens"] > 0 and set(body) == {"input_tokens"}


def test_images_are_a_clear_400(client: Client) -> None:
    r = client.post("/v1/messages", json={"max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]})
    assert r.status_code == 400 and "image input is not supported" in r.json["error"]["message"]


def test_a_long_wait_gets_empty_text_deltas_that_claude_code_counts_as_events(engine: Engine,
                                                                              model: FakeModel) -> None:
    model.gate = threading.Event()
    client = make_client(engine, heartbeat=0.02, event_keepalive=0.05)
    threading.Timer(0.3, model.gate.set).start()
    response = client.post("/v1/messages", json={"max_tokens": 5, "messages": HI, "stream": True}, buffered=False)
    events = sse(response)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and "content_block_delta" in names[:6]
    assert names.count("content_block_start") == 1 and names[-1] == "message_stop"
    from llamactypes.server.anthropic import fold_message

    assert fold_message(events)["content"] == [{"type": "text", "text": "Hello there!"}]


def test_a_response_closed_before_it_is_read_cancels_its_job(engine: Engine, model: FakeModel) -> None:
    model.gate = threading.Event()
    app = create_app(engine, ServerConfig())
    from werkzeug.test import EnvironBuilder

    for path, body in (("/v1/chat/completions", {"messages": HI, "stream": True}),
                       ("/v1/messages", {"max_tokens": 5, "messages": HI}),
                       ("/v1/messages", {"max_tokens": 5, "messages": HI, "stream": True})):
        environ = EnvironBuilder(path=path, method="POST", json=body).get_environ()
        iterable = app(environ, lambda *args: None)
        assert engine.busy or engine.queue_length == 1
        iterable.close()  # the server gave up before sending anything
        deadline = time.monotonic() + 2
        while (engine.busy or engine.queue_length) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not engine.busy and engine.queue_length == 0
    model.gate.set()


def test_thinking_reaches_both_apis(llama_source: Any) -> None:
    model = FakeModel(["<think>", "I ponder", "</think>", "Answer!"])
    model.chat_template = (llama_source / "models" / "templates" / "Qwen-Qwen3-0.6B.jinja").read_text()
    with Engine(model) as engine:
        client = make_client(engine)
        message = client.post("/v1/chat/completions", json={
            "messages": HI, "chat_template_kwargs": {"enable_thinking": True}}).json["choices"][0]["message"]
        assert message == {"role": "assistant", "content": "Answer!", "reasoning_content": "I ponder"}
        raw = client.post("/v1/chat/completions", json={"messages": HI, "reasoning_format": "none"}).json
        assert raw["choices"][0]["message"]["content"].startswith("<think>")
        events = sse(client.post("/v1/messages", json={"max_tokens": 50, "messages": HI, "stream": True,
                                                       "thinking": {"type": "enabled", "budget_tokens": 100}}))
        from llamactypes.server.anthropic import fold_message

        assert fold_message(events)["content"] == [{"type": "thinking", "thinking": "I ponder", "signature": ""},
                                                   {"type": "text", "text": "Answer!"}]
        assert ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "signature_delta", "signature": ""}}) in events
