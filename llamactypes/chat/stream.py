"""`ChatStreamParser`: turn streamed output into content, reasoning and tool-call deltas.

A server feeds each text piece as the model produces it and sends the deltas
on. The parser re-parses the text so far (``partial=True``) and emits only what
grew since the last time; `finish` parses the whole output and emits the rest.
Each call's first delta carries its `id` and `name`; later ones only argument
pieces. Folding all deltas gives `chat_parse(full_text)` (ids aside, which are
fresh per parse unless the model writes them).

With ``stream_arguments=True`` (the default) a call is announced as soon as its
name is known and its arguments stream as they grow. The grammar keeps calls
well-formed, but an output cut off inside a call (``max_tokens``) leaves that
call's partial arguments sent, where `chat_parse` of the cut text would report
the unfinished call as content. ``stream_arguments=False`` sends each call whole
once its block is complete, and the folded deltas then always equal
`chat_parse`.

Linear time: a full parse reads the whole output, so parsing after every
piece would be quadratic; pieces that only extend the field being written skip
it (`stream_fast.FastPath`). `work` counts the characters parses read, for
complexity tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from llamactypes.chat.formats import ChatFormat, get_format
from llamactypes.chat.formats.base import ParseResult, logger
from llamactypes.chat.parse import parse_result
from llamactypes.chat.stream_fast import FastPath
from llamactypes.chat.types import Delta, ParsedMessage, ParserConfig, ToolCall

__all__ = ["ChatStreamParser", "fold_deltas"]


@dataclass
class _Sent:
    id: str
    name: str
    arguments: str


class ChatStreamParser:
    """Incremental parser for one streamed reply (see the module docstring)."""

    def __init__(
        self,
        format: str | ChatFormat,
        parser: ParserConfig | None = None,
        *,
        stream_arguments: bool = True,
    ) -> None:
        self._fmt = get_format(format)
        self._config = parser or ParserConfig()
        self._stream_arguments = stream_arguments
        self._text = ""
        self._content = ""
        self._reasoning = ""
        self._calls: list[_Sent] = []
        self._finished = False
        self._pieces: list[str] = []
        self._fast = FastPath(self._fmt, self._config, stream_arguments)
        self._full_work = 0

    @property
    def text(self) -> str:
        """The raw output fed so far."""
        if self._pieces:
            self._text += "".join(self._pieces)
            self._pieces.clear()
        return self._text

    @property
    def message(self) -> ParsedMessage:
        """Everything sent so far, folded into one message (the final message after `finish`)."""
        calls = [ToolCall(c.name, c.arguments, c.id) for c in self._calls]
        return ParsedMessage(self._content, self._reasoning, calls)

    def feed(self, piece: str) -> list[Delta]:
        """Add a piece of output; returns the deltas it completes."""
        if self._finished:
            raise RuntimeError("ChatStreamParser.feed() after finish()")
        if not piece:
            return []
        self._pieces.append(piece)
        if self._at_field_start():
            return self._full()
        added = self._fast.take(piece)
        if added is None:
            return self._full()
        return self._add(added) if added else []

    @property
    def work(self) -> int:
        """Characters read by parses so far (a step count: linear in the output, see `stream_fast`)."""
        return self._full_work + self._fast.work

    def _at_field_start(self) -> bool:
        """At a field's start whitespace may still be trimmed: always parse for real there."""
        field = self._fast.field
        if field == "content":
            return not self._content.strip()
        if field == "reasoning":
            return not self._reasoning.strip()
        return field == "args" and not self._calls[-1].arguments

    def _add(self, text: str) -> list[Delta]:
        if self._fast.field == "content":
            self._content += text
            return [Delta("content", text=text)]
        if self._fast.field == "reasoning":
            self._reasoning += text
            return [Delta("reasoning", text=text)]
        self._calls[-1].arguments += text
        return [Delta("tool_call", index=len(self._calls) - 1, arguments=text)]

    def _full(self) -> list[Delta]:
        text = self.text
        self._full_work += len(text)
        deltas = self._diff(parse_result(text, self._fmt, self._config, True), final=False)
        self._fast.learn(text, self._content, self._reasoning, [c.arguments for c in self._calls])
        return deltas

    def finish(self) -> list[Delta]:
        """The output is complete: returns the remaining deltas."""
        if self._finished:
            return []
        self._finished = True
        self._full_work += len(self.text)
        return self._diff(parse_result(self.text, self._fmt, self._config, False), final=True)

    def _diff(self, result: ParseResult, final: bool) -> list[Delta]:
        deltas: list[Delta] = []
        piece = self._grow("reasoning", self._reasoning, result.reasoning)
        if piece:
            self._reasoning += piece
            deltas.append(Delta("reasoning", text=piece))
        piece = self._grow("content", self._content, result.content)
        if piece:
            self._content += piece
            deltas.append(Delta("content", text=piece))
        for index, call in enumerate(result.calls):
            if index < len(self._calls):
                sent = self._calls[index]
                if call.name != sent.name:
                    logger.warning("streamed tool call %d changed name; keeping %r", index, sent.name)
                    continue
                if final or call.done or self._stream_arguments:
                    piece = self._grow(f"tool call {index}", sent.arguments, call.arguments)
                    if piece:
                        sent.arguments += piece
                        deltas.append(Delta("tool_call", index=index, arguments=piece))
                continue
            ready = final or call.done or (self._stream_arguments and call.id_ready)
            if not ready:
                break
            taken = {c.id for c in self._calls}
            call_id = call.id if call.id and call.id not in taken else self._fmt.new_id()
            arguments = call.arguments if (final or call.done or self._stream_arguments) else ""
            self._calls.append(_Sent(call_id, call.name, arguments))
            deltas.append(Delta("tool_call", index=index, id=call_id, name=call.name, arguments=arguments))
        if len(result.calls) < len(self._calls):
            logger.warning("streamed output no longer parses as %d tool call(s)", len(self._calls))
        return deltas

    @staticmethod
    def _grow(what: str, sent: str, now: str) -> str:
        """What `now` adds to what was already `sent` ("" if it does not extend it)."""
        if now.startswith(sent):
            return now[len(sent) :]
        logger.warning("streamed %s diverged from what was already sent; dropping the change", what)
        return ""


def fold_deltas(deltas: list[Delta]) -> ParsedMessage:
    """Fold deltas back into a message (what a client does with a stream)."""
    message = ParsedMessage()
    calls: list[list[str]] = []
    for delta in deltas:
        if delta.kind == "content":
            message.content += delta.text
        elif delta.kind == "reasoning":
            message.reasoning += delta.text
        else:
            assert delta.index is not None
            if delta.index == len(calls):
                calls.append([delta.id or "", delta.name or "", ""])
            calls[delta.index][2] += delta.arguments
    message.tool_calls = [ToolCall(name, args, call_id) for call_id, name, args in calls]
    return message
