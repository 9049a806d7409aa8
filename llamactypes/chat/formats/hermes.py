"""Hermes 2 Pro / Qwen 2.5 / Qwen 3: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

The most common open-model dialect (NousResearch Hermes, Qwen 2.5 and 3, QwQ,
MiMo, Granite 4, ...). Each call is one JSON object wrapped in
``<tool_call>``/``</tool_call>``; several calls are several blocks. Qwen 3 and
QwQ think in ``<think>...</think>`` first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, call_schema, literal
from llamactypes.chat.formats.base import Block, ChatFormat, json_call_block
from llamactypes.chat.types import ParserConfig

__all__ = ["HermesFormat"]

OPEN, CLOSE = "<tool_call>", "</tool_call>"


class HermesFormat(ChatFormat):
    """``<tool_call>`` JSON blocks, optionally after a ``<think>`` block."""

    id = "hermes"
    start_markers = (OPEN,)
    special_markers = (OPEN, CLOSE, "<think>", "</think>")

    def detect(self, source: str) -> bool:
        if OPEN not in source or "<arg_key>" in source or "<invoke" in source or "<tool_calls>" in source:
            return False
        return '{"name": ' in source or '{\\"name\\": ' in source or "{\"name\": '" in source

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        return "\n".join(
            f"{OPEN}\n"
            + json.dumps({"name": c["function"]["name"], "arguments": c["function"]["arguments"]}, ensure_ascii=False)
            + f"\n{CLOSE}"
            for c in calls
        )

    def tool_instructions(self, example: str, parallel: bool = False) -> str:
        return (
            "For each function call, return a json object with function name and arguments "
            f"within {OPEN}{CLOSE} XML tags:\n{example}"
        )

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        schema = {"anyOf": [call_schema(t["function"]["name"], t["function"]["parameters"]) for t in tools]}
        call = builder.schema(schema, "tool-call")
        ws = builder.ws()
        block = builder.rule("fmt-block", f"{literal(OPEN)} {ws} {call} {ws} {literal(CLOSE)}")
        return f"{block} ( {ws} {block} )*" if parallel else block

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        return json_call_block(text, pos + len(marker), config, partial, CLOSE)
