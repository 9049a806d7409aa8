"""A JSON scanner that tells a complete value from a valid prefix from garbage.

Streaming parsers see model output one piece at a time, so "is this JSON?" has
three answers: a complete value (and where it ends), a prefix that may still
become valid (``{"name": "get_wea``), or text no continuation can repair. The
scanner never builds values; callers slice the text and `json.loads` the
complete parts, or keep a partial slice as a prefix string (tool-call arguments
are streamed exactly as the model writes them).
"""

from __future__ import annotations

import enum
import json
import re
from json.decoder import JSONDecodeError, scanstring
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Scan",
    "ObjectScan",
    "scan_value",
    "scan_object",
    "skip_ws",
    "decode_string_prefix",
    "param_value",
    "json_item",
]

_WS = " \t\n\r"


def param_value(raw: str, kind: str | None) -> Any:
    """A key/value dialect's raw parameter text as a JSON value, guided by its schema type: a string
    parameter stays text, anything else is read as JSON when it parses."""
    if kind == "string":
        return raw
    try:
        return json.loads(raw.strip())
    except ValueError:
        return raw


def json_item(key: str, value: Any) -> str:
    """`"key": value` as it goes inside a JSON object of call arguments."""
    return json.dumps(key, ensure_ascii=False) + ": " + json.dumps(value, ensure_ascii=False)


_LITERALS = ("true", "false", "null")


class Scan(enum.Enum):
    """Outcome of scanning: a whole value, a valid prefix cut short, or invalid text."""

    OK = "ok"
    PARTIAL = "partial"
    BAD = "bad"


