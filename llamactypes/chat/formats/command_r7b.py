"""Cohere Command R7B: marker-delimited thinking, actions and response.

    <|START_THINKING|>plan<|END_THINKING|>
    <|START_ACTION|>[{"tool_call_id": "0", "tool_name": "f", "parameters": {...}}]<|END_ACTION|>
    <|START_RESPONSE|>text<|END_RESPONSE|>

The response markers are dropped from content; the model's ``tool_call_id``
becomes the call id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, call_schema, literal
from llamactypes.chat.formats._json import Scan, skip_ws
from llamactypes.chat.formats.base import Block, BlockStatus, ChatFormat, scan_call_array, startswith_partial
from llamactypes.chat.types import ParserConfig

__all__ = ["CommandR7BFormat"]

START_ACTION, END_ACTION = "<|START_ACTION|>", "<|END_ACTION|>"
START_RESPONSE, END_RESPONSE = "<|START_RESPONSE|>", "<|END_RESPONSE|>"
START_TEXT, END_TEXT = "<|START_TEXT|>", "<|END_TEXT|>"  # Cohere2 MoE wraps its answers in these
_KEYS = {"name_key": "tool_name", "args_keys": ("parameters",), "id_key": "tool_call_id"}


class CommandR7BFormat(ChatFormat):
    """Actions as a JSON list between ``<|START_ACTION|>`` and ``<|END_ACTION|>``."""

    pretty_json = True  # the template indents its list of actions (the grammar keeps line breaks)
    id = "command-r7b"
    think_tags = ("<|START_THINKING|>", "<|END_THINKING|>")
    start_markers = (START_ACTION,)
    hidden_markers = (START_RESPONSE, END_RESPONSE, START_TEXT, END_TEXT)
    special_markers = (START_ACTION, END_ACTION, START_RESPONSE, END_RESPONSE, START_TEXT, END_TEXT, *think_tags)

    def detect(self, source: str) -> bool:
        # Cohere2 MoE (<|START_TEXT|> content) writes actions differently: generic.
        return "<|START_THINKING|>" in source and START_ACTION in source and "<|START_TEXT|>" not in source

    def supports_thinking(self, source: str) -> bool:
        return True

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        items = [
            {"tool_call_id": str(i), "tool_name": c["function"]["name"], "parameters": c["function"]["arguments"]}
            for i, c in enumerate(calls)
        ]
        return START_ACTION + json.dumps(items, ensure_ascii=False) + END_ACTION

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        id_schema = {"type": "string", "pattern": "^[0-9]{1,10}$"}
        calls = [
            call_schema(
                t["function"]["name"],
                t["function"]["parameters"],
                name_key="tool_name",
                args_key="parameters",
                leading={"tool_call_id": id_schema},
            )
            for t in tools
        ]
        schema: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}, "minItems": 1}
        if not parallel:
            schema["maxItems"] = 1
        ws = builder.ws()
        return f"{literal(START_ACTION)} {ws} {builder.schema(schema, 'tool-calls')} {ws} {literal(END_ACTION)}"

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        i = skip_ws(text, pos + len(marker))
        if i >= len(text):
            return Block.partial()
        if text[i] != "[":
            return Block.fail("<|START_ACTION|> is not followed by a JSON list")
        status, calls, end, reason = scan_call_array(text, i, config, **_KEYS)
        if reason or status is Scan.BAD:
            return Block.fail(reason or "invalid JSON in action")
        if status is Scan.PARTIAL:
            return Block.partial(calls)
        end = skip_ws(text, end)
        found = startswith_partial(text, end, END_ACTION)
        if found is None and partial:
            return Block.partial(calls)
        if found:
            end = skip_ws(text, end + len(END_ACTION))
        return Block(BlockStatus.DONE, calls, end)
