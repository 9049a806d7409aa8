"""Issue 10, input side: each hostile request the issue measured, answered with a 4xx in the API's shape
before anything is queued (the WSGI app on the scripted fake model, no sockets)."""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any, Iterator

import pytest
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from llamactypes.engine import Engine
from llamactypes.limits import DEFAULT_LIMITS
from llamactypes.server import ServerConfig, create_app
from llamactypes.server.body import decode_json_body
from llamactypes.errors import InvalidRequestError

from .fakes import FakeModel

HI = [{"role": "user", "content": "Hi"}]
ANTHROPIC = {"anthropic-version": "2023-06-01"}


@pytest.fixture
def engine(model: FakeModel) -> Iterator[Engine]:
    with Engine(model, max_waiting=4) as engine:
        yield engine


def post_raw(client: Client, path: str, text: str, headers: dict[str, str] | None = None) -> Any:
    return client.post(path, data=text.encode("utf-8", errors="surrogatepass"), content_type="application/json",
                       headers=headers or {})


def openai_error(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert isinstance(error["message"], str) and error["type"] == "invalid_request_error"
    return error


def anthropic_error(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return body["error"]


# ------------------------------------------------------------------ numbers

@pytest.mark.parametrize("field", ["temperature", "top_p", "min_p", "repeat_penalty", "presence_penalty",
                                   "frequency_penalty", "top_k", "repeat_last_n", "seed", "max_tokens"])
@pytest.mark.parametrize("raw", ["1" + "0" * 400, "-1" + "0" * 400, "1e308", "1e400", "NaN", "Infinity"])
def test_numbers_too_large_or_not_finite_are_400_naming_the_field(client: Client, model: FakeModel, field: str,
                                                                  raw: str) -> None:
    if raw == "1e308" and field in ("temperature", "repeat_penalty"):
        return  # a finite float where any positive value is meaningful (1e308 flattens the distribution)
    text = json.dumps({"messages": HI, field: 0.5}).replace("0.5", raw)
    error = openai_error(post_raw(client, "/v1/chat/completions", text))
    if raw not in ("1e400", "NaN", "Infinity"):  # those fail as JSON already, for the whole body
        assert error["param"] == field
    assert model.prompts == []


@pytest.mark.parametrize("bias", ["Infinity", "-Infinity", "1e39", "1" + "0" * 400, "\"x\""])
def test_logit_bias_values_must_be_finite_numbers(client: Client, bias: str) -> None:
    text = '{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"5": %s}}' % bias
    openai_error(post_raw(client, "/v1/chat/completions", text))


def test_logit_bias_false_still_bans_and_keys_must_be_token_ids(client: Client, model: FakeModel) -> None:
    assert client.post("/v1/chat/completions", json={"messages": HI, "logit_bias": {"5": False}}).status_code == 200
    assert model.calls[-1]["logit_bias"] == {5: float("-inf")}
    for key in ("1" * 5000, "x", "1e3"):
        assert openai_error(client.post("/v1/chat/completions", json={"messages": HI, "logit_bias": {key: 1}}))[
            "param"] == "logit_bias"


def test_repeat_last_n_1e308_and_a_zero_repeat_penalty_are_refused_before_the_queue(
        client: Client, model: FakeModel) -> None:
    assert openai_error(client.post("/v1/completions", json={"prompt": "x", "repeat_last_n": 1e308}))[
        "param"] == "repeat_last_n"
    error = openai_error(client.post("/v1/completions", json={"prompt": "x", "repeat_penalty": 0, "stream": True}))
    assert error["param"] == "repeat_penalty" and model.prompts == []


def test_negative_max_tokens_is_400_and_n_predict_minus_one_is_unlimited(client: Client, model: FakeModel) -> None:
    assert openai_error(client.post("/v1/chat/completions", json={"messages": HI, "max_tokens": -5}))[
        "param"] == "max_tokens"
    assert openai_error(client.post("/v1/completions", json={"prompt": "x", "max_completion_tokens": -1}))[
        "param"] == "max_completion_tokens"
    assert client.post("/v1/completions", json={"prompt": "x", "n_predict": -1}).status_code == 200
    assert model.calls[-1]["max_tokens"] is None


# ------------------------------------------------------------------ text and nesting

def test_lone_surrogates_are_a_clear_400_on_both_apis(client: Client, model: FakeModel) -> None:
    text = '{"messages": [{"role": "user", "content": "a\\ud800b"}]}'
    error = openai_error(post_raw(client, "/v1/chat/completions", text))
    assert "surrogate" in error["message"] and error["param"] == "messages[0].content"
    # the Anthropic `model` field once escaped the app and werkzeug answered with an HTML 500
    text = '{"model": "\\udfff", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}'
    error = anthropic_error(post_raw(client, "/v1/messages", text, ANTHROPIC))
    assert "surrogate" in error["message"] and "model" in error["message"]
    text = '{"content": "\\ud83d"}'
    openai_error(post_raw(client, "/tokenize", text))
    assert model.prompts == []


def test_a_surrogate_pair_is_fine(client: Client, model: FakeModel) -> None:
    text = '{"messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}'
    assert post_raw(client, "/v1/chat/completions", text).status_code == 200
    assert "\U0001F600" in model.prompts[-1]


@pytest.mark.parametrize("depth", [DEFAULT_LIMITS.max_json_depth + 1, 5000, 100_000])
def test_deep_nesting_is_400_naming_the_limit(client: Client, depth: int) -> None:
    text = '{"messages": [{"role": "user", "content": "Hi"}], "chat_template_kwargs": {"x": %s}}' % (
        "[" * depth + "]" * depth)
    error = openai_error(post_raw(client, "/v1/chat/completions", text))
    assert "nesting depth" in error["message"] and "max_json_depth" in error["message"]


def test_the_body_checker_names_the_place_and_walks_without_recursion() -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_json_body(b'{"a": [1, {"b": "\\udc00"}]}')
    assert info.value.param == "a[1].b"
    limits = dataclasses.replace(DEFAULT_LIMITS, max_json_depth=3)
    assert decode_json_body(b'{"a": [[1]]}', limits) == {"a": [[1]]}
    with pytest.raises(InvalidRequestError, match="nesting depth"):
        decode_json_body(b'{"a": [[[1]]]}', limits)
    with pytest.raises(InvalidRequestError, match="not UTF-8"):
        decode_json_body(b'{"a": "\xff"}')


# ------------------------------------------------------------------ shapes the layers below tripped over

@pytest.mark.parametrize("key", ["tools", "messages", "add_generation_prompt", "bos_token"])
def test_chat_template_kwargs_cannot_override_the_chat_layer(client: Client, key: str) -> None:
    body = {"messages": HI, "chat_template_kwargs": {key: True}}
    assert openai_error(client.post("/v1/chat/completions", json=body))["param"] == f"chat_template_kwargs.{key}"
    body["chat_template_kwargs"] = {"documents": ["d"], "enable_thinking": False}
    assert client.post("/v1/chat/completions", json=body).status_code == 200


@pytest.mark.parametrize("choice", [{"type": []}, {"type": {}}, {"type": 5}, {"type": "x" * 1000}])
def test_anthropic_tool_choice_type_of_any_type(client: Client, choice: Any) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    error = anthropic_error(client.post("/v1/messages", headers=ANTHROPIC, json={
        "max_tokens": 5, "messages": HI, "tools": tools, "tool_choice": choice}))
    assert "tool_choice.type" in error["message"] and len(error["message"]) < 200


def test_tool_call_arguments_with_a_5000_digit_integer(client: Client) -> None:
    messages = [{"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {
                    "name": "f", "arguments": '{"n": ' + "1" * 5000 + "}"}}]},
                {"role": "tool", "tool_call_id": "c", "content": "ok"}]
    error = openai_error(client.post("/v1/chat/completions", json={"messages": messages}))
    assert error["param"] == "messages[1].tool_calls[0].function.arguments"


