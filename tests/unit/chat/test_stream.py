"""ChatStreamParser: folding the deltas gives chat_parse(full text), whatever the chunking."""

from __future__ import annotations

import pytest

from llamactypes.chat import ChatStreamParser, Delta, ParserConfig, chat_parse
from tests.unit.chat.cases import KNOWN_TOOLS, MALFORMED_CASES, PARSE_CASES, Case
from tests.unit.chat.checks import assert_same_message, stream


def config(case: Case) -> ParserConfig:
    return ParserConfig(**{"tools": KNOWN_TOOLS, **case.config})


@pytest.mark.parametrize("chunk", [1, 3, 7, 10_000])
@pytest.mark.parametrize("case", PARSE_CASES, ids=lambda c: c.id)
def test_fold_equals_parse(case: Case, chunk: int) -> None:
    folded = stream(case.raw, case.format, config(case), chunk)
    assert_same_message(folded, chat_parse(case.raw, case.format, config(case)))
    if case.ids:
        assert tuple(c.id for c in folded.tool_calls) == case.ids


@pytest.mark.parametrize("case", PARSE_CASES + MALFORMED_CASES, ids=lambda c: c.id)
def test_whole_calls_mode_folds_exactly_for_every_truncation(case: Case) -> None:
    """With stream_arguments=False even an output cut anywhere folds to chat_parse of the cut."""
    for end in range(0, len(case.raw) + 1, max(1, len(case.raw) // 40)):
        raw = case.raw[:end]
        folded = stream(raw, case.format, config(case), 2, stream_arguments=False)
        assert_same_message(folded, chat_parse(raw, case.format, config(case)))


@pytest.mark.parametrize("case", MALFORMED_CASES, ids=lambda c: c.id)
def test_malformed_stream_content_matches(case: Case) -> None:
    folded = stream(case.raw, case.format, config(case), 1)
    assert folded.content == chat_parse(case.raw, case.format, config(case)).content


def test_arguments_stream_in_pieces() -> None:
    parser = ChatStreamParser("hermes", ParserConfig(tools=("get_weather",)))
    deltas: list[Delta] = []
    for piece in ['Sure. <tool_', 'call>{"name": "get_weather", ', '"arguments": {"city": ', '"Paris"}}', "</tool_call>"]:
        deltas += parser.feed(piece)
    deltas += parser.finish()
    assert deltas[0] == Delta("content", text="Sure. ")
    calls = [d for d in deltas if d.kind == "tool_call"]
    assert calls[0].name == "get_weather" and calls[0].id and calls[0].arguments == ""
    assert [d.arguments for d in calls[1:]] == ['{"city": ', '"Paris"}']
    assert all(d.id is None and d.name is None for d in calls[1:])


def test_reasoning_streams_before_content() -> None:
    parser = ChatStreamParser("deepseek-r1", ParserConfig(thinking_forced_open=True))
    out = parser.feed("Let me") + parser.feed(" think</thi") + parser.feed("nk>Answer") + parser.finish()
    assert [(d.kind, d.text) for d in out] == [("reasoning", "Let me"), ("reasoning", " think"), ("content", "Answer")]


def test_finish_flushes_held_text_and_feed_after_finish_fails() -> None:
    parser = ChatStreamParser("hermes", ParserConfig())
    assert parser.feed("a <tool") == [Delta("content", text="a ")]
    assert parser.finish() == [Delta("content", text="<tool")]
    assert parser.finish() == []
    with pytest.raises(RuntimeError):
        parser.feed("more")
