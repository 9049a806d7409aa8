"""Regex ``pattern`` to GBNF, and "any string but these", as llama.cpp's converter does them.

Only anchored patterns (``^...$``) of a common subset are converted: literals and escapes,
``.``, ``[...]`` classes written with GBNF-compatible escapes, groups ``(...)`` / ``(?:...)``,
``|``, and ``* + ? {m} {m,} {m,n}``. Anything else (``\\d``, ``\\w``, lookarounds, an
unanchored pattern...) raises `UnsupportedPattern`, and the converter falls back to "any
string" with a warning, exactly like llama.cpp. A pattern that is not a regex at all (an
unbalanced parenthesis) raises `InvalidPattern`, which becomes a `SchemaError`.

Unlike llama.cpp, what the pattern matches is written as JSON string content: a literal
``"``, ``\\`` or control character is escaped, and classes and ``.`` never produce them raw.
"""

from __future__ import annotations

from collections.abc import Callable

from ._schema_rules import INT_MAX, build_repetition, dump_json, gbnf_escape_length

__all__ = ["UnsupportedPattern", "InvalidPattern", "pattern_to_gbnf", "not_strings"]

_MAX_PATTERN_DEPTH = 100
_NON_LITERAL = set("|.()[]{}*+?^$")
_ESCAPED_IN_REGEX_ONLY = set("^$.[]()|{}*+?")


class UnsupportedPattern(ValueError):
    """A valid regex with no GBNF equivalent here."""


class InvalidPattern(ValueError):
    """Not a valid regex."""


def _stoi(text: str) -> int:
    """C++ ``std::stoi``: leading spaces, a sign, digits, anything after ignored."""
    stripped = text.lstrip(" \t\n\r\f\v")
    end = 1 if stripped[:1] in ("+", "-") else 0
    while end < len(stripped) and stripped[end].isdigit() and stripped[end].isascii():
        end += 1
    digits = stripped[:end]
    if not digits.lstrip("+-"):
        raise UnsupportedPattern("invalid number in curly brackets")
    value = int(digits)
    if not -(2**31) <= value < 2**31:
        raise UnsupportedPattern("invalid number in curly brackets")
    return value


