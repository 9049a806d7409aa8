"""The official `openai` SDK against the server on the demo model."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import numpy as np
import openai
import pytest

MESSAGES = [{"role": "user", "content": "Name three colors."}]
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                           "parameters": WEATHER}}]


def test_models_list(openai_client: Any) -> None:
    assert [m.id for m in openai_client.models.list()] == ["smollm2"]


def fold(stream: Any) -> dict[str, Any]:
    content, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        content += choice.delta.content or ""
        for tc in choice.delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"name": "", "arguments": ""})
            if tc.function.name:
                assert not call["name"], "a tool call's name came twice"
                call["name"] = tc.function.name
            call["arguments"] += tc.function.arguments or ""
        finish = choice.finish_reason or finish
    return {"content": content, "calls": [calls[i] for i in sorted(calls)], "finish": finish, "usage": usage}


def test_stream_folds_to_the_non_stream_answer_for_the_same_seed(openai_client: Any) -> None:
    kwargs = dict(model="smollm2", messages=MESSAGES, max_tokens=24, temperature=0.8, seed=42)
    whole = openai_client.chat.completions.create(**kwargs)
    stream = openai_client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    folded = fold(stream)
    assert whole.object == "chat.completion" and whole.choices[0].message.content
    assert folded["content"] == whole.choices[0].message.content
    assert folded["finish"] == whole.choices[0].finish_reason
    assert folded["usage"].completion_tokens == whole.usage.completion_tokens
    assert folded["usage"].prompt_tokens == whole.usage.prompt_tokens


def test_huge_max_tokens_is_clamped_not_rejected(openai_client: Any) -> None:
    whole = openai_client.chat.completions.create(model="x", messages=MESSAGES, max_tokens=32000, temperature=0,
                                                  stop=["\n"])
    assert whole.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_required_tool_calls_have_schema_valid_arguments(openai_client: Any, choice: Any) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    kwargs = dict(model="smollm2", messages=messages, tools=TOOLS, tool_choice=choice, max_tokens=80,
                  temperature=0.5, seed=3, parallel_tool_calls=False)
    whole = openai_client.chat.completions.create(**kwargs)
    assert whole.choices[0].finish_reason == "tool_calls"
    call = whole.choices[0].message.tool_calls[0]
    assert call.type == "function" and call.id and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)
    folded = fold(openai_client.chat.completions.create(**kwargs, stream=True))
    assert folded["calls"] == [{"name": "get_weather", "arguments": call.function.arguments}]
    assert folded["finish"] == "tool_calls"


def test_a_tool_result_turn(openai_client: Any) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees, sunny"}]
    whole = openai_client.chat.completions.create(model="x", messages=messages, tools=TOOLS, max_tokens=30,
                                                  temperature=0)
    assert whole.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_json_schema_output(openai_client: Any) -> None:
    schema = {"type": "object", "properties": {"colors": {"type": "array", "items": {"type": "string", "maxLength": 12},
                                                          "minItems": 1, "maxItems": 3}},
              "required": ["colors"], "additionalProperties": False}
    whole = openai_client.chat.completions.create(
        model="x", messages=MESSAGES, max_tokens=80, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "colors", "schema": schema, "strict": True}})
    jsonschema.validate(json.loads(whole.choices[0].message.content), schema)


def test_embeddings_float_and_base64(openai_client: Any) -> None:
    floats = openai_client.embeddings.create(model="x", input=["a cat", "a kitten"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1] and floats.usage.prompt_tokens > 0
    vectors = np.array([d.embedding for d in floats.data])
    assert vectors.shape == (2, 576) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    default = openai_client.embeddings.create(model="x", input="a cat")  # the SDK asks for base64 and decodes it
    assert np.allclose(default.data[0].embedding, vectors[0], atol=1e-5)


def test_completions_stream_and_not(openai_client: Any) -> None:
    kwargs = dict(model="x", prompt="The capital of France is", max_tokens=8, temperature=0)
    whole = openai_client.completions.create(**kwargs)
    streamed = "".join(c.choices[0].text for c in openai_client.completions.create(**kwargs, stream=True)
                       if c.choices)
    assert whole.choices[0].text and streamed == whole.choices[0].text


def test_sdk_errors(openai_client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="x", messages=MESSAGES, n=2)
    assert info.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="x", messages=[{"role": "user", "content": "word " * 5000}])
    assert info.value.body["code"] == "context_length_exceeded" and info.value.body["n_ctx"] == 4096
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="x", messages=MESSAGES, extra_body={"grammar": "root ::= ("})
    assert info.value.body["param"] == "grammar" and "line 1, column" in info.value.body["message"]