@pytest.mark.parametrize("fmt", [{"type": "json_object", "schema": 5}, {"type": "json_object", "schema": [1]},
                                 {"type": "json_schema", "json_schema": {"schema": [1]}},
                                 {"type": "json_schema", "json_schema": {"schema": 3.5}}, {"type": []}])
def test_response_format_schema_that_is_not_an_object(client: Client, fmt: Any) -> None:
    for path, body in (("/v1/chat/completions", {"messages": HI}), ("/v1/completions", {"prompt": "x"})):
        openai_error(client.post(path, json={**body, "response_format": fmt}))


@pytest.mark.parametrize("properties", [5, True, "x", [1], {"a": 5}])
def test_tool_schemas_with_properties_that_are_not_schemas(client: Client, properties: Any) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": properties}}}
    openai_error(client.post("/v1/chat/completions", json={"messages": HI, "tools": [tool]}))
    anthropic_error(client.post("/v1/messages", headers=ANTHROPIC, json={
        "max_tokens": 5, "messages": HI, "tools": [{"name": "f", "input_schema": {"properties": properties}}]}))


# ------------------------------------------------------------------ errors found before the queue

@pytest.mark.parametrize("body", [
    {"prompt": "x", "response_format": {"type": "json_schema", "json_schema": {"schema": {
        "type": "array", "minItems": 5000}}}},                              # the grammar parser refuses it
    {"prompt": "x", "grammar": "root ::= \"a\"{3,1}"},                      # GBNF that does not make sense
    {"prompt": [1, 2, 10**6]},                                              # a token id out of range
    {"prompt": [1, -1]},
])
def test_a_streaming_client_gets_a_4xx_not_200_and_an_error_event(
        client: Client, model: FakeModel, body: dict[str, Any]) -> None:
    response = client.post("/v1/completions", json={**body, "stream": True})
    openai_error(response)
    assert model.prompts == []