def skip_ws(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after `pos`."""
    n = len(text)
    while pos < n and text[pos] in _WS:
        pos += 1
    return pos


_PARTIAL_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?$")
_HIGH_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}$")
_TAIL_UNICODE = re.compile(r"\\u[0-9a-fA-F]{0,4}(?:\\(?:u[0-9a-fA-F]{0,4})?)?")


def _open_body(text: str, pos: int) -> str:
    """The content of an unclosed string, minus an escape (or half a surrogate pair) cut off at the end."""
    body = text[pos + 1 :]
    for tail_re in (_PARTIAL_ESCAPE, _HIGH_SURROGATE):
        base = max(0, len(body) - 8)  # the tail patterns are at most 6 characters: search only there
        tail = tail_re.search(body, base)
        if tail and _escaped_at(body, tail.start()):
            body = body[: tail.start()]
    return body


def _scan_string(text: str, pos: int) -> tuple[Scan, int]:
    """Scan a string starting at the opening quote `text[pos]`.

    `json.decoder.scanstring` does the work in C: these strings can be long
    (code in tool arguments) and a stream rescans them after every token.
    """
    try:
        return Scan.OK, scanstring(text, pos + 1, True)[1]
    except JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated string"):
            return Scan.PARTIAL, len(text)
        # A \uXXXX escape (pair) at the very end is reported invalid: it may still be completed.
        if exc.msg.startswith("Invalid \\uXXXX"):
            if _TAIL_UNICODE.fullmatch(text, exc.pos - 1):
                return Scan.PARTIAL, len(text)
            return Scan.BAD, exc.pos - 1  # json reports the "u"; the escape starts at the backslash
        return Scan.BAD, exc.pos


def _scan_digits(text: str, i: int) -> tuple[Scan, int]:
    """One or more digits at `i` (a fraction or an exponent); PARTIAL if the text ends first."""
    n = len(text)
    if i >= n:
        return Scan.PARTIAL, n
    if not text[i].isdigit():
        return Scan.BAD, i
    while i < n and text[i].isdigit():
        i += 1
    return Scan.OK, i


def _scan_number(text: str, pos: int) -> tuple[Scan, int]:
    """Scan a number; one that reaches the end of the text could still grow (PARTIAL)."""
    n = len(text)
    i = pos
    if i < n and text[i] == "-":
        i += 1
    if i >= n:
        return Scan.PARTIAL, n
    if text[i] == "0":
        i += 1
    elif text[i].isdigit():
        while i < n and text[i].isdigit():
            i += 1
    else:
        return Scan.BAD, i
    if i < n and text[i] == ".":
        status, i = _scan_digits(text, i + 1)
        if status is not Scan.OK:
            return status, i
    if i < n and text[i] in "eE":
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        status, i = _scan_digits(text, i)
        if status is not Scan.OK:
            return status, i
    if i >= n:
        return Scan.PARTIAL, n
    return Scan.OK, i


def _scan_container(text: str, pos: int, depth: int) -> tuple[Scan, int]:
    """Scan an object or array starting at its opening bracket."""
    n = len(text)
    is_object = text[pos] == "{"
    close = "}" if is_object else "]"
    i = skip_ws(text, pos + 1)
    if i >= n:
        return Scan.PARTIAL, n
    if text[i] == close:
        return Scan.OK, i + 1
    while True:
        if is_object:
            if text[i] != '"':
                return Scan.BAD, i
            status, i = _scan_string(text, i)
            if status is not Scan.OK:
                return status, i
            i = skip_ws(text, i)
            if i >= n:
                return Scan.PARTIAL, n
            if text[i] != ":":
                return Scan.BAD, i
            i = skip_ws(text, i + 1)
        status, i = _scan(text, i, depth + 1)
        if status is not Scan.OK:
            return status, i
        i = skip_ws(text, i)
        if i >= n:
            return Scan.PARTIAL, n
        if text[i] == close:
            return Scan.OK, i + 1
        if text[i] != ",":
            return Scan.BAD, i
        i = skip_ws(text, i + 1)
        if i >= n:
            return Scan.PARTIAL, n


def _scan(text: str, pos: int, depth: int) -> tuple[Scan, int]:
    n = len(text)
    if pos >= n:
        return Scan.PARTIAL, n
    if depth > 512:
        return Scan.BAD, pos
    c = text[pos]
    if c == '"':
        return _scan_string(text, pos)
    if c in "{[":
        return _scan_container(text, pos, depth)
    if c == "-" or c.isdigit():
        return _scan_number(text, pos)
    for literal in _LITERALS:
        chunk = text[pos : pos + len(literal)]
        if literal.startswith(chunk):
            if len(chunk) < len(literal):
                return Scan.PARTIAL, n
            return Scan.OK, pos + len(literal)
    return Scan.BAD, pos


def scan_value(text: str, pos: int = 0, *, final: bool = False) -> tuple[Scan, int]:
    """Scan one JSON value starting at `pos` (no leading whitespace skipped).

    Returns ``(Scan.OK, end)`` for a complete value, ``(Scan.PARTIAL, len(text))``
    when the text ends inside a value that may still be completed, and
    ``(Scan.BAD, where)`` otherwise. A number running to the end of the text is
    PARTIAL (more digits may follow) unless `final` says the text is complete.
    """
    status, end = _scan(text, pos, 0)
    if final and status is Scan.PARTIAL and pos < len(text) and (text[pos] == "-" or text[pos].isdigit()):
        try:
            json.loads(text[pos:])
        except ValueError:
            return Scan.PARTIAL, end
        return Scan.OK, len(text)
    return status, end


@dataclass
class ObjectScan:
    """A JSON object scanned member by member.

    `members` maps each key whose value has started to ``(start, end)``, `end`
    None while that value is still partial. `status`/`end` describe the object
    as a whole.
    """

    status: Scan
    end: int
    members: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def value(self, text: str, key: str) -> Any:
        """The decoded value of a complete member, or None."""
        span = self.members.get(key)
        if span is None or span[1] is None:
            return None
        return json.loads(text[span[0] : span[1]])

    def raw(self, text: str, key: str) -> str | None:
        """The member's text as written so far (a prefix while it is partial)."""
        span = self.members.get(key)
        if span is None:
            return None
        return text[span[0] : span[1] if span[1] is not None else len(text)]


def scan_object(text: str, pos: int) -> ObjectScan:
    """Scan an object at `text[pos] == "{"`, recording where each member's value lies."""
    n = len(text)
    result = ObjectScan(Scan.PARTIAL, n)
    i = skip_ws(text, pos + 1)
    if i >= n:
        return result
    if text[i] == "}":
        return ObjectScan(Scan.OK, i + 1)
    while True:
        if text[i] != '"':
            return ObjectScan(Scan.BAD, i, result.members, result.order)
        status, key_end = _scan_string(text, i)
        if status is not Scan.OK:
            result.status = status
            return result
        key = json.loads(text[i:key_end])
        i = skip_ws(text, key_end)
        if i >= n:
            return result
        if text[i] != ":":
            return ObjectScan(Scan.BAD, i, result.members, result.order)
        i = skip_ws(text, i + 1)
        if i >= n:
            return result
        status, value_end = _scan(text, i, 1)
        if key not in result.members:
            result.order.append(key)
        result.members[key] = (i, value_end if status is Scan.OK else None)
        if status is not Scan.OK:
            result.status = status
            return result
        i = skip_ws(text, value_end)
        if i >= n:
            return result
        if text[i] == "}":
            result.status, result.end = Scan.OK, i + 1
            return result
        if text[i] != ",":
            return ObjectScan(Scan.BAD, i, result.members, result.order)
        i = skip_ws(text, i + 1)
        if i >= n:
            return result


def decode_string_prefix(text: str, pos: int) -> tuple[str, bool]:
    """Decode the JSON string opening at `text[pos]`, as far as the text goes.

    Returns ``(decoded, closed)``. An escape sequence cut off at the end (or the
    first half of a surrogate pair) is left out, so the decoded prefix only ever
    grows as text arrives. The string must have scanned as OK or PARTIAL.
    """
    try:
        return scanstring(text, pos + 1, True)[0], True
    except JSONDecodeError:
        return json.loads('"' + _open_body(text, pos) + '"'), False


def _escaped_at(body: str, i: int) -> bool:
    """Whether the backslash at `body[i]` starts an escape (is not itself escaped)."""
    k = i
    while k > 0 and body[k - 1] == "\\":
        k -= 1
    return (i - k) % 2 == 0
