"""Object and array values written as child tags, as some key/value dialects write nested arguments.

MiniMax-M3 writes ``{"limit": {"max": 10}}`` as ``NS<limit>NS<max>10NS</max>NS</limit>`` and a list as
``<item>`` children (``NS`` its ``]<]minimax[>[`` token before every tag). `child_tags` reads the
value inside the parameter's tags back into JSON; leaves are JSON when they parse, else text (the
schema of a nested leaf is not at hand).
"""

from __future__ import annotations

import re
from typing import Any

from llamactypes.chat.formats._json import param_value, skip_ws

__all__ = ["child_tags"]

_NAME = re.compile(r"([A-Za-z_][\w.\-]{0,127})>")
_ITEM = "item"
_DEPTH = 32  # deeper nesting is read as text


class _NotTags(Exception):
    pass


def child_tags(raw: str, ns: str, kind: str | None) -> Any:
    """The object (or, for ``<item>`` children, the list) that `raw` writes as child tags after `ns`.

    `kind` is the parameter's schema type (``"a|b"`` for a union, None: not known). None when `raw`
    is not child tags from end to end, when the schema takes no object or array, or when it also takes
    a string (llama.cpp keeps a value that looks structured as text then). Empty text is the empty
    value of the one structured type the schema takes.
    """
    allowed = set(kind.split("|")) if kind else {"object", "array"}
    structured = allowed & {"object", "array"}
    if "string" in allowed or not structured:
        return None
    if not raw.strip():
        return ({} if "object" in structured else []) if len(structured) == 1 else None
    try:
        value, end = _children(raw, skip_ws(raw, 0), ns, 0)
    except _NotTags:
        return None
    if skip_ws(raw, end) != len(raw) or ("array" if isinstance(value, list) else "object") not in allowed:
        return None
    return value


def _open_tag(raw: str, i: int, ns: str) -> tuple[str, int] | None:
    """The child tag opened at `i`: (its name, where its value starts), or None."""
    if not raw.startswith(ns + "<", i):
        return None
    m = _NAME.match(raw, i + len(ns) + 1)
    return (m.group(1), m.end()) if m else None


def _children(raw: str, i: int, ns: str, depth: int) -> tuple[Any, int]:
    """The run of sibling child tags at `i`: (an object, or a list for ``<item>`` ones; where it ends)."""
    if depth > _DEPTH:
        raise _NotTags
    names: list[str] = []
    values: list[Any] = []
    while (opened := _open_tag(raw, i, ns)) is not None:
        name, j = opened
        closing = f"{ns}</{name}>"
        inner = skip_ws(raw, j)
        if _open_tag(raw, inner, ns) is not None:
            value, j = _children(raw, inner, ns, depth + 1)
            j = skip_ws(raw, j)
        else:
            end = raw.find(closing, j)
            if end < 0:
                raise _NotTags
            value, j = param_value(raw[j:end], None), end
        if not raw.startswith(closing, j):
            raise _NotTags
        names.append(name)
        values.append(value)
        i = skip_ws(raw, j + len(closing))
    if not names:
        raise _NotTags
    if all(n == _ITEM for n in names):
        return values, i
    if len(set(names)) != len(names):
        raise _NotTags
    return dict(zip(names, values)), i
