"""Compact calls (issue 13, point 4): bounded whitespace in arguments, one call when parallel calls are off.

Checked on every template of the pinned tree whose own call reads back: the
grammar built under ``tool_choice="required"`` accepts the template's rendering
of one call, refuses the two-call rendering when ``parallel_tool_calls`` is
false, and refuses the same call with indented arguments.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from llamactypes.chat import chat_build
from llamactypes.chat.derive.roundtrip import TIME, WEATHER, RoundTrip
from llamactypes.chat.formats import get_format
from llamactypes.grammar import Grammar
from tests.unit.chat.conftest import FakeModel

USER = [{"role": "user", "content": "What is the weather in Paris?"}]


def _grammar(model: FakeModel, **kwargs: Any) -> Grammar:
    build = chat_build(model, USER, [WEATHER, TIME], tool_choice="required", **kwargs)
    assert build.grammar and not build.grammar_lazy
    return Grammar.from_gbnf(build.grammar)


def _cases(round_trips: dict[str, RoundTrip]) -> list[tuple[str, dict[str, str]]]:
    return [(name, r.texts) for name, r in round_trips.items() if r.grammar is True and "single" in r.texts]


def test_parallel_off_allows_exactly_one_call(
    make_model: Callable[..., FakeModel], round_trips: dict[str, RoundTrip]
) -> None:
    checked = 0
    for name, texts in _cases(round_trips):
        model = make_model(name)
        single = _grammar(model, parallel_tool_calls=False)
        assert single.accepts(texts["single"]), name
        if "parallel" in texts and "get_time" in texts["parallel"]:
            assert _grammar(model).accepts(texts["parallel"]), name
            assert not single.accepts(texts["parallel"]), name
            checked += 1
    assert checked >= 30


def test_arguments_allow_only_bounded_whitespace(
    make_model: Callable[..., FakeModel], round_trips: dict[str, RoundTrip]
) -> None:
    checked = 0
    for name, texts in _cases(round_trips):
        model = make_model(name)
        text = texts["single"]
        if '{"city": "Paris"}' not in text or get_format(chat_build(model, USER, [WEATHER]).format).pretty_json:
            continue
        grammar = _grammar(model)
        assert grammar.accepts(text.replace('{"city": "Paris"}', '{"city":"Paris"}')), name
        assert grammar.accepts(text.replace('{"city": "Paris"}', '{\n  "city": "Paris"\n}')), name
        for loose in ('{\n        "city": "Paris"\n}', '{"city":    "Paris"}', '{ "city" :  "Paris" }',
                      '{\n\n"city": "Paris"}', '{\t"city": "Paris"}'):
            assert not grammar.accepts(text.replace('{"city": "Paris"}', loose)), (name, loose)
        checked += 1
    assert checked >= 20


def test_generic_format_is_compact_too(make_model: Callable[..., FakeModel]) -> None:
    grammar = _grammar(make_model(None), parallel_tool_calls=False)
    assert grammar.accepts('{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}')
    assert not grammar.accepts('{"tool_call": {"name": "get_weather", "arguments": {\n      "city": "Paris"\n}}}')
    assert not grammar.accepts('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
                               '{"name": "get_time", "arguments": {"tz": "CET"}}]}')


@pytest.mark.parametrize("compact", [True, False])
def test_response_format_alone_keeps_line_breaks(make_model: Callable[..., FakeModel], compact: bool) -> None:
    build = chat_build(make_model("Qwen-Qwen2.5-7B-Instruct"), USER,
                       response_format={"type": "json_object"})
    text = '{"a": 1}' if compact else '{\n  "a": 1\n}'
    assert Grammar.from_gbnf(build.grammar).accepts(text)
