"""The parsed form of a GBNF grammar: llama.cpp's rule list, one Python object per element.

`Grammar.from_gbnf` builds a `GrammarIR` with exactly the rules and symbol ids llama.cpp's
parser builds (groups and repetitions become generated rules such as ``root_3``), so the
matcher explores the same pushdown stacks as ``llama_grammar_advance_stack`` and a test can
compare our rules with llama.cpp's element for element (`llama_elements`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

__all__ = [
    "CHAR",
    "REF",
    "TOKEN",
    "MAX_CODE_POINT",
    "CharSet",
    "TokenSpec",
    "Element",
    "GrammarIR",
    "ANY_CHAR",
]

#: Element kinds. An element is a ``(kind, value)`` tuple: ``(CHAR, CharSet)``,
#: ``(REF, rule_id)`` or ``(TOKEN, TokenSpec)``.
CHAR, REF, TOKEN = 0, 1, 2

#: llama.cpp keeps code points in a uint32 and its decoder tolerates malformed UTF-8, so
#: values above U+10FFFF can reach the matcher; "." and negated classes must match them too.
MAX_CODE_POINT = 0xFFFFFFFF

Element = tuple  # (kind, value); a plain tuple keeps the hot loops cheap


@dataclass(frozen=True)
class CharSet:
    """One terminal: a literal character, a class ``[a-z_]`` / ``[^"\\\\]``, or ``.``.

    `items` keeps llama.cpp's element order, each ``(low, high)`` with ``high is None`` for a
    single character, so the set can be written back as llama.cpp's CHAR/CHAR_ALT/RNG_UPPER.
    """

    items: tuple[tuple[int, int | None], ...]
    negated: bool = False
    any: bool = False

    @cached_property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """The listed ranges as inclusive ``(low, high)`` pairs (before negation)."""
        return tuple((lo, lo if hi is None else hi) for lo, hi in self.items)

    def contains(self, cp: int) -> bool:
        """True if code point `cp` matches (llama.cpp's ``llama_grammar_match_char``)."""
        if self.any:
            return True
        found = any(lo <= cp <= hi for lo, hi in self.ranges)
        return found != self.negated

    def matches_partial(self, value: int, n_remain: int) -> bool:
        """Could a UTF-8 sequence begun with bits `value`, `n_remain` bytes missing, match?

        A faithful port of ``llama_grammar_match_partial_char``, including its shortcut for
        negated classes (any overlap with the listed ranges counts as a mismatch).
        """
        if n_remain < 0 or (n_remain == 1 and value < 2):
            return False  # invalid sequence, or an overlong 2-byte form of a 7-bit char
        low = value << (n_remain * 6)
        high = low | ((1 << (n_remain * 6)) - 1)
        if low == 0:
            if n_remain == 2:
                low = 1 << 11
            elif n_remain == 3:
                low = 1 << 16
        if self.any:
            return True
        for lo, hi in self.ranges:
            if lo <= high and low <= hi:
                return not self.negated
        return self.negated


#: ``.``: any code point at all.
ANY_CHAR = CharSet(items=((0, MAX_CODE_POINT),), any=True)


@dataclass(frozen=True)
class TokenSpec:
    """A token terminal: ``<[id]>`` (id known) or ``<text>`` (resolved against a vocabulary).

    `negated` is the ``!`` form: any single token except this one.
    """

    id: int | None
    text: str | None
    negated: bool = False

    def __str__(self) -> str:
        body = f"<[{self.id}]>" if self.id is not None else str(self.text)
        return ("!" if self.negated else "") + body


@dataclass
class GrammarIR:
    """All rules of one grammar, indexed by llama.cpp's symbol ids.

    `rules[i]` is a list of alternatives, each a list of elements; `names[i]` the rule's
    name (``root_3`` for generated ones); `owners[i]` the user-written rule it came from;
    `symbols` maps user-written names to ids (llama.cpp's ``symbol_ids`` minus generated ones).
    """

    rules: list[list[list[Element]]]
    names: list[str]
    owners: list[str]
    symbols: dict[str, int]
    root: int
    positions: dict[int, tuple[int, int]] = field(default_factory=dict)

    def symbol_ids(self) -> dict[str, int]:
        """Every symbol name with its id, generated ones included (llama.cpp's ``symbol_ids``)."""
        return {name: i for i, name in enumerate(self.names)}

    def llama_elements(self, rule_id: int) -> list[tuple[str, int]]:
        """Rule `rule_id` as llama.cpp's ``llama_grammar_element`` list: ``(type_name, value)``.

        Type names are the ``LLAMA_GRETYPE_*`` suffixes (``"CHAR"``, ``"RULE_REF"``, ...); a
        token literal not yet resolved to an id is given as value -1.
        """
        out: list[tuple[str, int]] = []
        for i, alt in enumerate(self.rules[rule_id]):
            if i:
                out.append(("ALT", 0))
            for kind, value in alt:
                out.extend(_llama_element(kind, value))
        out.append(("END", 0))
        return out


def _llama_element(kind: int, value: object) -> list[tuple[str, int]]:
    """One IR element as the llama.cpp elements that encode it."""
    if kind == REF:
        return [("RULE_REF", int(value))]  # type: ignore[arg-type]
    if kind == TOKEN:
        spec: TokenSpec = value  # type: ignore[assignment]
        return [("TOKEN_NOT" if spec.negated else "TOKEN", -1 if spec.id is None else spec.id)]
    cs: CharSet = value  # type: ignore[assignment]
    if cs.any:
        return [("CHAR_ANY", 0)]
    out: list[tuple[str, int]] = []
    for j, (lo, hi) in enumerate(cs.items):
        first = ("CHAR_NOT" if cs.negated else "CHAR") if j == 0 else "CHAR_ALT"
        out.append((first, lo))
        if hi is not None:
            out.append(("CHAR_RNG_UPPER", hi))
    return out