class _PatternConverter:
    """The body of ``_pattern_to_rule``; `add_rule` registers helper rules (``name-1``...)."""

    def __init__(self, pattern: str, name: str, add_rule: Callable[[str, str], str], dot_rule: Callable[[], str]):
        self.sub = pattern[1:-1]
        self.name = name
        self.add_rule = add_rule
        self.dot_rule = dot_rule
        self.sub_rule_ids: dict[str, str] = {}
        self.i = 0
        self.depth = 0

    @staticmethod
    def to_rule(item: tuple[str, bool]) -> str:
        text, is_literal = item
        return f'"{text}"' if is_literal else text

    @staticmethod
    def join(seq: list[tuple[str, bool]]) -> tuple[str, bool]:
        """Concatenate a sequence, merging neighbouring literals into one string."""
        out: list[str] = []
        literal = ""
        for text, is_literal in seq:
            if is_literal:
                literal += text
                continue
            if literal:
                out.append(f'"{literal}"')
                literal = ""
            out.append(text)
        if literal:
            out.append(f'"{literal}"')
        return " ".join(out), False

    def transform(self) -> tuple[str, bool]:
        seq: list[tuple[str, bool]] = []
        sub, n = self.sub, len(self.sub)
        while self.i < n:
            c = sub[self.i]
            if c == ".":
                seq.append((self.dot_rule(), False))
                self.i += 1
            elif c == "(":
                self.group(seq)
            elif c == ")":
                self.i += 1
                if self.depth == 0:
                    raise InvalidPattern("unbalanced parentheses")
                self.depth -= 1
                return self.join(seq)
            elif c in "^$":
                raise UnsupportedPattern("anchor inside the pattern")
            elif c == "[":
                seq.append((self.char_class(), False))
            elif c == "|":
                seq.append(("|", False))
                self.i += 1
            elif c in "*+?":
                if not seq:
                    raise InvalidPattern("nothing to repeat")
                seq[-1] = (self.to_rule(seq[-1]) + c, False)
                self.i += 1
            elif c == "{":
                self.braces(seq)
            else:
                seq.append((self.literal(c), True))
        return self.join(seq)

    def group(self, seq: list[tuple[str, bool]]) -> None:
        sub = self.sub
        self.i += 1
        if self.i < len(sub) and sub[self.i] == "?":
            if self.i + 1 < len(sub) and sub[self.i + 1] == ":":
                self.i += 2  # a non-capturing group is just a group
            else:
                raise UnsupportedPattern("unsupported group syntax")
        self.depth += 1
        if self.depth > _MAX_PATTERN_DEPTH:
            raise UnsupportedPattern("pattern nesting too deep")
        seq.append((f"({self.to_rule(self.transform())})", False))

    def char_class(self) -> str:
        sub, n = self.sub, len(self.sub)
        out = "["
        self.i += 1
        while self.i < n and sub[self.i] != "]":
            if sub[self.i] == "\\":
                length = gbnf_escape_length(sub, self.i)
                if not length:
                    raise UnsupportedPattern(f"unsupported escape in character class: {sub[self.i:self.i + 2]}")
                out += sub[self.i:self.i + length]
                self.i += length
            else:
                out += sub[self.i]
                self.i += 1
        if self.i >= n:
            raise InvalidPattern("unterminated character class")
        self.i += 1
        return json_safe_class(out + "]")

    def braces(self, seq: list[tuple[str, bool]]) -> None:
        sub = self.sub
        start = self.i + 1
        end = sub.find("}", start)
        if end < 0:
            raise UnsupportedPattern("unterminated curly brackets")
        self.i = end + 1
        nums = sub[start:end].split(",")
        if len(nums) not in (1, 2):
            raise UnsupportedPattern("wrong number of values in curly brackets")
        if len(nums) == 1:
            lo = hi = _stoi(nums[0])
        else:
            lo = _stoi(nums[0]) if nums[0] else 0
            hi = _stoi(nums[1]) if nums[1] else INT_MAX
        if not seq:
            raise InvalidPattern("nothing to repeat")
        text, is_literal = seq[-1]
        if not is_literal:
            if text not in self.sub_rule_ids:
                self.sub_rule_ids[text] = ""
                self.sub_rule_ids[text] = self.add_rule(f"{self.name}-{len(self.sub_rule_ids)}", text)
            text = self.sub_rule_ids[text]
        seq[-1] = (build_repetition(f'"{text}"' if is_literal else text, lo, hi, ""), False)

    def literal(self, first: str) -> str:
        """A run of literal characters; the last one is left alone if a quantifier follows."""
        sub, n = self.sub, len(self.sub)
        out = ""
        while self.i < n:
            ch = sub[self.i]
            if ch == "\\":
                if self.i == n - 1:
                    raise InvalidPattern("trailing backslash")
                nxt = sub[self.i + 1]
                if nxt in _ESCAPED_IN_REGEX_ONLY:
                    out += nxt
                    self.i += 2
                else:
                    length = gbnf_escape_length(sub, self.i)
                    if not length:
                        raise UnsupportedPattern(f"unsupported escape: {sub[self.i:self.i + 2]}")
                    out += _json_char(_gbnf_char(sub[self.i:self.i + length], 0)[0], sub[self.i:self.i + length])
                    self.i += length
            elif ch not in _NON_LITERAL and (
                self.i == n - 1 or not out or sub[self.i + 1] == "." or sub[self.i + 1] not in _NON_LITERAL
            ):
                out += _json_char(ord(ch), ch)
                self.i += 1
            else:
                break
        if not out:  # nothing was consumed, e.g. a stray ']' or '}'
            raise UnsupportedPattern(f"unsupported character: {first}")
        return out


def pattern_to_gbnf(pattern: str, name: str, add_rule: Callable[[str, str], str], dot_rule: Callable[[], str]) -> str:
    """The rule body matching a JSON string whose content matches `pattern`."""
    if len(pattern) < 2 or pattern[0] != "^" or pattern[-1] != "$":
        raise UnsupportedPattern("not anchored with '^' and '$'")
    conv = _PatternConverter(pattern, name, add_rule, dot_rule)
    rule = conv.to_rule(conv.transform())
    if conv.depth != 0:
        raise InvalidPattern("unbalanced parentheses")
    return f'"\\"" ({rule}) "\\""'


# --- JSON string content -------------------------------------------------------------------
# A pattern constrains the *decoded* string, but the grammar writes JSON text: '"', '\\' and
# control characters must appear escaped. llama.cpp copies them raw (its grammar for ^"$
# produces """, which is not JSON); we escape literals and keep classes and "." to safe
# characters (plus the escaped forms of '"' and '\\').

_GBNF_SIMPLE = {"t": 9, "r": 13, "n": 10, "\\": 92, '"': 34, "[": 91, "]": 93, "-": 45}
_JSON_SHORT = {8: "\\\\b", 9: "\\\\t", 10: "\\\\n", 12: "\\\\f", 13: "\\\\r", 34: '\\\\\\"', 92: "\\\\\\\\"}
#: "." inside a pattern: any character but line breaks, as JSON string content.
JSON_DOT = '[^"\\\\\\x00-\\x1F] | "\\\\" ["\\\\/bft]'
JSON_DOT_ALL = '[^"\\\\\\x00-\\x1F] | "\\\\" ["\\\\/bfnrt]'


