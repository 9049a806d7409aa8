"""Tool-call dialects derived from a chat template by rendering it, not by its name.

`derive_format(template)` renders probe conversations (`probe`), reads the
call syntax off them (`analyze`) and returns a `DerivedFormat` (`dialect`):
a parser with partial parsing for streams, a lazy grammar and trigger that
constrain calls to the tools' schemas, the preserved marker tokens and the
calls written as text. `check_round_trip` is the test `chat_build` applies
before trusting a dialect, hand-written or derived: the template's own
rendering of one call, of two calls, of content and a call, must parse back.
"""

from __future__ import annotations

import json

from llamactypes.chat.derive.analyze import Dialect, KeyValues, Part, derive_dialect
from llamactypes.chat.derive.dialect import DerivedFormat
from llamactypes.chat.derive.probe import (
    CONTENT, KEYS, NAMES, NUMBERS, STRINGS, Renderings, probe_template,
)
from llamactypes.chat.formats.base import ChatFormat
from llamactypes.chat.template import ChatTemplate
from llamactypes.chat.types import ParserConfig

__all__ = [
    "DerivedFormat", "Dialect", "KeyValues", "Part", "check_round_trip", "derive_format", "derive_format_from",
    "probe_template",
]


def _param_types() -> dict[str, dict[str, str]]:
    return {name: {KEYS[0]: "string", KEYS[1]: "integer"} for name in NAMES}


def _reads_back(fmt: ChatFormat, text: str, n_calls: int, content: str | None = "") -> bool:
    """Whether `text` parses to the first `n_calls` probe calls (and `content`, unless None)."""
    from llamactypes.chat.parse import parse_result

    config = ParserConfig(tools=NAMES, param_types=_param_types(), reasoning=fmt.think_tags is not None)
    result = parse_result(text, fmt, config, False)
    want = [(NAMES[k], {KEYS[0]: STRINGS[k], KEYS[1]: NUMBERS[k]}) for k in range(n_calls)]
    try:
        got = [(c.name, json.loads(c.arguments)) for c in result.calls]
    except ValueError:
        return False
    return got == want and (content is None or result.content.strip() == content)


def check_round_trip(fmt: ChatFormat, renderings: Renderings) -> bool:
    """Whether `fmt` reads back the template's own rendering of one call (and two, when it renders two)."""
    one = renderings.one_call
    if one is None or not _reads_back(fmt, one.output, 1):
        return False
    two = renderings.two_calls
    if two is not None and NAMES[1] in two.output and not _reads_back(fmt, two.output, 2):
        return False
    both = renderings.content_and_call
    # content + call: the calls must read back; some templates render the content as a turn of its own
    if both is not None and CONTENT in both.output and not _reads_back(fmt, both.output, 1, None):
        return False
    return True


def derive_format(template: ChatTemplate) -> DerivedFormat | None:
    """The dialect `template` renders, if it renders calls in a way the analyzer reads and reads back."""
    return derive_format_from(probe_template(template))


def derive_format_from(renderings: Renderings) -> DerivedFormat | None:
    """`derive_format` from renderings already made (`probe_template`)."""
    dialect = derive_dialect(renderings)
    if dialect is None:
        return None
    fmt = DerivedFormat(dialect)
    return fmt if check_round_trip(fmt, renderings) else None
