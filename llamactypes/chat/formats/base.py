"""What every tool-call dialect shares: the format interface and the parse driver.

A dialect (`ChatFormat` subclass) knows how its model writes tool calls and
thinking, how to detect its template, and how to build a grammar for its calls.
Parsing goes through one driver so that every dialect has the same streaming
guarantees:

* **Prefix-stable.** Parsing a prefix of the output (``partial=True``) gives
  content and reasoning that are prefixes of what the full output gives, and
  never content that may still turn into a marker (a trailing ``<tool_`` is held
  back). Calls of a finished block stay calls whatever follows.
* **Never raises.** A block that cannot be a tool call (broken JSON, unknown
  tool, unclosed marker) becomes content from its marker on; the reason is
  logged on the ``llamactypes`` logger.

Block parsers return `Block`: DONE (calls, and where the block ends), PARTIAL
(the text ran out inside the block; calls so far, the last one possibly
incomplete) or FAIL (with a reason).
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llamactypes.chat.formats._json import ObjectScan, Scan, scan_object, skip_ws
from llamactypes.chat.types import ParserConfig, new_call_id

__all__ = [
    "Block",
    "BlockStatus",
    "ChatFormat",
    "Call",
    "ParseResult",
    "call_from_object",
    "held_suffix",
    "json_call_block",
    "logger",
    "scan_call_array",
    "startswith_partial",
]

logger = logging.getLogger("llamactypes")


@dataclass
class Call:
    """A tool call as the parser sees it, possibly still being written.

    `arguments` is JSON text (a prefix of it while `done` is False). `id` is the
    id the model wrote, "" when the format has none; `id_ready` is False while a
    model-written id may still follow (its header cannot be streamed yet).
    """

    name: str
    arguments: str
    id: str = ""
    done: bool = True
    id_ready: bool = True


@dataclass
class ParseResult:
    """Raw output split into content, reasoning and calls (the internal form of a message)."""

    content: str = ""
    reasoning: str = ""
    calls: list[Call] = field(default_factory=list)


class BlockStatus(enum.Enum):
    DONE = "done"
    PARTIAL = "partial"
    FAIL = "fail"


@dataclass
class Block:
    """Result of parsing one tool-call block that starts at a marker."""

    status: BlockStatus
    calls: list[Call] = field(default_factory=list)
    end: int = 0
    reason: str = ""

    @classmethod
    def fail(cls, reason: str) -> Block:
        return cls(BlockStatus.FAIL, reason=reason)

    @classmethod
    def partial(cls, calls: list[Call] | None = None) -> Block:
        return cls(BlockStatus.PARTIAL, calls or [])


def object_arguments(text: str, i: int, name: str, call_id: str = "") -> Block:
    """A call's JSON-object arguments starting at `i` (whitespace already skipped).

    PARTIAL while the object is unfinished (the arguments so far kept, for streaming),
    FAIL when they are not a JSON object, DONE with `end` just past the closing brace.
    """
    if i >= len(text):
        return Block.partial([Call(name, "", call_id)])
    if text[i] != "{":
        return Block.fail("tool call arguments are not a JSON object")
    scan = scan_object(text, i)
    if scan.status is Scan.BAD:
        return Block.fail("invalid JSON in tool call arguments")
    if scan.status is Scan.PARTIAL:
        return Block.partial([Call(name, text[i:], call_id)])
    return Block(BlockStatus.DONE, [Call(name, text[i: scan.end], call_id)], scan.end)


def held_suffix(text: str, markers: Sequence[str]) -> int:
    """Length of the longest end of `text` that is a proper prefix of a marker.

    That much must be held back while streaming: it may be the start of a marker.
    """
    best = 0
    for marker in markers:
        for k in range(min(len(marker) - 1, len(text)), best, -1):
            if text.endswith(marker[:k]):
                best = k
                break
    return best


def startswith_partial(text: str, pos: int, literal: str) -> bool | None:
    """True if `literal` is at `pos`, None if the text ends on a prefix of it, else False."""
    chunk = text[pos : pos + len(literal)]
    if chunk == literal:
        return True
    if len(chunk) < len(literal) and literal.startswith(chunk):
        return None
    return False


def _find_first(text: str, markers: Sequence[str], pos: int) -> tuple[int, str]:
    best, found = -1, ""
    for marker in markers:
        i = text.find(marker, pos)
        if i >= 0 and (best < 0 or i < best):
            best, found = i, marker
    return best, found


def call_from_object(
    text: str,
    scan: ObjectScan,
    config: ParserConfig,
    *,
    name_key: str = "name",
    args_keys: Sequence[str] = ("arguments", "parameters"),
    id_key: str | None = None,
) -> tuple[Call | None, str]:
    """Read ``{"name": ..., "arguments": {...}}`` (keys configurable) from a scanned object.

    Returns ``(call, "")`` (a call whose `done` says if the object is closed),
    ``(None, "")`` when the name is not known yet, or ``(None, reason)`` when the
    object cannot be a valid call.
    """
    if scan.status is Scan.BAD:
        return None, "invalid JSON in tool call"
    closed = scan.status is Scan.OK
    name_span = scan.members.get(name_key)
    if name_span is None or name_span[1] is None:
        return (None, f"tool call without {name_key!r}") if closed else (None, "")
    name = scan.value(text, name_key)
    if not isinstance(name, str):
        return None, f"tool call {name_key!r} is not a string"
    if not config.knows(name):
        return None, f"unknown tool {name!r}"
    arguments = "{}" if closed else ""
    for key in args_keys:
        span = scan.members.get(key)
        if span is None:
            continue
        if span[1] is not None:
            arguments, reason = _complete_arguments(text[span[0] : span[1]])
            if reason:
                return None, reason
        elif text[span[0]] == "{":
            arguments = text[span[0] :]
        break
    call_id, id_ready = "", True
    if id_key is not None:
        value = scan.value(text, id_key) if id_key in scan.members else None
        call_id = value if isinstance(value, str) else ("" if value is None else str(value))
        id_ready = closed or (id_key in scan.members and scan.members[id_key][1] is not None)
    return Call(name, arguments, call_id, done=closed, id_ready=id_ready), ""


def _complete_arguments(raw: str) -> tuple[str, str]:
    """Arguments given as a whole JSON value: an object as written, or a string holding one."""
    if raw.startswith("{"):
        return raw, ""
    if raw.startswith('"'):
        try:
            inner = json.loads(json.loads(raw))
        except ValueError:
            return "", "tool call arguments are a string that is not JSON"
        if isinstance(inner, dict):
            return json.dumps(inner, ensure_ascii=False), ""
    return "", "tool call arguments are not an object"


def scan_call_array(
    text: str, pos: int, config: ParserConfig, **keys: Any
) -> tuple[Scan, list[Call], int, str]:
    """Scan ``[{call}, {call}, ...]`` at `text[pos] == "["` with `call_from_object` per item.

    Returns ``(status, calls, end, reason)``; status PARTIAL when the text runs out.
    """
    n = len(text)
    calls: list[Call] = []
    i = skip_ws(text, pos + 1)
    if i >= n:
        return Scan.PARTIAL, calls, n, ""
    if text[i] == "]":
        return Scan.BAD, calls, i, "empty tool call list"
    while True:
        if text[i] != "{":
            return Scan.BAD, calls, i, "tool call list item is not an object"
        scan = scan_object(text, i)
        call, reason = call_from_object(text, scan, config, **keys)
        if reason:
            return Scan.BAD, calls, i, reason
        if call is None or not call.done:
            if call is not None:
                calls.append(call)
            return Scan.PARTIAL, calls, n, ""
        calls.append(call)
        i = skip_ws(text, scan.end)
        if i >= n:
            return Scan.PARTIAL, calls, n, ""
        if text[i] == "]":
            return Scan.OK, calls, i + 1, ""
        if text[i] != ",":
            return Scan.BAD, calls, i, "expected ',' or ']' in tool call list"
        i = skip_ws(text, i + 1)
        if i >= n:
            return Scan.PARTIAL, calls, n, ""


class ChatFormat:
    """One tool-call dialect. Subclasses set the markers and implement the hooks.

    Formats are stateless singletons; per-request data travels in `ParserConfig`
    and the build context.
    """

    id: ClassVar[str] = ""
    #: (open, close) of the thinking block, or None when the dialect has none.
    think_tags: ClassVar[tuple[str, str] | None] = ("<think>", "</think>")
    #: Texts that open a tool-call block inside content.
    start_markers: ClassVar[tuple[str, ...]] = ()
    #: Markers that are dropped from content (and held back while partial).
    hidden_markers: ClassVar[tuple[str, ...]] = ()
    #: Marker texts that are special tokens in this family's vocabulary.
    special_markers: ClassVar[tuple[str, ...]] = ()
    additional_stops: ClassVar[tuple[str, ...]] = ()
    #: The dialect knows the "developer" role (others get it as "system").
    keeps_developer: ClassVar[bool] = False
    #: The dialect writes call arguments as indented JSON (its grammar keeps the converter's line breaks).
    pretty_json: ClassVar[bool] = False
    #: Regex whose (empty) group marks where plain content starts, for dialects whose
    #: content follows a header (a JSON ``response_format`` grammar starts there); None: at once.
    content_trigger: ClassVar[str | None] = None
    #: Text the dialect writes before plain content (Functionary's ``all\n``): a JSON ``response_format``
    #: grammar starts with it.
    content_prefix: ClassVar[str] = ""

    def content_runs_to_end(self, config: ParserConfig) -> bool:
        """Whether content, once it started, is the rest of the output as written: nothing that may
        follow can end or trim it, so a stream sends trailing whitespace at once instead of holding it."""
        return False

    def structural_chars(self) -> frozenset[str]:
        """Characters that may start a marker of this dialect (the stream parser re-parses on them)."""
        texts = self.start_markers + self.hidden_markers + self.special_markers + (self.think_tags or ())
        return frozenset(chunk[0] for text in texts for chunk in text.split())

    # -- detection and prompt ------------------------------------------------
    def detect(self, source: str) -> bool:
        """Whether a template's source text belongs to this dialect."""
        return False

    def supports_thinking(self, source: str) -> bool:
        """Whether the template knows this dialect's thinking block."""
        return self.think_tags is not None and self.think_tags[0] in source

    def adapt_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Dialect-specific message fix-ups before rendering (ids, field names)."""
        return messages

    def new_id(self) -> str:
        """A fresh tool-call id in the shape this dialect's template accepts."""
        return new_call_id()

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        """How assistant tool calls look as text, for templates that cannot render them."""
        items = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in calls]
        return "\n".join(json.dumps(item, ensure_ascii=False) for item in items)

    def tool_instructions(self, example: str, parallel: bool = False) -> str:
        """Instructions for writing a call, for templates that do not describe tools."""
        return f"To call a tool, reply with:\n{example}"

    def call_example(self, name: str, args: dict[str, Any]) -> str:
        """A call to `name` written the way this dialect writes it."""
        return self.calls_text([{"function": {"name": name, "arguments": args}}])

    # -- grammar -------------------------------------------------------------
    def grammar_root(self, builder: Any, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        """The GBNF body of ``root`` for this dialect's calls (rules added to `builder`)."""
        raise NotImplementedError

    def trigger_regexes(self, tools: Sequence[dict[str, Any]]) -> list[str]:
        """Regexes whose first group is where the call grammar starts (searched anywhere).

        `tools` are the callable tools, for dialects whose calls open with the bare name.
        """
        return [f"({re.escape(m)})" for m in self.start_markers[:1]]

    # -- parsing -------------------------------------------------------------
    def parse(self, text: str, config: ParserConfig, partial: bool) -> ParseResult:
        """Split raw output into reasoning, content and calls (see the module docstring)."""
        reasoning, pos = self.split_reasoning(text, config, partial)
        result = ParseResult(reasoning=reasoning)
        if pos is not None:
            self.scan_content(text, pos, config, partial, result)
        return result

    def split_reasoning(self, text: str, config: ParserConfig, partial: bool) -> tuple[str, int | None]:
        """Cut the thinking block off the front. Returns (reasoning, where content starts).

        The position is None when the text is still inside (or may still open)
        the thinking block. An unclosed block is all reasoning, up to a tool call
        written in it (`_unclosed`).
        """
        if self.think_tags is None or not config.reasoning:
            return "", 0
        open_tag, close_tag = self.think_tags
        if config.thinking_forced_open:
            inner = 0
        else:
            i = skip_ws(text, 0)
            closes = startswith_partial(text, i, close_tag)
            if closes:  # an empty block whose start the prompt wrote (some templates close it anyway)
                return "", skip_ws(text, i + len(close_tag))
            starts = startswith_partial(text, i, open_tag)
            if starts is None or closes is None:
                return "", (None if partial else 0)
            if not starts:
                return "", 0
            inner = i + len(open_tag)
        end = text.find(close_tag, inner)
        if end < 0:
            return self._unclosed(text, inner, config, partial)
        return text[inner:end].strip(), skip_ws(text, end + len(close_tag))

    def _unclosed(self, text: str, inner: int, config: ParserConfig, partial: bool) -> tuple[str, int | None]:
        """A thinking block with no close tag: all reasoning, unless a whole tool call is written in it.

        Models call tools without closing the block the prompt opened (Qwen3.5,
        Kimi-K2, DeepSeek-V4, Ling): the reasoning ends at the call. A call
        inside a block that closes later stays reasoning, so while streaming the
        text from a call marker on is held back until the block closes or the
        output ends (reasoning only ever grows).
        """
        idx, marker = self.find_block(text, inner, True)
        if idx >= 0:
            if partial:
                return text[inner:idx].strip(), None
            if self.parse_block(text, idx, marker, config, False).status is BlockStatus.DONE:
                return text[inner:idx].strip(), idx
        body = text[inner:]
        if partial:
            assert self.think_tags is not None
            body = body[: len(body) - held_suffix(body, (self.think_tags[1], *self.start_markers))]
        return body.strip(), None

    def scan_content(
        self, text: str, pos: int, config: ParserConfig, partial: bool, result: ParseResult
    ) -> None:
        """Content with tool-call blocks cut out, from `pos` to the end."""
        hidden = self.hidden_for(config)
        parts: list[str] = []
        while True:
            idx, marker = self.find_block(text, pos, partial)
            if idx < 0:
                tail = text[pos:]
                if partial:
                    tail = tail[: len(tail) - held_suffix(tail, self.start_markers + hidden)]
                parts.append(tail)
                break
            parts.append(text[pos:idx])
            block = self.parse_block(text, idx, marker, config, partial)
            if block.status is BlockStatus.DONE:
                for call in block.calls:
                    call.done = True
                result.calls.extend(block.calls)
                pos = block.end
                continue
            if block.status is BlockStatus.PARTIAL:
                if not partial:  # the output ended inside the block
                    block = Block.fail(block.reason or f"unfinished tool call block at {marker!r}")
                else:
                    for call in block.calls:
                        call.done = False
                    result.calls.extend(block.calls)
                    break
            if not partial:
                logger.warning("chat output kept as content (%s): %s", self.id, block.reason)
            parts.append(text[idx:])
            break
        content = "".join(parts)
        if partial and hidden:  # also after a failed block, which is kept raw
            content = content[: len(content) - held_suffix(content, hidden)]
        result.content = self.clean_content(content, hidden)

    def hidden_for(self, config: ParserConfig) -> tuple[str, ...]:
        """The markers dropped from content under `config`: `hidden_markers` (a dialect may add some)."""
        return self.hidden_markers

    def clean_content(self, content: str, hidden: Sequence[str] | None = None) -> str:
        """Drop `hidden` (the dialect's hidden markers when None) from content, in that order."""
        for marker in self.hidden_markers if hidden is None else hidden:
            content = content.replace(marker, "")
        return content

    def find_block(self, text: str, pos: int, partial: bool) -> tuple[int, str]:
        """Where the next tool-call block starts at or after `pos`: (index, marker) or (-1, "")."""
        return _find_first(text, self.start_markers, pos)

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        """Parse the block whose `marker` is at `pos`."""
        raise NotImplementedError


def json_call_block(
    text: str, pos: int, config: ParserConfig, partial: bool, close: str | None, **keys: Any
) -> Block:
    """A block holding one JSON call object at `pos` (after optional whitespace), then `close`.

    A missing `close` is tolerated (the model may stop right after the JSON).
    """
    n = len(text)
    i = skip_ws(text, pos)
    if i >= n:
        return Block.partial()
    if text[i] != "{":
        return Block.fail("tool call is not a JSON object")
    scan = scan_object(text, i)
    call, reason = call_from_object(text, scan, config, **keys)
    if reason:
        return Block.fail(reason)
    if call is None or not call.done:
        return Block.partial([call] if call else [])
    end = skip_ws(text, scan.end)
    if close is not None:
        found = startswith_partial(text, end, close)
        if found is None and partial:
            return Block.partial([call])
        if found:
            end = skip_ws(text, end + len(close))
    return Block(BlockStatus.DONE, [call], end)
