"""Random strings from a grammar, for property tests: everything generated must be accepted
(and, for JSON Schema grammars, parse as JSON and validate against the schema).

Expansion picks alternatives at random, but once deep enough it takes the alternative
that finishes soonest, so generation always terminates.
"""

from __future__ import annotations

import random

from llamactypes.grammar import Grammar
from llamactypes.grammar._ir import CHAR, REF, CharSet

# characters to draw from for classes: printable ASCII, controls, a few multi-byte ones
_POOL = [chr(c) for c in range(0x20, 0x7F)] + ["\t", "\n", "\r", "\x01", "\x7f", "é", "ß", "中", "日", "😀", "\u2028"]


def _min_lengths(grammar: Grammar) -> list[float]:
    """The shortest expansion (in characters) of every rule; inf for rules that never end."""
    rules = grammar.ir.rules
    best = [float("inf")] * len(rules)
    changed = True
    while changed:
        changed = False
        for i, alts in enumerate(rules):
            for alt in alts:
                length = sum(1 if k == CHAR else (best[v] if k == REF else float("inf")) for k, v in alt)
                if length < best[i]:
                    best[i], changed = length, True
    return best


def _pick_char(cs: CharSet, rng: random.Random) -> str:
    if not cs.negated and not cs.any and rng.random() < 0.7:
        lo, hi = rng.choice(cs.ranges)
        return chr(rng.randint(lo, min(hi, 0x10FFFF)))
    candidates = [c for c in _POOL if cs.contains(ord(c))]
    if not candidates:
        lo, hi = cs.ranges[0] if not cs.negated else (0x20, 0x20)
        return chr(lo)
    return rng.choice(candidates)


def generate(grammar: Grammar, rng: random.Random, max_depth: int = 12) -> str:
    """One random string of the grammar's language (token terminals are not supported)."""
    rules = grammar.ir.rules
    shortest = _min_lengths(grammar)
    out: list[str] = []

    def alt_cost(alt: list) -> float:
        return sum(1 if kind == CHAR else (shortest[value] if kind == REF else float("inf")) for kind, value in alt)

    def expand(rule: int, depth: int) -> None:
        alts = rules[rule]
        if depth > max_depth:
            alt = min(alts, key=alt_cost)
        else:
            alt = rng.choice([a for a in alts if alt_cost(a) < float("inf")])
        for kind, value in alt:
            if kind == CHAR:
                out.append(_pick_char(value, rng))
            else:
                assert kind == REF, "token terminals cannot be generated as text"
                expand(value, depth + 1)

    expand(grammar.ir.root, 0)
    return "".join(out)