def test_a_chat_schema_the_grammar_refuses_is_a_4xx_for_both_apis(client: Client, model: FakeModel) -> None:
    schema = {"type": "string", "minLength": 100_000}
    response = client.post("/v1/chat/completions", json={"messages": HI, "stream": True, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    openai_error(response)
    response = client.post("/v1/messages", headers=ANTHROPIC, json={
        "max_tokens": 5, "messages": HI, "stream": True, "output_config": {"format": {
            "type": "json_schema", "schema": schema}}})
    anthropic_error(response)
    assert model.prompts == []


# ------------------------------------------------------------------ counts

def test_count_limits_name_the_limit(client: Client) -> None:
    error = openai_error(client.post("/v1/chat/completions", json={"messages": HI, "stop": ["s"] * 65}))
    assert "max_stop_strings" in error["message"] and error["param"] == "stop"
    error = openai_error(client.post("/v1/completions", json={"prompt": "x", "stop": "s" * 2000}))
    assert "max_stop_length" in error["message"]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert "max_tools" in openai_error(client.post("/v1/chat/completions", json={
        "messages": HI, "tools": [tool] * 513}))["message"]
    assert "max_embedding_inputs" in openai_error(client.post("/v1/embeddings", json={"input": ["a"] * 2049}))[
        "message"]
    error = anthropic_error(client.post("/v1/messages", headers=ANTHROPIC, json={
        "max_tokens": 5, "messages": HI, "stop_sequences": ["s"] * 100}))
    assert "max_stop_strings" in error["message"]


# ------------------------------------------------------------------ body size, content type, bounded work

class _Unreadable(io.RawIOBase):
    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body was read")


def test_an_oversized_body_is_413_from_content_length_without_reading_it(engine: Engine) -> None:
    app = create_app(engine, ServerConfig(max_body_bytes=1000, api_key="k"))
    for path, headers in (("/v1/chat/completions", {}), ("/v1/messages", ANTHROPIC)):
        environ = EnvironBuilder(path, method="POST", headers=headers, content_type="application/json").get_environ()
        environ.update({"wsgi.input": _Unreadable(), "CONTENT_LENGTH": "5000"})
        body, status, _ = run_wsgi_app(app, environ, buffered=True)
        assert status.startswith("413")  # before the key check, before a byte is read
        assert "--max-body" in b"".join(body).decode()


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_json_routes_require_a_json_content_type(client: Client, model: FakeModel, content_type: str | None) -> None:
    data = json.dumps({"messages": HI})
    response = client.post("/v1/chat/completions", data=data, content_type=content_type)
    assert openai_error(response, 415)["code"] == "unsupported_media_type"
    response = client.post("/v1/messages", data=json.dumps({"max_tokens": 5, "messages": HI}),
                           content_type=content_type, headers=ANTHROPIC)
    assert response.status_code == 415 and response.json["type"] == "error"
    assert model.prompts == []
    ok = client.post("/v1/chat/completions", data=data, content_type="application/json; charset=utf-8")
    assert ok.status_code == 200


def test_pre_queue_work_is_bounded_503_with_retry_after(engine: Engine, model: FakeModel) -> None:
    limits = dataclasses.replace(DEFAULT_LIMITS, max_preparing=1, prepare_wait=0.05)
    app = create_app(engine, ServerConfig(limits=limits))
    client = Client(app)
    with app.preparing():  # another request holds the only place
        response = client.post("/v1/chat/completions", json={"messages": HI, "stream": True})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "max_preparing" in response.json["error"]["message"]
        response = client.post("/v1/messages", headers=ANTHROPIC, json={"max_tokens": 5, "messages": HI})
        assert response.status_code == 529 and response.json["error"]["type"] == "overloaded_error"
    assert client.post("/v1/chat/completions", json={"messages": HI}).status_code == 200
    assert len(model.prompts) == 1


def test_an_unexpected_error_while_preparing_is_400_with_an_id_and_logged(
        client: Client, model: FakeModel, caplog: pytest.LogCaptureFixture) -> None:
    def broken(text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        raise KeyError("secret internals")

    model.tokenize = broken  # type: ignore[method-assign]
    error = openai_error(client.post("/v1/completions", json={"prompt": "x"}))
    assert "secret internals" not in error["message"] and "error id" in error["message"]
    error_id = error["message"].split("error id ")[1].split(":")[0]
    assert f"error id {error_id}" in caplog.text and "secret internals" in caplog.text


# ------------------------------------------------------------------ disconnect detection

def test_client_gone_works_for_descriptors_above_1024() -> None:
    """select() raises for fd >= 1024 and that read as "gone": a busy server would cancel every job."""
    import os
    import resource
    import socket

    from llamactypes.server.responses import client_gone

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1600:
        pytest.skip(f"the descriptor limit ({hard}) is too low for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1600), hard))
    ours, peer = socket.socketpair()
    try:
        high = socket.socket(fileno=os.dup2(ours.fileno(), 1500))
        assert high.fileno() >= 1024
        environ = {"werkzeug.socket": high}
        assert client_gone(environ) is False
        peer.sendall(b"pipelined bytes")  # data waiting is not a hang-up
        assert client_gone(environ) is False
        peer.close()
        high.recv(100)
        assert client_gone(environ) is True
        high.close()
        assert client_gone({}) is False  # no socket known: assume the client is there
    finally:
        ours.close()
        peer.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
