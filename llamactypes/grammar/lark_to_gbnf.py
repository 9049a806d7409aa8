"""Lark grammars and regexes -> GBNF (or one anchored regex), for freeform tools.

The OpenAI Responses API lets a `custom` tool constrain its input with
`format: {type: "grammar", syntax: "lark" | "regex", definition}` (Codex's
`apply_patch` does). We read a Lark grammar with lark's own grammar loader
(`lark.load_grammar`: rules and terminals as trees, imports resolved) — no Earley
parser is built, so grammars Earley refuses (`/(.*)/` matches the empty string)
still translate — and each regex with Python's own regex parser (`re._parser`).
Both land in one small IR:

    ("lit", text) ("cls", ranges, negated) ("seq", items) ("alt", items)
    ("rep", item, min, max|None) ("ref", name)

which prints as GBNF (`lark_to_gbnf`, `regex_to_gbnf`), or, when the grammar has no
recursion, as one regex (`grammar_to_regex`) that a JSON schema's string `pattern`
can carry: that is how a tool's input, sent inside JSON arguments, gets constrained.

What maps: rules and terminals, literals (also case-insensitive ones), `"a".."z"`,
`[x]`, `? * +`, `~n`, `~n..m`, aliases (ignored), regex literals, `.`, classes
(`\\d \\s \\w` as ASCII), groups, alternation, greedy and lazy quantifiers (the same
set of strings). What does not (`UnsupportedGrammar` says which): `%ignore`
(implicit whitespace between tokens), rule templates, `%declare`, regex anchors
inside a pattern, lookarounds, backreferences, regex flags other than `s`/`i`,
and — for `grammar_to_regex` only — recursive rules.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import GrammarError

__all__ = ["UnsupportedGrammar", "lark_to_gbnf", "regex_to_gbnf", "grammar_to_regex", "lark_rules"]

Node = tuple  # ("lit", str) | ("cls", tuple[tuple[int, int], ...], bool) | ("seq"/"alt", tuple) | ...

_MAX_REPEAT = 1000  # a larger explicit count would blow up the grammar (and means "unbounded" anyway)


class UnsupportedGrammar(ValueError):
    """A valid grammar using something GBNF (or a flat regex) cannot express here."""


# ------------------------------------------------------------------ regex -> IR

_DIGIT = ((48, 57),)
_SPACE = ((9, 13), (32, 32))
_WORD = ((48, 57), (65, 90), (95, 95), (97, 122))


def _category(name: str) -> tuple[tuple[tuple[int, int], ...], bool]:
    table = {"CATEGORY_DIGIT": (_DIGIT, False), "CATEGORY_NOT_DIGIT": (_DIGIT, True),
             "CATEGORY_SPACE": (_SPACE, False), "CATEGORY_NOT_SPACE": (_SPACE, True),
             "CATEGORY_WORD": (_WORD, False), "CATEGORY_NOT_WORD": (_WORD, True)}
    if name not in table:
        raise UnsupportedGrammar(f"regex class {name} has no GBNF equivalent")
    return table[name]


def _fold_case(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = list(ranges)
    for lo, hi in ranges:
        for c in range(lo, min(hi, 0x7F) + 1):
            ch = chr(c)
            if ch.isalpha():
                other = ord(ch.swapcase())
                out.append((other, other))
    return out


def _in_class(items: list[tuple[Any, Any]], icase: bool) -> Node:
    ranges: list[tuple[int, int]] = []
    negated = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negated = True
        elif name == "LITERAL":
            ranges.append((av, av))
        elif name == "RANGE":
            ranges.append(av)
        elif name == "CATEGORY":
            cat, cat_negated = _category(str(av))
            if cat_negated:
                raise UnsupportedGrammar(f"a negated category ({av}) inside a character class")
            ranges.extend(cat)
        else:
            raise UnsupportedGrammar(f"regex class item {name} has no GBNF equivalent")
    if icase:
        ranges = _fold_case(ranges)
    return ("cls", tuple(sorted(set(ranges))), negated)


def _sre_to_node(parsed: Any, dotall: bool, icase: bool, top: bool = False) -> Node:
    items: list[Node] = []
    seq = list(parsed)
    for i, (op, av) in enumerate(seq):
        name = str(op)
        if name == "LITERAL":
            ch = chr(av)
            items.append(_in_class([("LITERAL", av)], True) if icase and ch.isalpha() else ("lit", ch))
        elif name == "NOT_LITERAL":
            items.append(("cls", ((av, av),), True))
        elif name == "ANY":
            items.append(("cls", (), True) if dotall else ("cls", ((10, 10),), True))
        elif name == "IN":
            items.append(_in_class(list(av), icase))
        elif name == "CATEGORY":
            items.append(("cls", *_category(str(av))))
        elif name == "BRANCH":
            items.append(("alt", tuple(_sre_to_node(b, dotall, icase) for b in av[1])))
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise UnsupportedGrammar("inline regex flags inside a group")
            items.append(_sre_to_node(sub, dotall, icase))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            hi = None if hi == re._constants.MAXREPEAT else hi  # type: ignore[attr-defined]
            items.append(("rep", _sre_to_node(sub, dotall, icase), lo, hi))
        elif name == "AT":
            edge = i == 0 if str(av) == "AT_BEGINNING" else i == len(seq) - 1
            if not (top and edge and str(av) in ("AT_BEGINNING", "AT_END", "AT_BEGINNING_STRING",
                                                 "AT_END_STRING")):
                raise UnsupportedGrammar(f"regex anchor {av} inside the pattern")
        else:
            raise UnsupportedGrammar(f"regex construct {name} (lookaround, backreference, ...) has no GBNF "
                                     "equivalent")
    return ("seq", tuple(items))


def regex_node(pattern: str, flags: str = "") -> Node:
    """A regex as IR (Python/Lark regex syntax); `flags` may hold `s` and `i`."""
    unknown = set(flags) - set("si")
    if unknown:
        raise UnsupportedGrammar(f"regex flags {''.join(sorted(unknown))!r} are not supported (only s and i)")
    try:
        parsed = re._parser.parse(pattern, 0)  # type: ignore[attr-defined]
    except re.error as exc:
        raise GrammarError(f"invalid regex /{pattern}/: {exc}") from None
    return _sre_to_node(parsed, "s" in flags, "i" in flags, top=True)


# ------------------------------------------------------------------ lark -> IR

def _literal(token: Any) -> Node:
    from lark.lexer import PatternRE, PatternStr
    from lark.load_grammar import _literal_to_pattern

    pattern = _literal_to_pattern(token)
    flags = "".join(pattern.flags)
    if isinstance(pattern, PatternStr):
        if "i" in flags:
            return ("seq", tuple(_in_class([("LITERAL", ord(c))], True) if c.isalpha() else ("lit", c)
                                 for c in pattern.value))
        return ("lit", pattern.value)
    assert isinstance(pattern, PatternRE)
    return regex_node(pattern.value, flags)


def _tree_to_node(tree: Any) -> Node:
    from lark import Token, Tree
    from lark.grammar import NonTerminal, Terminal

    if isinstance(tree, (NonTerminal, Terminal)):
        return ("ref", tree.name)
    if isinstance(tree, Token):
        raise UnsupportedGrammar(f"unexpected token {tree!r} in the grammar tree")
    assert isinstance(tree, Tree)
    kind, children = tree.data, tree.children
    if kind == "expansions":
        return ("alt", tuple(_tree_to_node(c) for c in children))
    if kind == "alias":
        return _tree_to_node(children[0])
    if kind == "expansion":
        return ("seq", tuple(_tree_to_node(c) for c in children))
    if kind == "value":
        return _tree_to_node(children[0])
    if kind == "maybe":
        return ("rep", _tree_to_node(children[0]), 0, 1)
    if kind == "literal":
        return _literal(children[0])
    if kind == "range":
        lo, hi = (_literal(c) for c in children)
        if lo[0] != "lit" or hi[0] != "lit" or len(lo[1]) != 1 or len(hi[1]) != 1:
            raise UnsupportedGrammar("a range must be between two single characters")
        return ("cls", ((ord(lo[1]), ord(hi[1])),), False)
    if kind == "expr":
        node = _tree_to_node(children[0])
        op = children[1]
        if op.type == "OP":
            lo, hi = {"?": (0, 1), "*": (0, None), "+": (1, None)}[str(op)]
            return ("rep", node, lo, hi)
        counts = [int(c) for c in children[2:]]
        lo, hi = counts[0], counts[-1]
        if hi > _MAX_REPEAT:
            raise UnsupportedGrammar(f"a repetition count of {hi} (more than {_MAX_REPEAT})")
        return ("rep", node, lo, hi)
    raise UnsupportedGrammar(f"the Lark construct {kind!r} has no GBNF equivalent")


def lark_rules(text: str) -> tuple[dict[str, Node], str]:
    """The rules and terminals of a Lark grammar as IR, and the start rule's name."""
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.exceptions import LarkError
    from lark.load_grammar import load_grammar

    try:
        grammar, _ = load_grammar(text, "<tool grammar>", None, False)
    except LarkGrammarError as exc:
        raise GrammarError(f"invalid Lark grammar: {exc}") from None
    except LarkError as exc:
        raise GrammarError(f"invalid Lark grammar: {exc}") from None
    if grammar.ignore:
        raise UnsupportedGrammar("%ignore (implicit text between tokens) cannot be expressed in GBNF")
    rules: dict[str, Node] = {}
    for name, params, tree, _options in grammar.rule_defs:
        if params:
            raise UnsupportedGrammar(f"rule template {name}{{...}}")
        rules[str(name)] = _tree_to_node(tree)
    for name, (tree, _priority) in grammar.term_defs:
        if tree is None:
            raise UnsupportedGrammar(f"%declare {name} (a terminal with no definition)")
        rules[str(name)] = _tree_to_node(tree)
    start = "start" if "start" in rules else next(iter(rules), "")
    if not start:
        raise GrammarError("the Lark grammar defines no rules")
    return rules, start


