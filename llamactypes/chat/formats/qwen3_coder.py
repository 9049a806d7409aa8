"""Qwen3-Coder XML calls (also Qwen 3.5, Nemotron 3 Nano, StepFun 3.5, Seed-OSS):

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>
    </tool_call>

Parameter values are raw text, not JSON: a string parameter is taken as
written (one newline trimmed each side), other types are decoded as JSON using
the tool's schema (`ParserConfig.param_types`). The arguments are rebuilt as a
JSON object; while streaming, a string value grows inside its quotes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, literal
from llamactypes.chat.formats.base import Block, BlockStatus, Call, ChatFormat, held_suffix, startswith_partial
from llamactypes.chat.formats._json import json_item, param_value, skip_ws
from llamactypes.chat.types import ParserConfig

__all__ = ["Qwen3CoderFormat"]

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FUNC, FUNC_END = "<function=", "</function>"
PARAM, PARAM_END = "<parameter=", "</parameter>"
NL = "\n"
_NAME = re.compile(r"[^>\n<]*")


class Qwen3CoderFormat(ChatFormat):
    """``<tool_call><function=NAME><parameter=P>value</parameter></function></tool_call>``."""

    id = "qwen3-coder"
    start_markers = (OPEN, FUNC)
    special_markers = (OPEN, CLOSE, "<think>", "</think>")

    def detect(self, source: str) -> bool:
        return FUNC in source and PARAM in source and OPEN in source

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        out = []
        for c in calls:
            params = "".join(
                f"{PARAM}{k}>\n{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}\n{PARAM_END}\n"
                for k, v in c["function"]["arguments"].items()
            )
            out.append(f"{OPEN}\n{FUNC}{c['function']['name']}>\n{params}{FUNC_END}\n{CLOSE}")
        return "\n".join(out)

    def tool_instructions(self, example: str, parallel: bool = False) -> str:
        return f"To call a function, reply in this exact format:\n{example}"

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        text_value = builder.until("fmt-xml-text", NL + PARAM_END)
        calls = []
        for i, tool in enumerate(tools):
            fn = tool["function"]
            params = fn["parameters"]
            required = set(params.get("required") or ())
            parts = []
            for j, (pname, pschema) in enumerate((params.get("properties") or {}).items()):
                if isinstance(pschema, dict) and pschema.get("type") == "string":
                    value = text_value
                else:
                    value = builder.schema(pschema if isinstance(pschema, dict) else {}, f"tool-{i}-p{j}")
                head, tail = literal(f"{PARAM}{pname}>\n"), literal(f"\n{PARAM_END}\n")
                part = f"{head} {value} {tail}"
                parts.append(part if pname in required else f"( {part} )?")
            body = " ".join(parts) if parts else '""'
            calls.append(f"{literal(FUNC + fn['name'] + '>' + NL)} {body} {literal(FUNC_END)}")
        call = builder.alternatives("fmt-function", calls)
        ws = builder.ws()
        block = builder.rule("fmt-block", f"{literal(OPEN)} {ws} {call} {ws} {literal(CLOSE)}")
        return f"{block} ( {ws} {block} )*" if parallel else block

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        n = len(text)
        i = pos
        if marker == OPEN:
            i = skip_ws(text, i + len(OPEN))
        found = startswith_partial(text, i, FUNC)
        if not found:
            return Block.partial() if found is None else Block.fail(f"expected {FUNC!r}")
        i += len(FUNC)
        name = _NAME.match(text, i).group()
        i += len(name)
        if i >= n:
            return Block.partial()
        if text[i] != ">" or not name:
            return Block.fail("malformed function name")
        if not config.knows(name):
            return Block.fail(f"unknown tool {name!r}")
        types = config.param_types.get(name, {})
        items: list[str] = []
        i = skip_ws(text, i + 1)
        while True:
            at_end = startswith_partial(text, i, FUNC_END)
            if at_end:
                return self._finish(text, i + len(FUNC_END), name, items, partial)
            at_param = startswith_partial(text, i, PARAM)
            if at_end is None or at_param is None:
                return Block.partial([Call(name, "{" + ", ".join(items))])
            if not at_param:
                return Block.fail(f"expected {PARAM!r} or {FUNC_END!r}")
            i, item, pending = self._parameter(text, i + len(PARAM), types)
            if item is None:
                if i < 0:
                    return Block.fail("malformed parameter")
                args = "{" + ", ".join(items + ([pending] if pending else []))
                return Block.partial([Call(name, args)])
            items.append(item)
            i = skip_ws(text, i)

    @staticmethod
    def _parameter(text: str, i: int, types: dict[str, str]) -> tuple[int, str | None, str]:
        """Parse ``NAME>\\nvalue\\n</parameter>`` from `i` (just after ``<parameter=``).

        Returns (end, item, "") for a complete parameter, (0, None, pending) when
        the text runs out (`pending` the streamable prefix of the item), or
        (-1, None, "") when malformed.
        """
        n = len(text)
        key = _NAME.match(text, i).group()
        i += len(key)
        if i >= n:
            return 0, None, ""
        if text[i] != ">" or not key:
            return -1, None, ""
        i += 1
        if i < n and text[i] == "\n":
            i += 1
        close = text.find(PARAM_END, i)
        kind = types.get(key)
        if close < 0:
            if kind != "string" or i >= n:
                return 0, None, ""
            value = text[i:]
            value = value[: len(value) - held_suffix(value, ("\n" + PARAM_END,))]
            return 0, None, json_item(key, value)[:-1]
        raw = text[i:close]
        if raw.endswith("\n"):
            raw = raw[:-1]
        return close + len(PARAM_END), json_item(key, param_value(raw, kind)), ""

    @staticmethod
    def _finish(text: str, i: int, name: str, items: list[str], partial: bool) -> Block:
        """After ``</function>``: an optional ``</tool_call>`` closes the block."""
        call = Call(name, "{" + ", ".join(items) + "}")
        i = skip_ws(text, i)
        found = startswith_partial(text, i, CLOSE)
        if found is None and partial:
            return Block.partial([call])
        if found:
            i = skip_ws(text, i + len(CLOSE))
        return Block(BlockStatus.DONE, [call], i)
