"""The official `openai` SDK's `client.responses` against the server on the demo model."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}
TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather in a city",
          "parameters": WEATHER}]


def test_create_answers_with_text_and_usage(openai_client: Any) -> None:
    response = openai_client.responses.create(model="smollm2", instructions="Answer briefly.",
                                              input="Name three colors.", max_output_tokens=24, temperature=0)
    assert response.object == "response" and response.status in ("completed", "incomplete")
    assert response.output_text and response.output[0].type == "message"
    assert response.usage.input_tokens > 5 and 0 < response.usage.output_tokens <= 24


def test_stream_folds_to_the_non_stream_result(openai_client: Any) -> None:
    kwargs = dict(model="smollm2", input="Name three colors.", max_output_tokens=24, temperature=0)
    whole = openai_client.responses.create(**kwargs)
    events = list(openai_client.responses.create(**kwargs, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert text == final.output_text == whole.output_text
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.input_tokens_details.cached_tokens > 0  # the same prompt again: read from the KV cache


def test_function_call_round_trip_with_required_tool_choice(openai_client: Any) -> None:
    first = openai_client.responses.create(model="smollm2", input="What is the weather in Paris?", tools=TOOLS,
                                           tool_choice="required", temperature=0, max_output_tokens=96)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER)  # schema-valid arguments
    second = openai_client.responses.create(
        model="smollm2", tools=TOOLS, temperature=0, max_output_tokens=32, previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 degrees, sunny"}],
        tool_choice="none")
    assert second.status in ("completed", "incomplete") and second.output_text
    assert second.previous_response_id == first.id


def test_text_format_json_schema_validates(openai_client: Any) -> None:
    colors = {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 1, "maxItems": 3}
    schema = {"type": "object", "properties": {"colors": colors}, "required": ["colors"],
              "additionalProperties": False}
    response = openai_client.responses.create(
        model="smollm2", input="Name three colors.", temperature=0, max_output_tokens=64,
        text={"format": {"type": "json_schema", "name": "colors", "schema": schema, "strict": True}})
    jsonschema.validate(json.loads(response.output_text), schema)


def test_previous_response_id_continues_the_conversation(openai_client: Any) -> None:
    first = openai_client.responses.create(model="smollm2", input="My name is Ada. Say hi.", temperature=0,
                                           max_output_tokens=16)
    count = openai_client.responses.input_tokens.count(model="smollm2", input="What is my name?",
                                                       previous_response_id=first.id)
    alone = openai_client.responses.input_tokens.count(model="smollm2", input="What is my name?")
    assert count.input_tokens > alone.input_tokens  # the earlier turn is part of the prompt
    second = openai_client.responses.create(model="smollm2", input="What is my name?", temperature=0,
                                            max_output_tokens=16, previous_response_id=first.id)
    assert second.usage.input_tokens == count.input_tokens
    assert openai_client.responses.retrieve(second.id).output_text == second.output_text
    openai_client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.retrieve(second.id)


def test_overflow_is_context_length_exceeded(openai_client: Any) -> None:
    long_input = "word " * 5000
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(model="smollm2", input=long_input)
    assert info.value.body["code"] == "context_length_exceeded"
    events = list(openai_client.responses.create(model="smollm2", input=long_input, stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "context_length_exceeded"


def test_a_forced_custom_tool_follows_codex_apply_patch_grammar(openai_client: Any) -> None:
    """The tool's Lark grammar constrains the model's text: whatever the small model writes is a patch
    (or, when max_output_tokens cuts it, the beginning of one)."""
    from pathlib import Path

    from llamactypes.grammar import Grammar
    from llamactypes.grammar.lark_to_gbnf import lark_to_gbnf

    grammar = (Path(__file__).parents[1] / "fixtures" / "grammars" / "codex_apply_patch.lark").read_text()
    tool = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
            "format": {"type": "grammar", "syntax": "lark", "definition": grammar}}
    response = openai_client.responses.create(
        model="smollm2", input="Delete the file notes.txt.", tools=[tool],
        tool_choice={"type": "custom", "name": "apply_patch"}, temperature=0, max_output_tokens=300)
    calls = [item for item in response.output if item.type == "custom_tool_call"]
    assert calls and calls[0].name == "apply_patch", response.output
    patch = Grammar.from_gbnf(lark_to_gbnf(grammar))
    if response.status == "completed":
        assert patch.accepts(calls[0].input), calls[0].input
    else:
        assert response.incomplete_details.reason == "max_output_tokens"
        matcher = patch.compile(_bytes_vocab()).matcher()
        assert calls[0].input.startswith("*** Begin Patch\n") and matcher.advance_bytes(calls[0].input.encode())


def _bytes_vocab() -> Any:
    from llamactypes.grammar.vocab import TokenVocab

    return TokenVocab([bytes([b]) for b in range(256)])
