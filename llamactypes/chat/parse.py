"""`chat_parse`: raw model output back into an assistant message.

The dialect (`ChatBuild.format`) splits the text into reasoning, content and
tool calls (see `formats.base` for the guarantees). Parsing never raises: text
that cannot be read as a call is returned as content and the reason is logged
on the ``llamactypes`` logger.
"""

from __future__ import annotations

from llamactypes.chat.formats import ChatFormat, get_format
from llamactypes.chat.formats.base import ParseResult, logger
from llamactypes.chat.types import ParsedMessage, ParserConfig, ToolCall

__all__ = ["chat_parse", "parse_result"]


def parse_result(raw: str, fmt: ChatFormat, config: ParserConfig, partial: bool) -> ParseResult:
    """The dialect's internal parse, with a last-resort guard: a bug here must not kill a request."""
    try:
        return fmt.parse(raw, config, partial)
    except Exception:  # defensive: parsing model output must never fail a request
        logger.exception("chat output parser %s failed; returning the output as content", fmt.id)
        return ParseResult(content=raw)


def chat_parse(
    raw: str,
    format: str | ChatFormat,
    parser: ParserConfig | None = None,
    *,
    partial: bool = False,
) -> ParsedMessage:
    """Parse raw output of a request built by `chat_build` (`format` and `parser` from its `ChatBuild`).

    With ``partial=True`` the text is a prefix of the output (streaming): content
    that may still become a marker is held back, and a call being written is
    reported with its arguments so far (a prefix of the final JSON text).
    Tool-call ids are the model's when its dialect writes unique ones, else new
    random ids (``call_...``; nine alphanumerics for Mistral).
    """
    fmt = get_format(format)
    result = parse_result(raw, fmt, parser or ParserConfig(), partial)
    ids: set[str] = set()
    calls = []
    for call in result.calls:
        call_id = call.id if call.id and call.id not in ids else fmt.new_id()
        ids.add(call_id)
        calls.append(ToolCall(call.name, call.arguments, call_id))
    return ParsedMessage(content=result.content, reasoning=result.reasoning, tool_calls=calls)
