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
piece would be quadratic. After a full parse the parser checks (by parsing the
text plus one plain letter) whether it sits where plain text only extends one
field: content, reasoning, or the arguments of the call being written (inside
a JSON string or a raw value). While pieces hold only plain characters (letters,
digits, spaces and punctuation that begins no marker of the dialect), they are
appended to that field directly; any other character triggers a full parse
again. `work` counts the characters full parses read, for complexity tests.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from llamactypes.chat.formats import ChatFormat, get_format
from llamactypes.chat.formats.base import ParseResult, logger
from llamactypes.chat.parse import parse_result
from llamactypes.chat.types import Delta, ParsedMessage, ParserConfig, ToolCall

__all__ = ["ChatStreamParser", "fold_deltas"]

_PLAIN = frozenset(string.ascii_letters + string.digits + " .,;:!?-_()+=*/%#@&|~^$") - frozenset("\"\\")
_PROBE = "a"


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
        self._fast: str | None = None  # the field plain text extends: "content", "reasoning", "args"
        self._held = ""  # trailing whitespace not sent yet (a field's end may still be trimmed)
        self._plain = _PLAIN - self._fmt.structural_chars()
        #: Characters read by full parses so far (a step count: linear in the output for plain runs).
        self.work = 0

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
        if self._fast is not None and self._plain.issuperset(piece):
            return self._extend(piece)
        return self._full()

    def _full(self) -> list[Delta]:
        text = self.text
        self.work += len(text)
        deltas = self._diff(parse_result(text, self._fmt, self._config, True), final=False)
        self._fast = self._pass_through(text)
        return deltas

    def finish(self) -> list[Delta]:
        """The output is complete: returns the remaining deltas."""
        if self._finished:
            return []
        self._finished = True
        self.work += len(self.text)
        return self._diff(parse_result(self.text, self._fmt, self._config, False), final=True)

    def _pass_through(self, text: str) -> str | None:
        """Which field one more plain character would extend by exactly itself (None: none, or several)."""
        if _PROBE not in self._plain:
            return None
        self.work += len(text) + 1
        probe = parse_result(text + _PROBE, self._fmt, self._config, True)
        calls = probe.calls
        unsent = calls[len(self._calls):]
        if len(calls) < len(self._calls) or (calls and not self._stream_arguments):
            return None
        if any(c.done or c.id_ready for c in unsent):  # a call that would be announced: parse for real
            return None
        calls = calls[: len(self._calls)]
        held = text[len(text.rstrip()):]
        grown = []

        def check(field: str, sent: str, now: str) -> None:
            if now != sent:
                self._held = held if held and now == sent + held + _PROBE else ""
                grown.append(field if now == sent + self._held + _PROBE else "")

        check("reasoning", self._reasoning, probe.reasoning)
        check("content", self._content, probe.content)
        for sent, call in zip(self._calls, calls):
            check("args" if sent is self._calls[-1] else "", sent.arguments, call.arguments)
        if not grown:  # plain text changes nothing yet (e.g. arguments before a call's id is known)
            return "none" if all(c.arguments == s.arguments for c, s in zip(calls, self._calls)) else None
        return grown[0] if len(grown) == 1 and grown[0] else None

    def _extend(self, piece: str) -> list[Delta]:
        """Append a plain piece to the field it extends (see the module docstring)."""
        if self._fast == "none":
            return []
        field = {"content": self._content, "reasoning": self._reasoning}.get(self._fast or "", "x")
        if not field.strip() or (self._fast == "args" and not self._calls[-1].arguments):
            self._fast = None  # at a field's start whitespace may still be trimmed: parse for real
            return self._full()
        text = self._held + piece
        piece = text.rstrip()
        self._held = text[len(piece):]
        if not piece:
            return []
        if self._fast == "content":
            self._content += piece
            return [Delta("content", text=piece)]
        if self._fast == "reasoning":
            self._reasoning += piece
            return [Delta("reasoning", text=piece)]
        self._calls[-1].arguments += piece
        return [Delta("tool_call", index=len(self._calls) - 1, arguments=piece)]

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
