"""Building blocks of the JSON Schema converter, ported from llama.cpp's
``common/json-schema-to-grammar.cpp`` so the grammars come out byte for byte the same:
the primitive rules, ``build_repetition``, the digit-range rules for bounded integers
(``build_min_max_int``) and literal escaping.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BuiltinRule",
    "PRIMITIVE_RULES",
    "STRING_FORMAT_RULES",
    "SPACE_RULE",
    "RESERVED_NAMES",
    "INT_MAX",
    "build_repetition",
    "build_min_max_int",
    "format_literal",
    "dump_json",
    "escape_rule_name",
    "gbnf_escape_length",
]

#: C++ ``std::numeric_limits<int>::max()``: "no maximum" for repetitions.
INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class BuiltinRule:
    """A rule body and the rules it refers to."""

    content: str
    deps: tuple[str, ...] = ()


SPACE_RULE = '| " " | "\\n"{1,2} [ \\t]{0,20}'

PRIMITIVE_RULES: dict[str, BuiltinRule] = {
    "boolean": BuiltinRule('("true" | "false")'),
    "decimal-part": BuiltinRule("[0-9]{1,16}"),
    "integral-part": BuiltinRule("[0] | [1-9] [0-9]{0,15}"),
    "number": BuiltinRule(
        '("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)?', ("integral-part", "decimal-part")
    ),
    "integer": BuiltinRule('("-"? integral-part)', ("integral-part",)),
    "value": BuiltinRule(
        "object | array | string | number | boolean | null", ("object", "array", "string", "number", "boolean", "null")
    ),
    "object": BuiltinRule(
        '"{" space ( string ":" space value ("," space string ":" space value)* )? space "}"', ("string", "value")
    ),
    "array": BuiltinRule('"[" space ( value ("," space value)* )? space "]"', ("value",)),
    "uuid": BuiltinRule(
        '"\\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\\""'
    ),
    "char": BuiltinRule('[^"\\\\\\x7F\\x00-\\x1F] | [\\\\] (["\\\\bfnrt] | "u" [0-9a-fA-F]{4})'),
    "string": BuiltinRule('"\\"" char* "\\""', ("char",)),
    "null": BuiltinRule('"null"'),
}

STRING_FORMAT_RULES: dict[str, BuiltinRule] = {
    "date": BuiltinRule('[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )'),
    "time": BuiltinRule(
        '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? '
        '( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )'
    ),
    "date-time": BuiltinRule('date "T" time', ("date", "time")),
    "date-string": BuiltinRule('"\\"" date "\\""', ("date",)),
    "time-string": BuiltinRule('"\\"" time "\\""', ("time",)),
    "date-time-string": BuiltinRule('"\\"" date-time "\\""', ("date-time",)),
}

RESERVED_NAMES = frozenset({"root", *PRIMITIVE_RULES, *STRING_FORMAT_RULES})

_INVALID_RULE_CHARS = re.compile(r"[^a-zA-Z0-9-]+")
_LITERAL_ESCAPE = re.compile(r'[\r\n"\\]')
_LITERAL_ESCAPES = {"\r": "\\r", "\n": "\\n", '"': '\\"', "\\": "\\\\"}


def escape_rule_name(name: str) -> str:
    """A rule name from any text: each run of other characters becomes ``-``."""
    return _INVALID_RULE_CHARS.sub("-", name)


def format_literal(literal: str) -> str:
    """A GBNF string literal for `literal` (llama.cpp escapes only \\r \\n \" and \\\\)."""
    return '"' + _LITERAL_ESCAPE.sub(lambda m: _LITERAL_ESCAPES[m.group(0)], literal) + '"'


def dump_json(value: Any) -> str:
    """Compact JSON like nlohmann's ``dump()``: no spaces, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def gbnf_escape_length(pattern: str, pos: int) -> int:
    """Length of the GBNF escape at `pattern[pos]` (0 if it is not one GBNF understands)."""
    if pos + 1 >= len(pattern) or pattern[pos] != "\\":
        return 0
    esc = pattern[pos + 1]
    if esc in "trn\\\"[]-":
        return 2
    n_hex = {"x": 2, "u": 4, "U": 8}.get(esc)
    if n_hex is None or pos + 2 + n_hex > len(pattern):
        return 0
    if any(h not in "0123456789abcdefABCDEF" for h in pattern[pos + 2:pos + 2 + n_hex]):
        return 0
    return 2 + n_hex


def build_repetition(item_rule: str, min_items: int, max_items: int, separator_rule: str = "") -> str:
    """``item{min,max}`` in GBNF, with `separator_rule` between items if given."""
    has_max = max_items != INT_MAX
    if max_items == 0:
        return ""
    if min_items == 0 and max_items == 1:
        return item_rule + "?"
    if not separator_rule:
        if min_items == 1 and not has_max:
            return item_rule + "+"
        if min_items == 0 and not has_max:
            return item_rule + "*"
        return f"{item_rule}{{{min_items},{max_items if has_max else ''}}}"
    result = item_rule + " " + build_repetition(
        f"({separator_rule} {item_rule})",
        0 if min_items == 0 else min_items - 1,
        max_items - 1 if has_max else max_items,
    )
    return f"({result})?" if min_items == 0 else result


class _IntRange:
    """llama.cpp's ``build_min_max_int``: integers in [min, max] as digit-range GBNF.

    None stands for an open end (llama.cpp uses INT64_MIN / INT64_MAX). Python integers
    make bounds of any size work (2**53, 10**30...). Three llama.cpp bugs are fixed (the output
    is otherwise identical): a minimum whose digits after the first start with 0 (105, 1000)
    let smaller numbers through, a minimum whose later digits start with 1 (1152 > 1050722)
    shut larger ones out, and a negative maximum let "-0" lead ("-06").
    """

    def __init__(self) -> None:
        self.out: list[str] = []

    def digit_range(self, lo: str, hi: str) -> None:
        self.out.append(f"[{lo}]" if lo == hi else f"[{lo}-{hi}]")

    def more_digits(self, min_digits: int, max_digits: int) -> None:
        self.out.append("[0-9]")
        if min_digits == max_digits == 1:
            return
        self.out.append("{" + str(min_digits))
        if max_digits != min_digits:
            self.out.append("," + (str(max_digits) if max_digits != INT_MAX else ""))
        self.out.append("}")

    def uniform_range(self, lo: str, hi: str) -> None:
        """Same-length decimal strings `lo`..`hi`."""
        i = 0
        while i < len(lo) and i < len(hi) and lo[i] == hi[i]:
            i += 1
        if i > 0:
            self.out.append(f'"{lo[:i]}"')
        if i >= len(lo) or i >= len(hi):
            return
        if i > 0:
            self.out.append(" ")
        sub_len = len(lo) - i - 1
        if sub_len <= 0:
            self.out.append(f"[{lo[i]}-{hi[i]}]")
            return
        lo_sub, hi_sub = lo[i + 1:], hi[i + 1:]
        zeros, nines = "0" * sub_len, "9" * sub_len
        to_reached = False
        self.out.append("(")
        if lo_sub == zeros:
            self.digit_range(lo[i], chr(ord(hi[i]) - 1))
            self.out.append(" ")
            self.more_digits(sub_len, sub_len)
        else:
            self.out.append(f"[{lo[i]}] (")
            self.uniform_range(lo_sub, nines)
            self.out.append(")")
            if ord(lo[i]) < ord(hi[i]) - 1:
                self.out.append(" | ")
                if hi_sub == nines:
                    self.digit_range(chr(ord(lo[i]) + 1), hi[i])
                    to_reached = True
                else:
                    self.digit_range(chr(ord(lo[i]) + 1), chr(ord(hi[i]) - 1))
                self.out.append(" ")
                self.more_digits(sub_len, sub_len)
        if not to_reached:
            self.out.append(" | ")
            self.digit_range(hi[i], hi[i])
            self.out.append(" ")
            self.uniform_range(zeros, hi_sub)
        self.out.append(")")

    def bounded(self, lo: int, hi: int, decimals_left: int) -> None:
        if lo < 0 and hi < 0:
            self.out.append('"-" (')
            self.build(-hi, -lo, decimals_left, True)
            self.out.append(")")
            return
        if lo < 0:
            self.out.append('"-" (')
            self.build(0, -lo, decimals_left, True)
            self.out.append(") | ")
            lo = 0
        lo_s, hi_s = str(lo), str(hi)
        for digits in range(len(lo_s), len(hi_s)):
            self.uniform_range(lo_s, "9" * digits)
            lo_s = "1" + "0" * digits
            self.out.append(" | ")
        self.uniform_range(lo_s, hi_s)

    def build(self, lo: int | None, hi: int | None, decimals_left: int = 16, top_level: bool = True) -> None:
        if lo is not None and hi is not None:
            self.bounded(lo, hi, decimals_left)
        elif lo is not None:
            self.at_least(lo, decimals_left, top_level)
        elif hi is not None:
            self.at_most(hi, decimals_left, top_level)
        else:
            raise ValueError("At least one of min_value or max_value must be set")

    def at_least(self, lo: int, decimals_left: int, top_level: bool) -> None:
        less = max(decimals_left - 1, 1)
        if lo < 0:
            self.out.append('"-" (')
            self.build(None, -lo, decimals_left, False)
            self.out.append(") | [0] | [1-9] ")
            self.more_digits(0, decimals_left - 1)
        elif lo == 0:
            if top_level:
                self.out.append("[0] | [1-9] ")
                self.more_digits(0, less)
            else:
                self.more_digits(1, decimals_left)
        elif lo <= 9:
            c = str(lo)
            start = "1" if top_level else "0"
            if c > start:
                self.digit_range(start, chr(ord(c) - 1))
                self.out.append(" ")
                self.more_digits(1, less)
                self.out.append(" | ")
            self.digit_range(c, "9")
            self.out.append(" ")
            self.more_digits(0, less)
        else:
            lo_s = str(lo)
            c = lo_s[0]
            start = "1" if top_level else "0"
            if c > start:  # llama.cpp tests c > "1" at every level, losing "0..." inside (1099 <= -111)
                self.digit_range(start, chr(ord(c) - 1))
                self.out.append(" ")
                self.more_digits(len(lo_s), less)
                self.out.append(" | ")
            self.digit_range(c, c)
            self.out.append(" (")
            if lo_s[1] == "0" and len(lo_s) > 2:  # llama.cpp passes int("05") = 5 on, losing a digit
                self.at_least_digits(lo_s[1:], less)
            else:
                self.build(int(lo_s[1:]), None, less, False)
            self.out.append(")")
            if c < "9":
                self.out.append(" | ")
                self.digit_range(chr(ord(c) + 1), "9")
                self.out.append(" ")
                self.more_digits(len(lo_s) - 1, less)

    def at_least_digits(self, rest: str, decimals_left: int) -> None:
        """Digit strings at least as long as `rest`, and not below it when just as long."""
        less = max(decimals_left - 1, 1)
        digit, tail = rest[0], rest[1:]
        if digit < "9":
            self.digit_range(chr(ord(digit) + 1), "9")
            self.out.append(" ")
            self.more_digits(len(tail), less)
            self.out.append(" | ")
        self.digit_range(digit, digit)
        if tail:
            self.out.append(" (")
            self.at_least_digits(tail, less)
            self.out.append(")")
        else:
            self.out.append(" ")
            self.more_digits(0, less)
        if digit > "0":
            self.out.append(" | ")
            self.digit_range("0", chr(ord(digit) - 1))
            self.out.append(" ")
            self.more_digits(len(tail) + 1, less)

    def at_most(self, hi: int, decimals_left: int, top_level: bool) -> None:
        less = max(decimals_left - 1, 1)
        if hi >= 0:
            if top_level:
                self.out.append('"-" [1-9] ')
                self.more_digits(0, less)
                self.out.append(" | ")
            self.build(0, hi, decimals_left, True)
        else:
            self.out.append('"-" (')
            # top level: no leading zero after the minus (llama.cpp passes False and allows "-06")
            self.build(-hi, None, decimals_left, True)
            self.out.append(")")


def build_min_max_int(min_value: int | None, max_value: int | None) -> str:
    """GBNF for the integers between `min_value` and `max_value` (None: unbounded)."""
    builder = _IntRange()
    # llama.cpp allows 16 digits past a one-sided bound; a bound with more digits (1e30) needs
    # that many and one more, or the rule asks for an impossible repetition ({29,14})
    widest = max(len(str(abs(v))) for v in (min_value, max_value) if v is not None) if (
        min_value is not None or max_value is not None) else 0
    builder.build(min_value, max_value, max(16, widest + 2))
    return "".join(builder.out)