def _gbnf_char(text: str, i: int) -> tuple[int, int]:
    """The code point of the GBNF (escaped or raw) character at `text[i]`, and the next index."""
    if text[i] != "\\":
        return ord(text[i]), i + 1
    esc = text[i + 1]
    if esc in _GBNF_SIMPLE:
        return _GBNF_SIMPLE[esc], i + 2
    n = {"x": 2, "u": 4, "U": 8}[esc]
    return int(text[i + 2:i + 2 + n], 16), i + 2 + n


def _json_char(cp: int, gbnf: str) -> str:
    """GBNF literal text producing code point `cp` as JSON string content (`gbnf` if plain)."""
    if cp in _JSON_SHORT:
        return _JSON_SHORT[cp]
    if cp < 0x20:
        return f"\\\\u{cp:04x}"
    return gbnf


def json_safe_class(text: str) -> str:
    """A GBNF class from a pattern, restricted to what may appear raw in a JSON string.

    A negated class also excludes '"', '\\' and control characters; a positive one that
    contains them loses them, '"' and '\\' coming back as their escaped forms.
    """
    negated = text.startswith("[^")
    body, i, ranges = text[2 if negated else 1:-1], 0, []
    while i < len(body):
        lo, i = _gbnf_char(body, i)
        hi = lo
        if i + 1 < len(body) and body[i] == "-":
            hi, i = _gbnf_char(body, i + 1)
        ranges.append((lo, hi))

    def has(cp: int) -> bool:
        return any(lo <= cp <= hi for lo, hi in ranges)

    unsafe = [cp for cp in [34, 92, *range(0x20)] if has(cp)]
    if negated:
        return text if len(unsafe) == 34 else text[:-1] + '"\\\\\\x00-\\x1F]'
    if not unsafe:
        return text
    alternatives = []
    safe = [r for lo, hi in ranges for r in _minus_unsafe(lo, hi)]
    if safe:
        alternatives.append("[" + "".join(_class_item(lo, hi) for lo, hi in safe) + "]")
    alternatives += [_JSON_SHORT_LITERAL[cp] for cp in (34, 92) if cp in unsafe]
    return "(" + " | ".join(alternatives) + ")" if alternatives else '"\\\\u0000"'


_JSON_SHORT_LITERAL = {34: '"\\\\\\""', 92: '"\\\\\\\\"'}


def _minus_unsafe(lo: int, hi: int) -> list[tuple[int, int]]:
    """The range without '"', '\\' and control characters."""
    out, start = [], max(lo, 0x20)
    for cut in (34, 92):
        if start <= cut <= hi:
            if start < cut:
                out.append((start, cut - 1))
            start = cut + 1
    if start <= hi:
        out.append((start, hi))
    return out


def _class_item(lo: int, hi: int) -> str:
    def one(cp: int) -> str:
        return f"\\x{cp:02X}" if cp < 0x100 and chr(cp) in "\\]-^[" else (chr(cp) if cp < 0x110000 else f"\\U{cp:08X}")
    return one(lo) if lo == hi else f"{one(lo)}-{one(hi)}"


def _class_char(ch: str) -> str:
    """One character inside ``[...]``, escaped where GBNF needs it (llama.cpp writes it raw)."""
    return {"\\": "\\\\", "]": "\\]", "-": "\\-", "^": "\\x5E", "\n": "\\n", "\r": "\\r"}.get(ch, ch)


def not_strings(strings: list[str], char_rule: str) -> str:
    """A rule body matching any JSON string except the given ones (via a trie).

    ``not_strings(["a"])`` is ``["] ( [a] char+ | [^"a\\\x7F\x00-\x1F] char* )? ["]``.
    The trie runs over the names as JSON text (escaped), and the "any other character" class
    leaves out what JSON forbids raw (llama.cpp writes ``[^"a]``, which lets a raw newline
    or backslash start a key).
    """
    root: dict = {}
    for word in strings:
        node = root
        for ch in dump_json(word)[1:-1]:
            node = node.setdefault(ch, {})
        node[""] = True  # marks the end of a word

    def visit(node: dict) -> str:
        children = sorted((k, v) for k, v in node.items() if k)
        parts = []
        for ch, child in children:
            grand = [k for k in child if k]
            parts.append(f"[{_class_char(ch)}]" + (f" ({visit(child)})" if grand else f" {char_rule}+"))
        if children:
            rejects = "".join(_class_char(ch) for ch, _ in children)
            parts.append(f'[^"{rejects}\\\\\\x7F\\x00-\\x1F] {char_rule}*')
        return " | ".join(parts)

    return '["] ( ' + visit(root) + " )" + ("" if root.get("") else "?") + ' ["]'
