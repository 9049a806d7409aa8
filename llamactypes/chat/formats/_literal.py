"""Argument values written as a template's own literals instead of JSON.

Two key/value dialects write structured values their own way:

- Python call syntax (LFM2: ``f(city="Paris", enabled=True, tags=['a'])``):
  strings in single or double quotes with backslash escapes, ``True``,
  ``False``, ``None``, lists and dicts; models also write JSON's
  ``true``/``false``/``null``.
- Gemma 4 (``{city:<|"|>Paris<|"|>,tags:[<|"|>a<|"|>]}``): strings between
  a quote marker, taken raw; bare or quoted object keys; JSON's own
  strings and objects are read too.

`scan_literal` reads one such value into its JSON value, reporting a value
cut short (streaming) apart from text that is not a literal.
"""

from __future__ import annotations

import re
from typing import Any

from llamactypes.chat.formats._json import Scan, skip_ws

__all__ = ["LiteralSyntax", "scan_literal"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_KEYWORDS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


class LiteralSyntax:
    """How one dialect writes literals: its string quotes, each with whether it takes backslash escapes."""

    def __init__(self, quotes: dict[str, bool]) -> None:
        self.quotes = quotes


class _Cut(Exception):
    """The text ended inside the value."""


class _Bad(Exception):
    """The text is not a literal."""


def scan_literal(text: str, i: int, syntax: LiteralSyntax) -> tuple[Scan, int, Any]:
    """The literal value at `i`: (OK, end, value), (PARTIAL, i, None) or (BAD, i, None)."""
    try:
        end, value = _value(text, i, syntax)
    except _Cut:
        return Scan.PARTIAL, i, None
    except _Bad:
        return Scan.BAD, i, None
    return Scan.OK, end, value


def _value(text: str, i: int, syntax: LiteralSyntax) -> tuple[int, Any]:
    if i >= len(text):
        raise _Cut
    char = text[i]
    if char == "[":
        return _items(text, i + 1, "]", syntax, keys=False)
    if char == "{":
        return _items(text, i + 1, "}", syntax, keys=True)
    for quote in syntax.quotes:
        if text.startswith(quote, i):
            return _string(text, i + len(quote), quote, syntax)
        if quote.startswith(text[i:]):
            raise _Cut
    number = _NUMBER.match(text, i)
    word = _WORD.match(text, i)
    if number:
        if number.end() == len(text):
            raise _Cut  # more digits may follow
        raw = number.group()
        return number.end(), float(raw) if any(c in raw for c in ".eE") else int(raw)
    if word and word.group() in _KEYWORDS and word.end() < len(text):
        return word.end(), _KEYWORDS[word.group()]
    if word and word.end() == len(text) and any(k.startswith(word.group()) for k in _KEYWORDS):
        raise _Cut
    if char == "-" and i + 1 == len(text):
        raise _Cut
    raise _Bad


def _string(text: str, i: int, quote: str, syntax: LiteralSyntax) -> tuple[int, str]:
    """A string body from `i` up to its closing `quote` (escapes decoded when the syntax has them)."""
    out: list[str] = []
    while True:
        end = text.find(quote, i)
        slash = text.find("\\", i) if syntax.quotes[quote] else -1
        if end < 0 and slash < 0:
            raise _Cut
        if slash < 0 or 0 <= end < slash:
            out.append(text[i:end])
            return end + len(quote), "".join(out)
        out.append(text[i:slash])
        if slash + 1 >= len(text):
            raise _Cut
        esc = text[slash + 1]
        if esc == "u":
            digits = text[slash + 2 : slash + 6]
            if len(digits) < 4:
                raise _Cut
            try:
                out.append(chr(int(digits, 16)))
            except ValueError:
                raise _Bad from None
            i = slash + 6
            continue
        out.append(_ESCAPES.get(esc, "\\" + esc))  # unknown escapes stay as written, as in Python
        i = slash + 2


def _items(text: str, i: int, close: str, syntax: LiteralSyntax, keys: bool) -> tuple[int, Any]:
    """The items of a list or an object after its opening bracket, up to `close`."""
    items: list[Any] = []
    obj: dict[str, Any] = {}
    i = skip_ws(text, i)
    first = True
    while True:
        if i >= len(text):
            raise _Cut
        if text[i] == close:
            return i + 1, obj if keys else items
        if not first:
            if text[i] != ",":
                raise _Bad
            i = skip_ws(text, i + 1)
        first = False
        if keys:
            i, key = _key(text, i, syntax)
            i = skip_ws(text, i)
            if i >= len(text):
                raise _Cut
            if text[i] != ":":
                raise _Bad
            i, obj[key] = _value(text, skip_ws(text, i + 1), syntax)
        else:
            i, item = _value(text, i, syntax)
            items.append(item)
        i = skip_ws(text, i)


def _key(text: str, i: int, syntax: LiteralSyntax) -> tuple[int, str]:
    """An object key: a quoted string, or a bare word (Gemma writes bare keys)."""
    word = _WORD.match(text, i)
    if word and not any(text.startswith(q, i) for q in syntax.quotes):
        if word.end() == len(text):
            raise _Cut
        return word.end(), word.group()
    end, key = _value(text, i, syntax)
    if not isinstance(key, str):
        raise _Bad
    return end, key
