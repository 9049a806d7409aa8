"""When a streamed piece can skip the full parse: the stream parser's linear-time path.

A full parse reads the whole output, so running one per piece is quadratic in
the output's length. After each full parse, `FastPath.learn` parses the text
plus a plain letter (and plus an escape) to find out whether the output sits
where more text only extends one field (content, reasoning, or the arguments
of the call being written) and how: as written ("raw"), inside a JSON string
(escapes pass through, quotes and lone backslashes do not), in a raw value that
is escaped into the JSON arguments, or only for plain characters. `take` then
accepts the pieces that cannot change the structure there (no character that
starts a marker of the dialect) and says what they add; any other piece means
a full parse. Trailing whitespace (and an escape not yet complete in a JSON string)
waits for the next piece: a field's end may still be trimmed or escaped (not
where the dialect's content runs to the end as written: a plain answer's line
breaks go out as they come).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence

from llamactypes.chat.formats import ChatFormat
from llamactypes.chat.parse import parse_result
from llamactypes.chat.types import ParserConfig

__all__ = ["FastPath"]

_PLAIN = frozenset(string.ascii_letters + string.digits + " .,;:!?-_()+=*/%#@&|~^$")
_PROBE = "a"
_ESCAPE = "\\n"  # a backslash and an n: kept inside a JSON string, escaped in a raw value
#: The longest start of a piece that stays inside a JSON string: no quote, no control character, whole escapes.
_JSON_STRING = re.compile(r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*')
#: What may wait at the end of a piece inside a JSON string: an escape not complete yet.
_PARTIAL_ESCAPE = re.compile(r'\\(?:u[0-9a-fA-F]{0,3})?')


class FastPath:
    """The fast-path state of one stream (see the module docstring)."""

    def __init__(self, fmt: ChatFormat, config: ParserConfig, stream_arguments: bool) -> None:
        self._fmt, self._config, self._stream_arguments = fmt, config, stream_arguments
        self._structural = fmt.structural_chars()
        self._plain = _PLAIN - self._structural
        #: The field plain text extends ("content", "reasoning", "args"), "none" (nothing changes), or None.
        self.field: str | None = None
        self._style = "plain"
        self._held = ""
        self._verbatim = fmt.content_runs_to_end(config)
        #: Characters read by parses made here (a step count).
        self.work = 0

    def learn(self, text: str, content: str, reasoning: str, arguments: Sequence[str]) -> None:
        """After a full parse of `text` that sent these fields: find the field more text would extend."""
        self.field, self._held, self._style = None, "", "plain"
        if _PROBE not in self._plain:
            return
        probe = self._parse(text + _PROBE)
        calls = probe.calls
        if len(calls) < len(arguments) or (calls and not self._stream_arguments):
            return
        if any(c.done or c.id_ready for c in calls[len(arguments):]):  # a call would be announced
            return
        held = text[len(text.rstrip()):]
        grown: list[str] = []
        pairs = [("reasoning", reasoning, probe.reasoning), ("content", content, probe.content)]
        pairs += [("args" if k == len(arguments) - 1 else "", a, c.arguments) for k, (a, c) in
                  enumerate(zip(arguments, calls))]
        for field, sent, now in pairs:
            if now != sent:
                self._held = held if held and now == sent + held + _PROBE else ""
                grown.append(field if now == sent + self._held + _PROBE else "")
        if not grown:  # plain text changes nothing yet (e.g. arguments before a call's id is known)
            self.field = "none"
        elif len(grown) == 1 and grown[0]:
            self.field = grown[0]
            self._style = self._learn_style(text, {"content": content, "reasoning": reasoning}.get(
                grown[0], arguments[-1] if arguments else ""))

    def _learn_style(self, text: str, sent: str) -> str:
        probe = self._parse(text + self._held + _ESCAPE)
        if self.field == "args":
            now = probe.calls[-1].arguments if probe.calls else ""
        else:
            now = probe.content if self.field == "content" else probe.reasoning
        base = sent + self._held
        if now == base + _ESCAPE:
            return "json" if self.field == "args" else "raw"
        if self.field == "args" and now == base + json.dumps(_ESCAPE)[1:-1]:
            return "escaped"
        return "plain"

    def _parse(self, text: str):  # type: ignore[no-untyped-def]
        self.work += len(text)
        return parse_result(text, self._fmt, self._config, True)

    def _sendable(self, text: str) -> int:
        """How much of `text` may go out now: trailing whitespace waits where a trim may still come."""
        return len(text) if self._verbatim and self.field == "content" else len(text.rstrip())

    def take(self, piece: str) -> str | None:
        """What `piece` adds to `field` ("" while it waits), or None when a full parse must decide."""
        if self.field is None:
            return None
        if self.field == "none":
            return "" if self._plain.issuperset(piece) else None
        text = self._held + piece
        if self._style == "json":
            end = _JSON_STRING.match(text).end()  # type: ignore[union-attr]
            if end < len(text) and not _PARTIAL_ESCAPE.fullmatch(text, end):
                return None
            keep = len(text[:end].rstrip()) if end == len(text) else end
        elif self._style == "plain":
            if not self._plain.issuperset(piece):
                return None
            keep = self._sendable(text)
        else:
            # Content as written: letters, digits, breaks and non-ASCII text; brackets and quotes may
            # still close something (an answer inside JSON): a full parse decides. A raw value escaped
            # into JSON ends only at its closing marker: any other printable character is safe.
            escaped = self._style == "escaped"
            if not all(c in self._plain or (c not in self._structural and (
                    c in "\n\t" or (c > "\x7f" and c.isprintable()) or (escaped and c.isprintable())))
                    for c in piece):
                return None
            keep = self._sendable(text)
        self._held = text[keep:]
        out = text[:keep]
        return json.dumps(out, ensure_ascii=False)[1:-1] if self._style == "escaped" else out
