"""chat_parse per dialect: expected messages, malformed output as content, every prefix stable."""

from __future__ import annotations

import logging

import pytest

from llamactypes.chat import ParserConfig, chat_parse
from tests.unit.chat.cases import KNOWN_TOOLS, MALFORMED_CASES, PARSE_CASES, Case
from tests.unit.chat.checks import arguments_are_json, assert_prefix_stable, assert_same_message, stream


def config(case: Case) -> ParserConfig:
    return ParserConfig(**{"tools": KNOWN_TOOLS, **case.config})


@pytest.mark.parametrize("case", PARSE_CASES, ids=lambda c: c.id)
def test_parse(case: Case) -> None:
    message = chat_parse(case.raw, case.format, config(case))
    assert message.content == case.content
    assert message.reasoning == case.reasoning
    assert [(c.name, c.arguments) for c in message.tool_calls] == list(case.calls)
    arguments_are_json(message)
    if case.ids:
        assert tuple(c.id for c in message.tool_calls) == case.ids


@pytest.mark.parametrize("case", MALFORMED_CASES, ids=lambda c: c.id)
def test_malformed_output_is_content(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llamactypes"):
        message = chat_parse(case.raw, case.format, config(case))
    assert message.content == case.content
    assert [(c.name, c.arguments) for c in message.tool_calls] == list(case.calls)
    assert any("kept as content" in r.getMessage() for r in caplog.records), "the reason is logged"


@pytest.mark.parametrize("case", PARSE_CASES, ids=lambda c: c.id)
def test_every_prefix_is_stable(case: Case) -> None:
    assert_prefix_stable(case.raw, case.format, config(case))


@pytest.mark.parametrize("case", MALFORMED_CASES, ids=lambda c: c.id)
def test_every_prefix_of_malformed_output_is_stable(case: Case) -> None:
    assert_prefix_stable(case.raw, case.format, config(case), calls=False)


def test_partial_holds_back_a_marker_prefix() -> None:
    cfg = ParserConfig(tools=("get_time",))
    for raw in ("Hello <", "Hello <tool", "Hello <tool_call"):
        assert chat_parse(raw, "hermes", cfg, partial=True).content == "Hello "
    assert chat_parse("Hello <tool", "hermes", cfg).content == "Hello <tool"  # final: nothing held
    assert chat_parse("Hello [TOOL_", "mistral-nemo", cfg, partial=True).content == "Hello "
    assert chat_parse("<thi", "hermes", cfg, partial=True).content == ""


def test_partial_reports_arguments_as_they_grow() -> None:
    cfg = ParserConfig(tools=("get_weather",))
    raw = '<tool_call>{"name": "get_weather", "arguments": {"city": "Par'
    message = chat_parse(raw, "hermes", cfg, partial=True)
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("get_weather", '{"city": "Par')]
    raw = "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar"
    message = chat_parse(raw, "qwen3-coder", ParserConfig(param_types={"get_weather": {"city": "string"}}), partial=True)
    assert message.tool_calls[0].arguments == '{"city": "Par'


def test_thinking_forced_open_partial_is_reasoning() -> None:
    cfg = ParserConfig(thinking_forced_open=True)
    message = chat_parse("Let me think</th", "hermes", cfg, partial=True)
    assert (message.reasoning, message.content) == ("Let me think", "")
    message = chat_parse("never closed", "hermes", cfg)
    assert (message.reasoning, message.content) == ("never closed", "")


def test_reasoning_split_can_be_turned_off() -> None:
    message = chat_parse("<think>x</think>y", "hermes", ParserConfig(reasoning=False))
    assert (message.content, message.reasoning) == ("<think>x</think>y", "")


def test_ids_are_unique_and_shaped_per_dialect() -> None:
    raw = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "a", "arguments": {}}</tool_call>'
    ids = [c.id for c in chat_parse(raw, "hermes").tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)
    raw = '[TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "a", "arguments": {}, "id": "x"}]'
    ids = [c.id for c in chat_parse(raw, "mistral-nemo").tool_calls]
    assert len(set(ids)) == 2 and all(len(i) == 9 and i.isalnum() for i in ids[:1])


def test_empty_tool_list_makes_every_call_content() -> None:
    raw = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    message = chat_parse(raw, "hermes", ParserConfig(tools=()))
    assert message.content == raw and not message.tool_calls


def test_unknown_format_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="hermes"):
        chat_parse("x", "no-such-format")


CALL = '<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n</tool_call>'


def test_a_call_ends_a_thinking_block_left_open() -> None:
    """The model calls without closing the block the prompt opened: the reasoning ends at the call."""
    forced = ParserConfig(tools=("get_time",), thinking_forced_open=True)
    message = chat_parse("plan it\n" + CALL, "hermes", forced)
    assert (message.reasoning, message.content) == ("plan it", "")
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("get_time", '{"tz": "UTC"}')]
    opened = chat_parse("<think>plan it\n" + CALL, "hermes", ParserConfig(tools=("get_time",)))
    assert opened.reasoning == "plan it" and len(opened.tool_calls) == 1


def test_a_call_inside_a_closed_thinking_block_stays_reasoning() -> None:
    """While streaming, the text from the marker on is held back until the block closes (reasoning only grows)."""
    raw = "<think>maybe " + CALL + " or not</think>Answer."
    config = ParserConfig(tools=("get_time",))
    message = chat_parse(raw, "hermes", config)
    assert (message.reasoning, message.content, message.tool_calls) == ("maybe " + CALL + " or not", "Answer.", [])
    assert chat_parse(raw[:30], "hermes", config, partial=True).reasoning == "maybe"
    assert_prefix_stable(raw, "hermes", config)
    for chunk in (1, 4):
        assert_same_message(stream(raw, "hermes", config, chunk), message)
