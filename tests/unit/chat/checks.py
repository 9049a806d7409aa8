"""Invariants every dialect's parser must keep, checked on whole outputs and all their prefixes."""

from __future__ import annotations

import json
from typing import Any

from llamactypes.chat import ChatStreamParser, ParsedMessage, ParserConfig, chat_parse
from llamactypes.chat.stream import fold_deltas
from llamactypes.sampling.constrained import TriggerScanner


def assert_prefix_stable(raw: str, fmt: str, config: ParserConfig, *, calls: bool = True) -> None:
    """Parsing any prefix (partial) never shows what the full parse does not.

    Content and reasoning are prefixes of the final ones; with `calls`, each call
    is a final call whose arguments so far are a prefix of its final arguments
    (not checked for malformed output: a call being written may turn out broken).
    """
    final = chat_parse(raw, fmt, config)
    for end in range(len(raw) + 1):
        part = chat_parse(raw[:end], fmt, config, partial=True)
        where = f"prefix {raw[:end]!r}"
        assert final.content.startswith(part.content), f"{where}: content {part.content!r} vs {final.content!r}"
        assert final.reasoning.startswith(part.reasoning), f"{where}: reasoning {part.reasoning!r}"
        if not calls:
            continue
        assert len(part.tool_calls) <= len(final.tool_calls), f"{where}: {part.tool_calls}"
        for got, want in zip(part.tool_calls, final.tool_calls):
            assert got.name == want.name, where
            assert want.arguments.startswith(got.arguments), f"{where}: {got.arguments!r} vs {want.arguments!r}"


def assert_same_message(got: ParsedMessage, want: ParsedMessage, *, ids: bool = False) -> None:
    assert got.content == want.content
    assert got.reasoning == want.reasoning
    assert [(c.name, c.arguments) for c in got.tool_calls] == [(c.name, c.arguments) for c in want.tool_calls]
    if ids:
        assert [c.id for c in got.tool_calls] == [c.id for c in want.tool_calls]


def stream(raw: str, fmt: str, config: ParserConfig, chunk: int, *, stream_arguments: bool = True) -> ParsedMessage:
    """Feed `raw` in pieces of `chunk` characters; check delta invariants; return the folded message."""
    parser = ChatStreamParser(fmt, config, stream_arguments=stream_arguments)
    deltas = []
    for start in range(0, len(raw), chunk):
        deltas += parser.feed(raw[start : start + chunk])
    deltas += parser.finish()
    seen: set[int] = set()
    for delta in deltas:
        if delta.kind == "tool_call":
            first = delta.index not in seen
            assert (delta.id is not None and delta.name is not None) == first, f"id/name only on first delta: {delta}"
            assert delta.index == len(seen) if first else delta.index in seen
            seen.add(delta.index)  # type: ignore[arg-type]
        else:
            assert delta.text, "no empty text deltas"
    folded = fold_deltas(deltas)
    assert_same_message(parser.message, folded, ids=True)
    ids = [c.id for c in folded.tool_calls]
    assert len(set(ids)) == len(ids) and all(ids), ids
    return folded


def arguments_are_json(message: ParsedMessage) -> None:
    for call in message.tool_calls:
        assert isinstance(json.loads(call.arguments), dict), call


def grammar_start(build: Any, output: str) -> int | None:
    """Where the lazy grammar of `build` would take over in `output` (None: no trigger fires): the
    sampler's own trigger scanner, fed one character at a time as a stream would."""
    scanner = TriggerScanner(build.trigger_patterns, build.trigger_words)
    for char in output:
        start = scanner.feed(char)
        if start is not None:
            return start
    return None
