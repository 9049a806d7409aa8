"""GPT-OSS "harmony": the reply is a sequence of channel messages.

    <|channel|>analysis<|message|>reasoning<|end|>
    <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "P"}<|call|>
    <|start|>assistant<|channel|>final<|message|>the answer

The ``analysis`` channel is reasoning; a message addressed ``to=functions.NAME``
(in the role header or the channel header) is a call whose body is the JSON
arguments; ``final`` and ``commentary`` messages are content. The prompt ends
with ``<|start|>assistant``, so the output starts at a channel header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, literal
from llamactypes.chat.formats._json import Scan, scan_object, skip_ws
from llamactypes.chat.formats.base import Call, ChatFormat, ParseResult, held_suffix, logger, startswith_partial
from llamactypes.chat.types import ParserConfig

__all__ = ["GptOssFormat"]

START, CHANNEL, MESSAGE = "<|start|>", "<|channel|>", "<|message|>"
END, CALL, RETURN, CONSTRAIN = "<|end|>", "<|call|>", "<|return|>", "<|constrain|>"
_TERMINATORS = (END, CALL, RETURN, START)
_CHANNEL = re.compile(r"<\|channel\|>\s*(\w+)")
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")


class GptOssFormat(ChatFormat):
    """Harmony channels; calls are messages addressed to ``functions.NAME``."""

    id = "gpt-oss"
    think_tags = None
    special_markers = (START, CHANNEL, MESSAGE, END, CALL, RETURN, CONSTRAIN)
    additional_stops = (CALL,)
    keeps_developer = True
    content_trigger = r"<\|channel\|>final(?: ?<\|constrain\|>json)?<\|message\|>()"

    def detect(self, source: str) -> bool:
        # LLM-jp's harmony variant spaces its tokens differently: left to the generic format.
        return CHANNEL in source and "llm-jp-harmony" not in source

    def supports_thinking(self, source: str) -> bool:
        return True

    def adapt_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The template reads reasoning from ``thinking``; it refuses content + thinking + calls."""
        out = []
        for message in messages:
            message = dict(message)
            reasoning = message.pop("reasoning_content", None)
            if reasoning and not (message.get("tool_calls") and message.get("content")):
                message["thinking"] = reasoning
            out.append(message)
        return out

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        return "".join(
            f"{START}assistant{CHANNEL}commentary to=functions.{c['function']['name']} {CONSTRAIN}json{MESSAGE}"
            + json.dumps(c["function"]["arguments"], ensure_ascii=False)
            + CALL
            for c in calls
        )

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        header = builder.rule(
            "fmt-header",
            f'( {literal(CHANNEL)} ( "commentary" | "analysis" ) )? " "? ( {literal(CONSTRAIN)} " "? )? "json"?',
        )
        calls = []
        for i, tool in enumerate(tools):
            args = builder.schema(tool["function"]["parameters"], f"tool-{i}-args")
            calls.append(f"{literal(tool['function']['name'])} {header} {literal(MESSAGE)} {args}")
        call = builder.rule("fmt-one", f'" to=functions." {builder.alternatives("fmt-call", calls)}')
        if not parallel:
            return call
        # Calls after the first are messages of their own, as the templates render them.
        return f"{call} ( {literal(END + '<|start|>assistant')} {call} )*"

    def trigger_regexes(self, tools: Sequence[dict[str, Any]]) -> list[str]:
        return [r"(?:<\|channel\|>(?:commentary|analysis)|<\|start\|>assistant|^)( to=functions\.)"]

    def parse(self, text: str, config: ParserConfig, partial: bool) -> ParseResult:
        result = ParseResult()
        reasoning: list[str] = []
        content: list[str] = []
        pos, n = 0, len(text)
        if not _maybe_header(text):
            result.content = text  # not harmony at all: plain text
            return result
        while pos < n:
            if text.startswith(START, pos):
                pos += len(START)
                if text.startswith("assistant", pos):
                    pos += len("assistant")
            head_end = text.find(MESSAGE, pos)
            if head_end < 0:
                if not partial:
                    logger.warning("chat output kept as content (gpt-oss): unfinished message header")
                    content.append(text[pos:])
                break
            header = text[pos:head_end]
            if header.count(CHANNEL) > 1:  # a stray header with no message ('commentary to=assistant'): the last counts
                header = header[header.rindex(CHANNEL):]
            channel = _CHANNEL.search(header)
            recipient = _RECIPIENT.search(header)
            if channel is None and recipient is None:
                content.append(text[pos:])
                break
            body_start = head_end + len(MESSAGE)
            term, marker = _find_terminator(text, body_start)
            body = text[body_start:term]
            if marker == "" and partial:
                body = body[: len(body) - held_suffix(body, _TERMINATORS)]
            if recipient and recipient.group(1).startswith("functions."):
                reason = self._call(recipient.group(1)[10:], body, config, partial, marker != "", result)
                if reason:
                    if not partial:
                        logger.warning("chat output kept as content (gpt-oss): %s", reason)
                    content.append(text[pos:])
                    break
            elif channel is not None and channel.group(1) == "analysis":
                reasoning.append(body)
            else:
                content.append(body)
            if not marker:
                break
            pos = term + (len(marker) if marker != START else 0)
        result.reasoning = "\n".join(p for p in reasoning if p)
        result.content = "\n".join(p for p in content if p)
        return result

    @staticmethod
    def _call(name: str, body: str, config: ParserConfig, partial: bool, closed: bool, result: ParseResult) -> str:
        """Record a call from a message body; returns a failure reason or ""."""
        if not config.knows(name):
            return f"unknown tool {name!r}"
        i = skip_ws(body, 0)
        if i >= len(body):
            if partial and not closed:
                result.calls.append(Call(name, "", done=False))
                return ""
            return "tool call without arguments"
        if body[i] != "{":
            return "tool call arguments are not a JSON object"
        scan = scan_object(body, i)
        if scan.status is Scan.BAD:
            return "invalid JSON in tool call arguments"
        if scan.status is Scan.PARTIAL:
            if not partial:
                return "unfinished tool call arguments"
            result.calls.append(Call(name, body[i:], done=False))
            return ""
        result.calls.append(Call(name, body[i : scan.end], done=closed or not partial))
        return ""


def _find_terminator(text: str, pos: int) -> tuple[int, str]:
    """The first message terminator at or after `pos`: (index, marker), or (len, "")."""
    best, found = len(text), ""
    for marker in _TERMINATORS:
        i = text.find(marker, pos)
        if 0 <= i < best:
            best, found = i, marker
    return best, found


def _maybe_header(text: str) -> bool:
    """Whether `text` (no ``<|message|>`` yet) may still be a harmony header."""
    return any(startswith_partial(text, 0, m) is not False for m in (CHANNEL, " to=", START))
