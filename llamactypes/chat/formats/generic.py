"""The generic JSON format: lets any model call tools, whatever its template.

Models whose templates know no tool-call syntax (ChatML models such as SmolLM2,
Gemma, Phi, ...) are told about the tools in the system prompt and a grammar
forces them to answer with one JSON object:

    {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    {"tool_calls": [{"name": ..., "arguments": ...}, ...]}     (parallel calls)
    {"response": "plain answer"}

This mirrors llama.cpp's generic handler. Without tools (or with
``tool_choice="none"``) the output is plain text and parsed as such.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, call_schema
from llamactypes.chat.formats._json import Scan, decode_string_prefix, scan_object, scan_value, skip_ws
from llamactypes.chat.formats.base import ChatFormat, ParseResult, call_from_object, logger, scan_call_array
from llamactypes.chat.types import ParserConfig

__all__ = ["GenericFormat", "envelope_schema"]


def envelope_schema(
    tools: Sequence[dict[str, Any]], *, parallel: bool, required: bool, response: dict[str, Any] | None
) -> dict[str, Any]:
    """JSON Schema of the generic answer: a tool call (or several), or a response."""
    calls = [call_schema(t["function"]["name"], t["function"]["parameters"]) for t in tools]
    one_call: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
    tool_part: dict[str, Any] = {"type": "object", "properties": {"tool_call": one_call}, "required": ["tool_call"]}
    if parallel:
        several = {
            "type": "object",
            "properties": {"tool_calls": {"type": "array", "items": one_call, "minItems": 1}},
            "required": ["tool_calls"],
        }
        tool_part = {"anyOf": [tool_part, several]}
    if required:
        return tool_part
    response_part = {
        "type": "object",
        "properties": {"response": response if response is not None else {"type": "string"}},
        "required": ["response"],
    }
    return {"anyOf": [tool_part, response_part]}


class GenericFormat(ChatFormat):
    """JSON envelope answers; reasoning split when the template thinks with ``<think>``."""

    id = "generic"

    def detect(self, source: str) -> bool:
        return True

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        items = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in calls]
        if len(items) == 1:
            return json.dumps({"tool_call": items[0]}, ensure_ascii=False)
        return json.dumps({"tool_calls": items}, ensure_ascii=False)

    def tool_instructions(self, example: str, parallel: bool = False) -> str:
        several = "; `tool_calls` with a list of them calls several at once" if parallel else ""
        return (
            f"Respond in JSON format, either with `tool_call` (a request to call a tool{several}) or with "
            "`response` (a reply to the user's request), for example:\n"
            f"{example}\nor\n"
            '{"response": "..."}'
        )

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        return builder.schema(envelope_schema(tools, parallel=parallel, required=False, response=None), "answer")

    def content_runs_to_end(self, config: ParserConfig) -> bool:
        return not config.json_envelope  # no tools: the answer is the text itself

    def parse(self, text: str, config: ParserConfig, partial: bool) -> ParseResult:
        reasoning, pos = self.split_reasoning(text, config, partial)
        result = ParseResult(reasoning=reasoning)
        if pos is None:
            return result
        if not config.json_envelope:
            result.content = text[pos:]
            return result
        reason = self._parse_envelope(text, pos, config, partial, result)
        if reason:
            if not partial:
                logger.warning("chat output kept as content (generic): %s", reason)
            result.content, result.calls = text[pos:], []
        return result

    def _parse_envelope(
        self, text: str, pos: int, config: ParserConfig, partial: bool, result: ParseResult
    ) -> str:
        """Fill `result` from the JSON envelope; returns a failure reason, or ""."""
        i = skip_ws(text, pos)
        if i >= len(text):
            return "" if partial else "empty answer"
        if text[i] != "{":
            return "answer is not a JSON object"
        scan = scan_object(text, i)
        if not scan.order:
            if scan.status is Scan.PARTIAL and partial:
                return ""
            return "answer has neither 'response' nor 'tool_call'"
        key = scan.order[0]
        start, end = scan.members[key]
        if key == "response":
            return self._response(text, scan, start, end, partial, result)
        if key == "tool_call":
            if text[start] != "{":
                return "tool_call is not an object"
            call, reason = call_from_object(text, scan_object(text, start), config)
            calls = [call] if call is not None else []
            inner_ok = end is not None
        elif key == "tool_calls":
            if text[start] != "[":
                return "tool_calls is not a list"
            status, calls, _, reason = scan_call_array(text, start, config)
            inner_ok = status is Scan.OK
        else:
            return f"unexpected key {key!r}"
        if reason or scan.status is Scan.BAD:
            return reason or "invalid JSON"
        if not inner_ok and not partial:
            return "unfinished tool call"
        for call in calls:
            call.done = inner_ok and scan.status is Scan.OK
        result.calls = calls
        return ""

    @staticmethod
    def _response(
        text: str, scan: Any, start: int, end: int | None, partial: bool, result: ParseResult
    ) -> str:
        """Content from ``{"response": ...}``: a string decoded, any other value as JSON text.

        Text after the value is appended raw when the JSON breaks (and after a
        complete object), so content already streamed is never taken back.
        """
        if text[start] == '"':
            status, stop = scan_value(text, start)
            if status is Scan.BAD:
                result.content = decode_string_prefix(text[:stop], start)[0] + text[stop:]
                rest = len(text)
            else:
                result.content, closed = decode_string_prefix(text, start)
                rest = stop if closed else len(text)
        else:
            rest = end if end is not None else len(text)
            result.content = text[start:rest]
        if scan.status is Scan.OK:
            result.content += text[skip_ws(text, scan.end) :]
        elif scan.status is Scan.BAD or rest < len(text) and not partial:
            result.content += text[rest:]
        if scan.status is Scan.BAD and not partial:
            logger.warning("chat output kept as content (generic): invalid JSON after the response")
        return ""