# ------------------------------------------------------------------ IR -> GBNF

def _gbnf_char(c: int, in_class: bool) -> str:
    ch = chr(c)
    special = '\\]-^[' if in_class else '\\"'
    if 0x20 <= c < 0x7F and ch not in special:
        return ch
    named = {9: "\\t", 10: "\\n", 13: "\\r"}
    if c in named:
        return named[c]
    if c < 0x100:
        return f"\\x{c:02X}"
    return f"\\u{c:04X}" if c < 0x10000 else f"\\U{c:08X}"


def _gbnf_class(ranges: tuple[tuple[int, int], ...], negated: bool) -> str:
    if not ranges:
        return "[^\\x00-\\x00]" if negated else "[\\x00-\\x00]"  # never empty: () is not a class
    body = "".join(_gbnf_char(lo, True) if lo == hi else f"{_gbnf_char(lo, True)}-{_gbnf_char(hi, True)}"
                   for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


def _gbnf(node: Node, names: dict[str, str]) -> str:
    kind = node[0]
    if kind == "lit":
        return '"' + "".join(_gbnf_char(ord(c), False) for c in node[1]) + '"'
    if kind == "cls":
        if not node[1] and node[2]:
            return "."  # any character
        return _gbnf_class(node[1], node[2])
    if kind == "ref":
        return names[node[1]]
    if kind == "seq":
        parts = [_gbnf(n, names) for n in node[1]]
        return " ".join(f"({p})" if " | " in p else p for p in parts) if parts else '""'
    if kind == "alt":
        return " | ".join(_gbnf(n, names) for n in node[1]) or '""'
    inner = _gbnf(node[1], names)
    inner = f"({inner})" if not _atomic(node[1]) else inner
    return _repeat(inner, node[2], node[3])


def _atomic(node: Node) -> bool:
    return node[0] in ("lit", "cls", "ref") or (node[0] in ("seq", "alt") and len(node[1]) == 1
                                                and _atomic(node[1][0]))


def _rule_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", name) or "rule"


def _print_rules(rules: dict[str, Node], start: str) -> str:
    names = {name: _rule_name(name) for name in rules}
    used: set[str] = set()
    for name in list(names):
        base, n = names[name], 1
        while names[name] in used or names[name] == "root":
            n += 1
            names[name] = f"{base}-{n}"
        used.add(names[name])
    missing = {r for node in rules.values() for r in _refs(node)} - set(rules)
    if missing:
        raise GrammarError(f"the grammar uses undefined rules: {', '.join(sorted(missing))}")
    lines = [f"root ::= {names[start]}"]
    lines += [f"{names[name]} ::= {_gbnf(node, names)}" for name, node in rules.items()]
    return "\n".join(lines) + "\n"


def _refs(node: Node) -> list[str]:
    if node[0] == "ref":
        return [node[1]]
    if node[0] in ("seq", "alt"):
        return [r for child in node[1] for r in _refs(child)]
    if node[0] == "rep":
        return _refs(node[1])
    return []


def lark_to_gbnf(text: str) -> str:
    """A Lark grammar as GBNF (`root` is Lark's `start`)."""
    rules, start = lark_rules(text)
    return _print_rules(rules, start)


def regex_to_gbnf(pattern: str) -> str:
    """A regex (full match) as GBNF."""
    return _print_rules({"pattern": regex_node(pattern)}, "pattern")


# ------------------------------------------------------------------ IR -> one regex

def _regex_char(c: int, in_class: bool) -> str:
    ch = chr(c)
    if in_class:
        return _gbnf_char(c, True)
    if ch in "\\^$.|?*+()[]{}":
        return "\\" + ch
    if 0x20 <= c < 0x7F:
        return ch
    return _gbnf_char(c, False)


_JSON_UNSAFE = {9: "\\t", 10: "\\n", 13: "\\r", 34: '"', 92: "\\\\"}


def _regex(node: Node, rules: dict[str, Node], stack: tuple[str, ...]) -> str:
    kind = node[0]
    if kind == "lit":
        return "".join(_regex_char(ord(c), False) for c in node[1])
    if kind == "cls":
        if not node[1] and node[2]:
            raise UnsupportedGrammar("a regex that matches any character including newline (flag s)")
        if not node[1]:
            raise UnsupportedGrammar("an empty character class")
        if node[1:] == (((10, 10),), True):
            return "."  # the JSON converter's dot: any character but a newline, escapes included
        body = "".join(_regex_char(lo, True) if lo == hi else f"{_regex_char(lo, True)}-{_regex_char(hi, True)}"
                       for lo, hi in node[1])
        if not node[2]:
            return f"[{body}]"
        # the converter keeps '"', '\\' and tab out of a negated class: add back those it does not exclude
        extra = [_JSON_UNSAFE[c] for c in sorted(_JSON_UNSAFE) if not any(lo <= c <= hi for lo, hi in node[1])]
        return f"(?:[^{body}]|{'|'.join(extra)})" if extra else f"[^{body}]"
    if kind == "ref":
        name = node[1]
        if name in stack:
            raise UnsupportedGrammar(f"rule {name} is recursive: only a grammar without recursion becomes a regex")
        if name not in rules:
            raise GrammarError(f"the grammar uses an undefined rule: {name}")
        return f"(?:{_regex(rules[name], rules, stack + (name,))})"
    if kind == "seq":
        return "".join(f"(?:{_regex(n, rules, stack)})" if n[0] == "alt" and len(n[1]) > 1
                       else _regex(n, rules, stack) for n in node[1])
    if kind == "alt":
        return "|".join(_regex(n, rules, stack) for n in node[1])
    inner = f"(?:{_regex(node[1], rules, stack)})"
    return _repeat(inner, node[2], node[3])


def grammar_to_regex(definition: str, syntax: str) -> str:
    """A custom tool's grammar (`syntax` "lark" or "regex") as one unanchored regex in the
    subset the JSON-schema `pattern` converter reads. Raises `UnsupportedGrammar` (recursive
    rules, anchors, ...) or `GrammarError` (not a grammar at all)."""
    if syntax == "regex":
        return _regex(regex_node(definition), {}, ())
    if syntax != "lark":
        raise UnsupportedGrammar(f"grammar syntax {syntax!r} (only lark and regex)")
    rules, start = lark_rules(definition)
    return _regex(("ref", start), rules, ())


def _repeat(inner: str, lo: int, hi: int | None) -> str:
    """`inner` repeated lo..hi times (hi None: unbounded), written the same way in GBNF and in a regex."""
    if (lo, hi) == (0, 1):
        return inner + "?"
    if (lo, hi) == (0, None):
        return inner + "*"
    if (lo, hi) == (1, None):
        return inner + "+"
    return f"{inner}{{{lo},{'' if hi is None else hi}}}" if hi != lo else f"{inner}{{{lo}}}"
