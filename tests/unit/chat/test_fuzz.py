"""Random marker soup: parsers never fail internally, and whole-call streams fold to chat_parse."""

from __future__ import annotations

import logging
import random

import pytest

from llamactypes.chat import ChatStreamParser, ParserConfig, chat_parse
from llamactypes.chat.formats import FORMATS, ChatFormat
from llamactypes.chat.stream import fold_deltas
from tests.unit.chat.cases import MALFORMED_CASES, PARSE_CASES
from tests.unit.chat.checks import assert_same_message

FRAGMENTS = [
    "<tool_call>", "</tool_call>", "<think>", "</think>", "{", "}", "[", "]", '"', "\\", '"name": ', '"arguments": ',
    '"get_time"', ":", ",", " ", "\n", "<function=", "get_time>", "<parameter=", "tz>", "</parameter>", "</function>",
    "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<|python_tag|>", "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>",
    "<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>", "```json", "```", "<|START_ACTION|>",
    "<|END_ACTION|>", "<|START_RESPONSE|>", "<|channel|>", "<|message|>", "<|end|>", "<|start|>", "assistant",
    " to=functions.get_time", "analysis", "final", "\\u12", "\\ud83d", '"response": ', '"tool_call": ',
    '"tool_calls": ', "x", "1", "true", "-", ".", "e", "[THINK]", "[/THINK]", "<|START_THINKING|>",
    ">>>", ">", "all\n", "get_time\n", "python\n",
]
CONFIGS = [
    ParserConfig(),
    ParserConfig(tools=("get_time",), thinking_forced_open=True, json_envelope=True,
                 param_types={"get_time": {"tz": "string"}}),
]


def soup(rng: random.Random) -> str:
    samples = [c.raw for c in PARSE_CASES + MALFORMED_CASES]
    if rng.random() < 0.5:
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 25)))
    base = rng.choice(samples)
    i, j = sorted((rng.randrange(len(base) + 1), rng.randrange(len(base) + 1)))
    return base[:i] + rng.choice(FRAGMENTS) + base[j:]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.id)
def test_marker_soup(fmt: ChatFormat, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(fmt.id)
    with caplog.at_level(logging.WARNING, logger="llamactypes"):
        for _ in range(150):
            raw = soup(rng)
            for config in CONFIGS:
                final = chat_parse(raw, fmt, config)
                for end in range(0, len(raw) + 1, 3):
                    part = chat_parse(raw[:end], fmt, config, partial=True)
                    assert final.content.startswith(part.content) and final.reasoning.startswith(part.reasoning)
                parser = ChatStreamParser(fmt, config, stream_arguments=False)
                deltas = [d for k in range(0, len(raw), 2) for d in parser.feed(raw[k : k + 2])] + parser.finish()
                assert_same_message(fold_deltas(deltas), final)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a parser raised internally"
    assert not [r for r in caplog.records if "diverged" in r.getMessage()]
