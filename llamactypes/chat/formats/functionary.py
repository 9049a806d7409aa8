"""Functionary v3.2 (MeetKai): every block of the reply is ``>>>recipient\\n{body}``.

    all\\nLet me check.>>>get_weather\\n{"city": "Paris"}>>>get_time\\n{"tz": "CET"}

The recipient ``all`` means the body is content; any other recipient is a call
whose body is its JSON arguments, and a tool named ``python`` may get raw code
(read as ``{"code": ...}``, as Functionary writes code for its interpreter).
The generation prompt already writes the first ``>>>``, so the output starts
with a bare recipient; a ``>>>`` repeated there is tolerated.

Hand-written, not derived: a derived dialect is literals around slots inside
the turn, but here the first call's opening marker lives in the prompt and
content is itself a block addressed to ``all``, so only the recipient's name
tells content from a call. For the same reason the lazy grammar's trigger
names the tools (a bare recipient line ``get_weather\\n``, at the start or
after ``>>>``), and a recipient line is held back while streaming until its
line break says what it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, literal
from llamactypes.chat.formats._json import skip_ws
from llamactypes.chat.formats.base import (
    Block,
    BlockStatus,
    Call,
    ChatFormat,
    ParseResult,
    held_suffix,
    logger,
    object_arguments,
)
from llamactypes.chat.types import ParserConfig

__all__ = ["FunctionaryV32Format"]

MARK, ALL, PYTHON = ">>>", "all", "python"
_NAME = re.compile(r"[\w.\-]+")
#: A recipient line this long without its line break is not a recipient: it is content.
_MAX_NAME = 128


def _may_be_name(head: str) -> bool:
    """Whether an unfinished recipient line may still be a recipient (streaming holds it back)."""
    return len(head) <= _MAX_NAME and (not head or _NAME.fullmatch(head) is not None)


def _segment(text: str, pos: int, partial: bool) -> tuple[str, int]:
    """Text from `pos` to the next ``>>>``: (text, where the ``>>>`` is, or -1 at the end).

    While streaming, an end that may still become ``>>>`` is held back.
    """
    end = text.find(MARK, pos)
    if end >= 0:
        return text[pos:end], end
    seg = text[pos:]
    if partial:
        seg = seg[: len(seg) - held_suffix(seg, (MARK,))]
    return seg, -1


def _raw_code(name: str, text: str, body: int, partial: bool) -> Block:
    """A ``python`` call whose body is code, not JSON: arguments ``{"code": body}``."""
    code, end = _segment(text, body, partial)
    arguments = json.dumps({"code": code}, ensure_ascii=False)
    if end < 0 and partial:  # the code may go on: its JSON so far, without the closing quote and brace
        return Block.partial([Call(name, arguments[:-2])])
    return Block(BlockStatus.DONE, [Call(name, arguments)], end if end >= 0 else len(text))


class FunctionaryV32Format(ChatFormat):
    """Recipient blocks: ``all`` is content, a tool's name is a call (see the module docstring)."""

    id = "functionary-v3.2"
    think_tags = None
    #: As llama.cpp preserves it (kept only where the vocabulary has it as one token); ``>`` starts every marker.
    special_markers = (MARK + ALL,)
    content_prefix = ALL + "\n"

    def detect(self, source: str) -> bool:
        return MARK + ALL in source

    def adapt_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Past ``python`` calls render as the raw code Functionary writes for them, not as JSON."""
        out = []
        for message in messages:
            calls = message.get("tool_calls")
            if calls and any(_is_code_call(c) for c in calls):
                message = {**message, "tool_calls": [
                    {**c, "function": {**c["function"], "arguments": c["function"]["arguments"]["code"]}}
                    if _is_code_call(c) else c for c in calls]}
            out.append(message)
        return out

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        return "".join(
            f"{MARK}{c['function']['name']}\n" + json.dumps(c["function"]["arguments"], ensure_ascii=False)
            for c in calls
        )

    # -- grammar -------------------------------------------------------------
    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        """Calls as ``name\\n{args}`` joined by ``>>>``, after an optional ``all\\n`` content block.

        The grammar starts where the model's first word, the recipient, starts (the
        prompt wrote the ``>>>``); lazily it starts at the recipient of the first call.
        """
        calls = []
        for i, tool in enumerate(tools):
            name = tool["function"]["name"]
            args = builder.schema(tool["function"]["parameters"], f"tool-{i}-args")
            if name == PYTHON:
                code = builder.until("fmt-code", MARK)
                args = builder.rule(f"fmt-{i}-args", f"{args} | [^{{>\\x20\\t\\n\\r] {code}")
            calls.append(f"{literal(name + chr(10))} {args}")
        call = builder.alternatives("fmt-call", calls)
        content = builder.rule("fmt-content", f"{literal(ALL + chr(10))} {builder.until('fmt-text', MARK)} "
                                              f"{literal(MARK)}")
        body = f"{call} ( {builder.ws()} {literal(MARK)} {call} )*" if parallel else call
        return f"{content}? {body}"

    def trigger_regexes(self, tools: Sequence[dict[str, Any]]) -> list[str]:
        """A recipient line naming a tool, at the start or after ``>>>`` (``all`` stays free)."""
        names = "|".join(re.escape(t["function"]["name"]) for t in tools)
        return [f"(?:^|{re.escape(MARK)})((?:{names})\\n)"] if names else []

    # -- parsing -------------------------------------------------------------
    def parse(self, text: str, config: ParserConfig, partial: bool) -> ParseResult:
        result = ParseResult()
        if partial and MARK.startswith(text):  # nothing, or the start of a repeated ">>>"
            return result
        parts: list[str] = []
        start, pos = 0, (len(MARK) if text.startswith(MARK) else 0)
        while start >= 0:
            start, pos = self._block(text, start, pos, config, partial, result, parts)
        result.content = "\n".join(p for p in parts if p)
        return result

    def _block(
        self, text: str, start: int, pos: int, config: ParserConfig, partial: bool,
        result: ParseResult, parts: list[str],
    ) -> tuple[int, int]:
        """Read the block whose raw text starts at `start` and recipient at `pos`.

        Adds its content or calls; returns where the next block starts and its
        recipient, or (-1, -1) when the output ends here.
        """
        line_end, nxt = text.find("\n", pos), text.find(MARK, pos)
        if line_end < 0 and nxt < 0:  # the recipient line is unfinished
            head = text[pos:]
            if partial and _may_be_name(head):
                return -1, -1
            if partial or head != ALL:
                self._log(partial, f"no recipient line in {head[:40]!r}")
                _add_raw(parts, text[start:pos] + _segment(text, pos, partial)[0])
            return -1, -1
        name = text[pos:line_end] if 0 <= line_end and (nxt < 0 or line_end < nxt) else ""
        if name == ALL:
            return _content(text, line_end + 1, partial, parts)
        if not (_NAME.fullmatch(name) and config.knows(name)):  # no recipient: kept as written
            self._log(partial, f"unknown tool {name!r}" if _NAME.fullmatch(name) else "no recipient line")
            raw, end = _segment(text, pos, partial)
            _add_raw(parts, text[start:pos] + raw)
            return (end, end + len(MARK)) if end >= 0 else (-1, -1)
        block = self._call(name, text, line_end + 1, partial)
        if block.status is BlockStatus.PARTIAL and partial:
            for call in block.calls:
                call.done = False
            result.calls.extend(block.calls)
            return -1, -1
        if block.status is not BlockStatus.DONE:
            self._log(partial, block.reason or f"unfinished tool call {name!r}")
            _add_raw(parts, text[start:])
            return -1, -1
        result.calls.extend(block.calls)
        i = skip_ws(text, block.end)
        if text.startswith(MARK, i):
            return i, i + len(MARK)
        if i >= len(text) or (partial and MARK.startswith(text[i:])):
            return -1, -1
        return _content(text, i, partial, parts)  # text after a call that opens no block is content

    def _log(self, partial: bool, reason: str) -> None:
        if not partial:  # a prefix may still become something else: only the whole output is reported
            logger.warning("chat output kept as content (%s): %s", self.id, reason)

    @staticmethod
    def _call(name: str, text: str, body: int, partial: bool) -> Block:
        """The arguments of a call to `name` starting at `body`: a JSON object, or code for ``python``."""
        i = skip_ws(text, body)
        if partial and (i >= len(text) or (name == PYTHON and MARK.startswith(text[i:]))):
            return Block.partial([Call(name, "")])  # JSON or code: the first character will tell
        if i < len(text) and text[i] == "{":
            return object_arguments(text, i, name)
        if name == PYTHON:  # code, even none: Functionary's interpreter call
            return _raw_code(name, text, body, partial)
        return Block.fail("tool call arguments are not a JSON object")


def _is_code_call(call: dict[str, Any]) -> bool:
    function = call.get("function") or {}
    args = function.get("arguments")
    return function.get("name") == PYTHON and isinstance(args, dict) and list(args) == ["code"] \
        and isinstance(args["code"], str)


def _content(text: str, pos: int, partial: bool, parts: list[str]) -> tuple[int, int]:
    """A content body from `pos` to the next ``>>>`` (a part of its own); returns the next block."""
    seg, end = _segment(text, pos, partial)
    parts.append(seg)
    return (end, end + len(MARK)) if end >= 0 else (-1, -1)


def _add_raw(parts: list[str], raw: str) -> None:
    """Text that is no block (a line that names no tool, a broken call) stays as written, in place."""
    if parts:
        parts[-1] += raw
    else:
        parts.append(raw)
