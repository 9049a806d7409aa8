"""Llama 3.1 / 3.2 / 3.3: the whole reply is a JSON call ``{"name": ..., "parameters": {...}}``.

Meta's templates ask for custom tool calls as a bare JSON object (the model
sometimes writes ``"arguments"`` or a leading ``"type": "function"``; both are
accepted), optionally after ``<|python_tag|>``. A reply that starts with ``{``
but is not a call to a known tool is content (the user may have asked for
JSON). Several calls may follow each other, separated by ``;`` or whitespace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, call_schema, literal
from llamactypes.chat.formats._json import scan_object, skip_ws
from llamactypes.chat.formats.base import Block, BlockStatus, Call, ChatFormat, ParseResult, call_from_object, logger
from llamactypes.chat.types import ParserConfig

__all__ = ["Llama3Format"]

PYTHON_TAG = "<|python_tag|>"
_KEYS = {"name_key": "name", "args_keys": ("parameters", "arguments")}


class Llama3Format(ChatFormat):
    """Bare JSON calls at the start of the reply, or after ``<|python_tag|>``."""

    id = "llama3"
    think_tags = None
    start_markers = (PYTHON_TAG,)
    special_markers = (PYTHON_TAG,)
    additional_stops = ("<|eom_id|>",)

    def detect(self, source: str) -> bool:
        if "<function=" in source:  # functionary v3.1 writes <function=NAME>{...}</function>
            return False
        return "<|start_header_id|>" in source and ("ipython" in source or PYTHON_TAG in source)

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        return "; ".join(
            json.dumps({"name": c["function"]["name"], "parameters": c["function"]["arguments"]}, ensure_ascii=False)
            for c in calls
        )

    def tool_instructions(self, example: str, parallel: bool = False) -> str:
        return (
            "To call a function, respond only with a JSON object of the form "
            f'{{"name": function name, "parameters": dictionary of argument name and its value}}, e.g.:\n{example}'
        )

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        schemas = [
            call_schema(t["function"]["name"], t["function"]["parameters"], args_key="parameters") for t in tools
        ]
        call = builder.schema({"anyOf": schemas}, "tool-call")
        ws = builder.ws()
        first = f"( {literal(PYTHON_TAG)} )? {call}"
        return f"{first} ( {ws} {literal(';')} {ws} {call} )*" if parallel else first

    def trigger_regexes(self, tools: Sequence[dict[str, Any]]) -> list[str]:
        return [
            r'^\s*(\{\s*(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*")',
            f"({re.escape(PYTHON_TAG)})",
        ]

    def parse(self, text: str, config: ParserConfig, partial: bool) -> ParseResult:
        i = skip_ws(text, 0)
        if i < len(text) and text[i] == "{":
            result = ParseResult()
            block = self.parse_block(text, i, "", config, partial)
            if block.status is BlockStatus.DONE:
                result.calls.extend(block.calls)
                self.scan_content(text, block.end, config, partial, result)
                return result
            if block.status is BlockStatus.PARTIAL and partial:
                for call in block.calls:
                    call.done = False
                result.calls.extend(block.calls)
                return result
            if not partial:
                logger.warning("chat output kept as content (llama3): %s", block.reason)
            result.content = text
            return result
        if partial and i == len(text):
            return ParseResult()
        return super().parse(text, config, partial)

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        """One or more JSON calls from `pos` (after `marker`), separated by ``;``."""
        n = len(text)
        calls: list[Call] = []
        i = skip_ws(text, pos + len(marker))
        while True:
            if i >= n:
                return Block.partial(calls) if partial or not calls else Block(BlockStatus.DONE, calls, n)
            if text[i] != "{":
                return Block(BlockStatus.DONE, calls, i) if calls else Block.fail("expected a JSON call")
            scan = scan_object(text, i)
            if scan.order and scan.order[0] == "type":
                keys = scan.order[1:]
            else:
                keys = scan.order
            if keys and keys[0] not in ("name",):
                return Block.fail("JSON object is not a tool call")
            call, reason = call_from_object(text, scan, config, **_KEYS)
            if reason:
                return Block.fail(reason)
            if call is None or not call.done:
                return Block.partial(calls + ([call] if call else []))
            calls.append(call)
            i = skip_ws(text, scan.end)
            if i < n and text[i] == ";":
                i = skip_ws(text, i + 1)
