"""Request bodies: from bytes to a JSON object every later layer can trust.

`decode_json_body` refuses, with a 400 that names the place, what the wire
translation and the layers below it would otherwise trip over later (as a 500,
an HTML page from werkzeug, or a crash in a C call):

- bytes that are not UTF-8, text that is not JSON, a body that is not an object;
- `NaN` / `Infinity` and numbers too large for a float (`1e400` would become `inf`);
- integers longer than Python converts (4,300 digits);
- nesting deeper than `Limits.max_json_depth` (Python's parser would raise `RecursionError`
  a few thousand levels down; the chat template and schema converter much earlier);
- strings or keys holding a lone UTF-16 surrogate (`"\\ud800"` is valid JSON but not valid
  Unicode: it cannot be tokenized, rendered, logged or echoed back as UTF-8).

The walk is iterative (no recursion whatever the input) and touches every value once.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import InvalidRequestError
from ..limits import DEFAULT_LIMITS, Limits, limit_message

__all__ = ["decode_json_body", "check_json_tree"]

_HOW_DEPTH = "raise Limits.max_json_depth: ServerConfig(limits=dataclasses.replace(DEFAULT_LIMITS, max_json_depth=...))"


#: the only way a lone surrogate gets into text decoded from UTF-8: a JSON escape \\uD800-\\uDFFF
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (send a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a 64-bit float")
    return value


def decode_json_body(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The body as a checked JSON object; `InvalidRequestError` (400) for anything else."""
    if not data.strip():
        raise InvalidRequestError("the request body is empty: send a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidRequestError(limit_message("the JSON nesting depth", "over 900", limits.max_json_depth,
                                                _HOW_DEPTH)) from None
    except ValueError as exc:  # JSONDecodeError, a constant, a huge float or int
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    # floats are finite by the parse hooks; strings need a look only if the text escapes a surrogate
    check_json_tree(body, limits.max_json_depth, strings=_SURROGATE_ESCAPE.search(data) is not None)
    return body


def _where(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _check_text(text: str, path: tuple[Any, ...], what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise InvalidRequestError(f"{what} holds a lone surrogate \\u{ord(bad):04x} at character {exc.start}: "
                                  "not valid Unicode (encode text as UTF-8, or pair the surrogates)",
                                  param=_where(path)) from None


def check_json_tree(value: Any, max_depth: int, *, strings: bool = True) -> None:
    """Raise `InvalidRequestError` for nesting deeper than `max_depth` or a string/key that is
    not valid Unicode (see the module docstring); floats are checked to be finite too.
    `strings=False` skips the Unicode checks (the caller knows no surrogate can be there).

    The fast pass tracks depth only; the path for the message is found again on failure."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    containers = (dict, list)
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth >= max_depth:
                break
            for child in (item.values() if kind is dict else item):
                if type(child) in containers or strings:
                    push((child, depth + 1))
            if strings and kind is dict and not all(k.isascii() or _valid(k) for k in item):
                break
        elif kind is str:
            if not item.isascii() and not _valid(item):
                break
        elif kind is float and not math.isfinite(item):
            break
    else:
        return
    _locate(value, (), max_depth)
    raise AssertionError("unreachable: the fast pass and _locate disagree")  # pragma: no cover


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _locate(item: Any, path: tuple[Any, ...], max_depth: int) -> None:
    """The slow pass: raise the error for the first bad place, with its path (depth-limited recursion)."""
    if isinstance(item, str):
        _check_text(item, path, "a string")
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise InvalidRequestError("numbers must be finite", param=_where(path))
    elif isinstance(item, (dict, list)):
        if len(path) >= max_depth:
            raise InvalidRequestError(limit_message("the JSON nesting depth", f"over {max_depth}", max_depth,
                                                    _HOW_DEPTH), param=_where(path))
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key, path, "a key")
                _locate(child, path + (key,), max_depth)
        else:
            for i, child in enumerate(item):
                _locate(child, path + (i,), max_depth)
