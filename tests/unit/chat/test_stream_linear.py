"""Streaming in linear time, and every split of every dialect's output folds to the one-shot parse."""

from __future__ import annotations

import json
from typing import Callable

import pytest

from llamactypes.chat import ChatStreamParser, ParserConfig, chat_build, chat_parse
from llamactypes.chat.derive.roundtrip import TIME, WEATHER, RoundTrip
from llamactypes.chat.stream import fold_deltas
from tests.unit.chat.checks import assert_same_message
from tests.unit.chat.conftest import FakeModel

LONG_ARG = "lorem ipsum dolor sit amet, consectetur adipiscing elit " * 40  # ~2.2k plain characters
CODE = 'def f(x):\n    return "x=" + str(x)  # é, 名前\n\tpass\n' * 40  # quotes, breaks, tabs, non-ASCII


def _work(pieces: list[str], fmt: str, config: ParserConfig) -> tuple[int, str]:
    parser = ChatStreamParser(fmt, config)
    deltas = [d for p in pieces for d in parser.feed(p)] + parser.finish()
    folded = fold_deltas(deltas)
    return parser.work, folded.tool_calls[0].arguments if folded.tool_calls else folded.content


@pytest.mark.parametrize("fmt", ["hermes", "qwen3-coder", "mistral-nemo", "functionary-v3.2"])
def test_parse_work_grows_linearly_with_a_long_argument(fmt: str) -> None:
    """Doubling the argument doubles the characters the parser reads (quadratic would quadruple them)."""
    config = ParserConfig(tools=("write",), param_types={"write": {"text": "string"}})
    heads = {
        "hermes": ('<tool_call>\n{"name": "write", "arguments": {"text": "', '"}}\n</tool_call>'),
        "qwen3-coder": ("<tool_call>\n<function=write>\n<parameter=text>\n",
                        "\n</parameter>\n</function>\n</tool_call>"),
        "mistral-nemo": ('[TOOL_CALLS][{"name": "write", "arguments": {"text": "', '"}, "id": "abcdefghi"}]'),
        "functionary-v3.2": ('all\nWriting it.>>>write\n{"text": "', '"}'),
    }
    head, tail = heads[fmt]
    works = []
    for reps in (1, 2, 4):
        body = LONG_ARG * reps
        text = head + body + tail
        pieces = [text[k: k + 4] for k in range(0, len(text), 4)]
        work, arguments = _work(pieces, fmt, config)
        assert body.strip() in arguments
        works.append(work)
    assert works[2] < 2.5 * works[1] < 6.25 * works[0]
    assert works[2] < 30 * len(head + LONG_ARG * 4 + tail)


def test_content_and_reasoning_stream_linearly() -> None:
    config = ParserConfig(tools=("write",))
    for reps in (2, 4):
        text = "<think>" + LONG_ARG * reps + "</think>" + LONG_ARG * reps
        work, _ = _work([text[k: k + 3] for k in range(0, len(text), 3)], "hermes", config)
        assert work < 20 * len(text)


def _outputs(round_trips: dict[str, RoundTrip]) -> list[tuple[str, str, str]]:
    cases = []
    for name, result in round_trips.items():
        if result.single is not True:
            continue
        for kind, text in result.texts.items():
            cases.append((name, kind, text))
    return cases


def test_every_split_of_every_dialect_folds_to_the_one_shot_parse(
    make_model: Callable[..., FakeModel], round_trips: dict[str, RoundTrip]
) -> None:
    checked = 0
    for name, kind, text in _outputs(round_trips):
        build = chat_build(make_model(name), [{"role": "user", "content": "hi"}], [WEATHER, TIME],
                           enable_thinking=kind == "reasoning")
        want = chat_parse(text, build.format, build.parser)
        for k in range(len(text) + 1):
            parser = ChatStreamParser(build.format, build.parser)
            deltas = parser.feed(text[:k]) + parser.feed(text[k:]) + parser.finish()
            assert_same_message(fold_deltas(deltas), want)
        parser = ChatStreamParser(build.format, build.parser)
        deltas = [d for c in text for d in parser.feed(c)] + parser.finish()
        assert_same_message(fold_deltas(deltas), want)
        checked += 1
    assert checked >= 100


@pytest.mark.parametrize("fmt", ["hermes", "qwen3-coder"])
def test_code_arguments_stream_linearly(fmt: str) -> None:
    """A file written by an agent: quotes, line breaks and non-ASCII text keep the parse linear too."""
    config = ParserConfig(tools=("write",), param_types={"write": {"text": "string"}})
    works = []
    for reps in (1, 2, 4):
        body = CODE * reps
        if fmt == "hermes":
            arguments = json.dumps({"text": body}, ensure_ascii=False)
            text = '<tool_call>\n{"name": "write", "arguments": ' + arguments + "}\n</tool_call>"
        else:
            text = ("<tool_call>\n<function=write>\n<parameter=text>\n" + body
                    + "</parameter>\n</function>\n</tool_call>")
        pieces = [text[k: k + 3] for k in range(0, len(text), 3)]
        work, arguments = _work(pieces, fmt, config)
        assert json.loads(arguments) == {"text": body.rstrip("\n") if fmt == "qwen3-coder" else body}
        works.append(work)
    assert works[2] < 2.5 * works[1] < 6.25 * works[0]


def test_non_ascii_content_streams_linearly() -> None:
    config = ParserConfig(tools=("write",))
    text = "Voilà la réponse, 答案如下。\n" * 200
    work, content = _work([text[k: k + 2] for k in range(0, len(text), 2)], "hermes", config)
    assert content == text and work < 20 * len(text)


def test_a_plain_answer_sends_its_line_breaks_as_they_come() -> None:
    """Without tools the answer is the text as written: whitespace is not held for a later trim
    (a held line break delays the client by a token, seconds while a long prompt is read)."""
    parser = ChatStreamParser("generic", ParserConfig())
    sent = [[d.text for d in parser.feed(piece)] for piece in ["Hello", ".", "\n", "\n", "I", " "]]
    assert sent == [["Hello"], ["."], ["\n"], ["\n"], ["I"], [" "]]
    assert parser.finish() == []
    assert parser.message.content == chat_parse("Hello.\n\nI ", "generic", ParserConfig()).content


def test_whitespace_before_a_possible_call_still_waits() -> None:
    """Where a call may follow, trailing whitespace may still be trimmed: it waits for the next piece."""
    config = ParserConfig(tools=("get_weather",))
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    parser = ChatStreamParser("hermes", config)
    assert [d.text for d in parser.feed("Let me check.")] == ["Let me check."]
    assert parser.feed("\n") == []
    parser.feed(call)
    parser.finish()
    assert_same_message(parser.message, chat_parse("Let me check.\n" + call, "hermes", config))


def test_unicode_escapes_in_json_arguments_stream_linearly() -> None:
    """Models often write non-ASCII as \\uXXXX in JSON: an escape split across pieces waits for its
    end instead of sending the parser back to the start of the output each time."""
    config = ParserConfig(tools=("write",))
    head, tail = '<tool_call>\n{"name": "write", "arguments": {"text": "', '"}}\n</tool_call>'
    works = []
    for reps in (100, 200, 400):
        body = "caf\\u00e9 na\\u00efve \\ud83d\\ude00 " * reps
        text = head + body + tail
        pieces = [text[k: k + 3] for k in range(0, len(text), 3)]
        work, arguments = _work(pieces, "hermes", config)
        assert json.loads(arguments) == {"text": json.loads('"' + body + '"')}
        works.append(work)
    assert works[2] < 2.5 * works[1] < 6.25 * works[0]
