"""DeepSeek R1 and V3.1: ``<think>`` reasoning, then calls between full-width markers.

R1 (and its Qwen/Llama distills)::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
    ```json
    {"arg": 1}
    ```<｜tool▁call▁end｜><｜tool▁calls▁end｜>

V3.1 drops the type and the code fence::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{"arg": 1}<｜tool▁call▁end｜><｜tool▁calls▁end｜>

R1 templates end the prompt inside ``<think>`` (thinking forced open); V3.1 does
when thinking is enabled. The parser accepts either call shape for both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, literal
from llamactypes.chat.formats._json import skip_ws
from llamactypes.chat.formats.base import Block, BlockStatus, Call, ChatFormat, object_arguments, startswith_partial
from llamactypes.chat.types import ParserConfig

__all__ = ["DeepSeekR1Format", "DeepSeekV31Format"]

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
FENCE_OPEN, FENCE_CLOSE = "```json", "```"
_HEAD = re.compile(r"[^<\n｜]*")


class DeepSeekR1Format(ChatFormat):
    """R1 calls: ``function<｜tool▁sep｜>NAME\\n```json\\n{...}\\n```<｜tool▁call▁end｜>``."""

    id = "deepseek-r1"
    start_markers = (CALLS_BEGIN, CALL_BEGIN)
    special_markers = (CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP, "<think>", "</think>")
    fenced = True

    def detect(self, source: str) -> bool:
        return CALLS_BEGIN in source

    def supports_thinking(self, source: str) -> bool:
        return True

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        return CALLS_BEGIN + "".join(self._call_text(c) for c in calls) + CALLS_END

    def _call_text(self, call: dict[str, Any]) -> str:
        args = json.dumps(call["function"]["arguments"], ensure_ascii=False)
        return f"{CALL_BEGIN}function{SEP}{call['function']['name']}\n{FENCE_OPEN}\n{args}\n{FENCE_CLOSE}{CALL_END}"

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        calls = []
        for i, tool in enumerate(tools):
            args = builder.schema(tool["function"]["parameters"], f"tool-{i}-args")
            calls.append(self._call_rule(tool["function"]["name"], args))
        call = builder.alternatives("fmt-call", calls)
        body = f"{call} ( {builder.ws()} {call} )*" if parallel else call  # R1 puts a line break between calls
        return f"{literal(CALLS_BEGIN)} {body} {literal(CALLS_END)}"

    def _call_rule(self, name: str, args: str) -> str:
        head = literal(f"{CALL_BEGIN}function{SEP}{name}\n{FENCE_OPEN}\n")
        return f"{head} {args} {literal(chr(10) + FENCE_CLOSE + CALL_END)}"

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        calls: list[Call] = []
        i = skip_ws(text, pos + len(CALLS_BEGIN)) if marker == CALLS_BEGIN else pos
        while True:
            at_call = startswith_partial(text, i, CALL_BEGIN)
            at_end = startswith_partial(text, i, CALLS_END)
            if at_end:
                return Block(BlockStatus.DONE, calls, skip_ws(text, i + len(CALLS_END)))
            if at_call is None or at_end is None:
                if partial or not calls:
                    return Block.partial(calls)
                return Block(BlockStatus.DONE, calls, i)
            if not at_call:
                if calls:  # tolerate a missing <｜tool▁calls▁end｜>
                    return Block(BlockStatus.DONE, calls, i)
                return Block.fail("expected <｜tool▁call▁begin｜>")
            block = self._one_call(text, i + len(CALL_BEGIN), config, partial)
            if block.status is not BlockStatus.DONE:
                block.calls[:0] = calls
                return block
            calls.extend(block.calls)
            i = skip_ws(text, block.end)

    def _one_call(self, text: str, i: int, config: ParserConfig, partial: bool) -> Block:
        """One call after ``<｜tool▁call▁begin｜>``, in R1 or V3.1 shape."""
        n = len(text)
        head = _HEAD.match(text, i).group()
        i += len(head)
        found = startswith_partial(text, i, SEP)
        if not found:
            return Block.partial() if found is None else Block.fail("expected <｜tool▁sep｜>")
        i += len(SEP)
        if head.strip() == "function":  # R1: the name runs to the end of the line
            name = _HEAD.match(text, i).group()
            i += len(name)
            if i >= n:
                return Block.partial()
            if text[i] != "\n":
                return Block.fail("expected a newline after the tool name")
            name = name.strip()
            i = skip_ws(text, i)
            fence = startswith_partial(text, i, FENCE_OPEN)
            if fence is None:
                return Block.partial()
            if fence:
                i = skip_ws(text, i + len(FENCE_OPEN))
        else:
            name = head.strip()
        if not config.knows(name):
            return Block.fail(f"unknown tool {name!r}")
        args = object_arguments(text, i, name)
        if args.status is not BlockStatus.DONE:
            return args
        call = args.calls[0]
        j = skip_ws(text, args.end)
        for closer in (FENCE_CLOSE, CALL_END):
            found = startswith_partial(text, j, closer)
            if found is None:
                return Block.partial([call]) if partial else Block(BlockStatus.DONE, [call], len(text))
            if found:
                j = skip_ws(text, j + len(closer))
        return Block(BlockStatus.DONE, [call], j)


class DeepSeekV31Format(DeepSeekR1Format):
    """V3.1 calls: ``NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>``."""

    id = "deepseek-v3.1"

    def detect(self, source: str) -> bool:
        return CALLS_BEGIN in source and "message['prefix'] is defined" in source

    def supports_thinking(self, source: str) -> bool:
        return "<think>" in source

    def _call_text(self, call: dict[str, Any]) -> str:
        args = json.dumps(call["function"]["arguments"], ensure_ascii=False)
        return f"{CALL_BEGIN}{call['function']['name']}{SEP}{args}{CALL_END}"

    def _call_rule(self, name: str, args: str) -> str:
        return f"{literal(CALL_BEGIN + name + SEP)} {args} {literal(CALL_END)}"
