"""chat_build grammars and triggers, and build → output → parse → render round trips per dialect."""

from __future__ import annotations

import json
from typing import Callable

import pytest

from llamactypes.chat import chat_build, chat_parse
from llamactypes.errors import InvalidRequestError
from llamactypes.grammar import Grammar
from tests.unit.chat.checks import assert_prefix_stable, assert_same_message, grammar_start, stream
from tests.unit.chat.conftest import TIME_TOOL, WEATHER_TOOL, FakeModel

USER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [WEATHER_TOOL, TIME_TOOL]


# (template, model output with one call to get_weather(city="Paris"), the content/reasoning expected around it)
ROUND_TRIPS = [
    ("Qwen-Qwen2.5-7B-Instruct", 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
     "Let me check.\n", ""),
    ("Qwen-Qwen3-0.6B", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', "", ""),
    ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', "", ""),
    ("Qwen3-Coder", "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>", "", ""),
    ("Qwen3.5-4B", "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>", "", ""),
    ("meta-llama-Llama-3.1-8B-Instruct", '{"name": "get_weather", "parameters": {"city": "Paris"}}', "", ""),
    ("meta-llama-Llama-3.2-3B-Instruct", '{"name": "get_weather", "parameters": {"city": "Paris"}}', "", ""),
    ("mistralai-Mistral-Nemo-Instruct-2407", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]', "", ""),
    ("unsloth-mistral-Devstral-Small-2507", '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', "", ""),
    ("mistralai-Ministral-3-14B-Reasoning-2512", '[THINK]Weather needed.[/THINK][TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}',
     "", "Weather needed."),
    ("Mistral-Small-3.2-24B-Instruct-2506", '[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Paris"}', "", ""),
    ("llama-cpp-deepseek-r1", "The user wants weather.</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
     'get_weather\n```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>', "", "The user wants weather."),
    ("deepseek-ai-DeepSeek-V3.1", '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}'
     "<｜tool▁call▁end｜><｜tool▁calls▁end｜>", "", ""),
    ("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "<|START_THINKING|>Check weather.<|END_THINKING|><|START_ACTION|>"
     '[{"tool_call_id": "0", "tool_name": "get_weather", "parameters": {"city": "Paris"}}]<|END_ACTION|>', "", "Check weather."),
    ("openai-gpt-oss-120b", "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
     'to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}', "", "Need weather."),
    (None, '{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}', "", ""),
    ("google-gemma-2-2b-it", '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}', "", ""),
    ("microsoft-Phi-3.5-mini-instruct", '{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}', "", ""),
]


@pytest.mark.parametrize(("name", "output", "content", "reasoning"), ROUND_TRIPS, ids=lambda v: str(v)[:40])
def test_round_trip(name: str | None, output: str, content: str, reasoning: str,
                    make_model: Callable[..., FakeModel]) -> None:
    model = make_model(name)
    build = chat_build(model, USER, TOOLS)
    assert build.grammar is not None
    start = grammar_start(build, output) if build.grammar_lazy else 0
    assert start is not None, f"no trigger fires on {output!r}: {build.trigger_patterns}"
    assert Grammar.from_gbnf(build.grammar).accepts(output[start:]), build.grammar

    message = chat_parse(output, build.format, build.parser)
    assert (message.content, message.reasoning) == (content, reasoning)
    assert [(c.name, json.loads(c.arguments)) for c in message.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert_prefix_stable(output, build.format, build.parser)
    assert_same_message(stream(output, build.format, build.parser, 1), message)

    history = USER + [message.to_message(),
                      {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "Sunny, 22 degrees"}]
    again = chat_build(model, history, TOOLS)
    assert "Sunny, 22 degrees" in again.prompt and "Paris" in again.prompt


def test_content_answer_does_not_trigger(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("Qwen-Qwen2.5-7B-Instruct"), USER, TOOLS)
    assert build.grammar_lazy and grammar_start(build, "It is sunny in Paris.") is None


def test_tool_choice_modes(make_model: Callable[..., FakeModel]) -> None:
    model = make_model("Qwen-Qwen2.5-7B-Instruct")
    auto = chat_build(model, USER, TOOLS)
    assert auto.grammar and auto.grammar_lazy and auto.trigger_patterns
    assert auto.trigger_tokens == [model.specials.index("<tool_call>")]
    assert auto.trigger_words == ["<tool_call>"]
    assert "<tool_call>" in auto.preserved_tokens

    required = chat_build(model, USER, TOOLS, tool_choice="required")
    assert required.grammar and not required.grammar_lazy
    grammar = Grammar.from_gbnf(required.grammar)
    assert grammar.accepts('<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n</tool_call>')
    assert not grammar.accepts("It is sunny.")

    named = chat_build(model, USER, TOOLS, tool_choice={"type": "function", "function": {"name": "get_time"}})
    grammar = Grammar.from_gbnf(named.grammar)
    assert grammar.accepts('<tool_call>{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>')
    assert not grammar.accepts('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>')
    assert named.parser.tools == ("get_time",)

    none = chat_build(model, USER, TOOLS, tool_choice="none")
    assert none.grammar is None and none.parser.tools == () and "get_weather" not in none.prompt
    assert chat_build(model, USER).grammar is None


def test_parallel_tool_calls(make_model: Callable[..., FakeModel]) -> None:
    model = make_model("Qwen-Qwen2.5-7B-Instruct")
    two = ('<tool_call>{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>\n'
           '<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>')
    assert Grammar.from_gbnf(chat_build(model, USER, TOOLS).grammar).accepts(two)
    single = chat_build(model, USER, TOOLS, parallel_tool_calls=False)
    assert not Grammar.from_gbnf(single.grammar).accepts(two)


def test_generic_grammar(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model(None), USER, TOOLS)
    assert build.format == "generic" and not build.grammar_lazy and build.parser.json_envelope
    grammar = Grammar.from_gbnf(build.grammar)
    assert grammar.accepts('{"response": "It is sunny."}')
    assert grammar.accepts('{"tool_call": {"name": "get_time", "arguments": {"tz": "UTC"}}}')
    assert not grammar.accepts('{"tool_call": {"name": "rm", "arguments": {}}}')
    required = Grammar.from_gbnf(chat_build(make_model(None), USER, TOOLS, tool_choice="required").grammar)
    assert not required.accepts('{"response": "It is sunny."}')
    plain = chat_build(make_model(None), USER)
    assert plain.grammar is None and not plain.parser.json_envelope
    assert chat_parse("Hello!", plain.format, plain.parser).content == "Hello!"


@pytest.mark.parametrize(
    ("response_format", "good", "bad"),
    [
        ({"type": "json_object"}, '{"a": [1, true]}', "[1]"),
        ({"type": "json_schema", "json_schema": {"name": "w", "schema": {
            "type": "object", "properties": {"t": {"type": "integer"}}, "required": ["t"]}}}, '{"t": 21}', '{"t": "x"}'),
    ],
)
def test_response_format(response_format: dict, good: str, bad: str, make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("Qwen-Qwen2.5-7B-Instruct"), USER, response_format=response_format)
    assert build.grammar and not build.grammar_lazy
    grammar = Grammar.from_gbnf(build.grammar)
    assert grammar.accepts(good) and not grammar.accepts(bad)
    assert chat_parse(good, build.format, build.parser).content == good


def test_response_format_with_tools_allows_either(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("Qwen-Qwen2.5-7B-Instruct"), USER, TOOLS, response_format={"type": "json_object"})
    grammar = Grammar.from_gbnf(build.grammar)
    assert not build.grammar_lazy
    assert grammar.accepts('{"answer": 1}')
    assert grammar.accepts('<tool_call>{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>')


def test_forced_open_thinking_triggers_only_after_the_thinking(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("llama-cpp-deepseek-r1"), USER, TOOLS)
    assert build.thinking_forced_open and build.grammar_lazy
    assert grammar_start(build, "maybe <｜tool▁calls▁begin｜> here") is None
    out = "hmm</think>\n<｜tool▁calls▁begin｜>"
    assert grammar_start(build, out) == out.index("<｜tool▁calls▁begin｜>")
    assert build.trigger_tokens == []  # a token trigger would fire inside the thinking


def test_optional_thinking_triggers(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("Qwen-Qwen3-0.6B"), USER, TOOLS, enable_thinking=True)
    assert not build.thinking_forced_open
    assert grammar_start(build, "<think>a <tool_call> b") is None
    assert grammar_start(build, "<think>a</think><tool_call>") == len("<think>a</think>")
    assert grammar_start(build, "ok <tool_call>") == 3


def test_eager_grammar_waits_for_the_end_of_thinking(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("llama-cpp-deepseek-r1"), USER, TOOLS, tool_choice="required")
    assert build.grammar_lazy
    out = "plan</think>\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"UTC\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
    start = grammar_start(build, out)
    assert start == out.index("</think>") + len("</think>")
    assert Grammar.from_gbnf(build.grammar).accepts(out[start:])


def test_harmony_response_format_starts_after_the_final_header(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("openai-gpt-oss-120b"), USER, response_format={"type": "json_object"})
    out = '<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>{"a": 1}'
    start = grammar_start(build, out)
    assert build.grammar_lazy and start is not None and out[start:] == '{"a": 1}'
    assert Grammar.from_gbnf(build.grammar).accepts(out[start:])
    message = chat_parse(out, build.format, build.parser)
    assert (message.reasoning, message.content) == ("think", '{"a": 1}')


def test_harmony_stops_at_call(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("openai-gpt-oss-120b"), USER, TOOLS)
    assert "<|call|>" in build.additional_stops


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"tool_choice": "always"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tool_choice": 3}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
        ({"response_format": "json"}, "response_format"),
    ],
)
def test_bad_requests(kwargs: dict, param: str, make_model: Callable[..., FakeModel]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        chat_build(make_model(None), USER, TOOLS, **kwargs)
    assert info.value.param == param


def test_required_without_tools_is_an_error(make_model: Callable[..., FakeModel]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        chat_build(make_model(None), USER, tool_choice="required")
    assert info.value.param == "tool_choice"
