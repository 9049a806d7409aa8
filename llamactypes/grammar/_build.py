"""From the Lark tree of a GBNF text to llama.cpp's rule list (`GrammarIR`).

This mirrors ``llama_grammar_parser`` step by step so the result is the same rules with the
same symbol ids: a group ``( ... )`` becomes a generated rule, and ``S{m,n}`` is rewritten to
``S`` repeated m times followed by n-m nested optional rules (``S*`` = ``S{0,}`` etc.),
including llama.cpp's limits (at most 2000 repetitions; a maximum above 2000 means "no
maximum"). Where llama.cpp accepts something that can never match or crashes, we raise a
`GrammarError` instead: ``[]``, ``[z-a]``, ``x{3,1}``.
"""

from __future__ import annotations

from lark import Token, Tree

from ..errors import GrammarError
from ..limits import DEFAULT_LIMITS, Limits, limit_message
from ._ir import ANY_CHAR, CHAR, REF, TOKEN, CharSet, Element, GrammarIR, TokenSpec
from ._syntax import Msg, error_at

__all__ = ["build_ir", "MAX_REPETITION_THRESHOLD"]

#: llama.cpp's ``MAX_REPETITION_THRESHOLD``.
MAX_REPETITION_THRESHOLD = 2000
_NO_MAX = -1
_SIMPLE_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-"}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


class _Builder:
    """Walks the tree in source order, assigning symbol ids the way llama.cpp does."""

    def __init__(self, text: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.text = text
        self.limits = limits
        self.n_elements = 0  # elements of the finished rules, END slots included
        self.names: list[str] = []
        self.owners: list[str] = []
        self.symbols: dict[str, int] = {}
        self.rules: dict[int, list[list[Element]]] = {}
        self.positions: dict[int, tuple[int, int]] = {}
        self.uses: list[tuple[int, Token]] = []

    # --- symbols ----------------------------------------------------------------------------
    def symbol(self, name: str) -> int:
        """llama.cpp's ``get_symbol_id``: the id of a user-written name, new ids in order."""
        if name not in self.symbols:
            self.symbols[name] = len(self.names)
            self.names.append(name)
            self.owners.append(name)
        return self.symbols[name]

    def generate(self, base: str) -> int:
        """llama.cpp's ``generate_symbol_id``: a fresh rule named ``{base}_{id}``."""
        rule_id = len(self.names)
        self.names.append(f"{base}_{rule_id}")
        self.owners.append(base)
        return rule_id

    def error(self, reason: str, token: Token, offset: int = 0) -> GrammarError:
        """A `GrammarError` pointing `offset` characters into `token`."""
        line, column = token.line, token.column
        for ch in str(token)[:offset]:
            if ch == "\n":
                line, column = line + 1, 1
            else:
                column += 1
        return error_at(self.text, reason, line, column)

    # --- rules ------------------------------------------------------------------------------
    def rule(self, tree: Tree) -> None:
        """``name ::= alternates``: the rule is registered before its body, as in llama.cpp."""
        name_tok, _define, alternates = tree.children
        rule_id = self.symbol(str(name_tok))
        self.positions[rule_id] = (name_tok.line, name_tok.column)
        self.alternates(alternates, str(name_tok), rule_id)

    def alternates(self, tree: Tree, rule_name: str, rule_id: int) -> None:
        """All alternatives of a rule or group; llama.cpp's ``parse_alternates``."""
        alts = [self.sequence(seq, rule_name) for seq in tree.children]
        self.rules[rule_id] = alts
        self.n_elements += sum(len(alt) + 1 for alt in alts)
        self.check_elements(0, tree.meta if not tree.meta.empty else None)

    def check_elements(self, extra: int, where: object) -> None:
        """Refuse a grammar whose rules would hold more than ``grammar_max_elements``."""
        total = self.n_elements + extra
        if total > self.limits.grammar_max_elements:
            reason = limit_message("the grammar's element count after expanding repetitions", total,
                                   self.limits.grammar_max_elements,
                                   "raise Limits.grammar_max_elements, see docs/limits.md")
            line, column = getattr(where, "line", 1), getattr(where, "column", 1)
            raise error_at(self.text, reason, line, column)

    def sequence(self, tree: Tree, rule_name: str) -> list[Element]:
        """One alternative; llama.cpp's ``parse_sequence``."""
        out: list[Element] = []
        for item in tree.children:
            primary, *quantifiers = item.children
            last_sym_start = len(out)
            n_prev_rules = self.primary(primary, rule_name, out)
            for quantifier in quantifiers:
                lo, hi, where = self.bounds(quantifier)
                n_prev_rules = self.repeat(out, last_sym_start, lo, hi, n_prev_rules, rule_name, where)
        return out

    def primary(self, node: Tree | Token, rule_name: str, out: list[Element]) -> int:
        """Append one item's elements to `out`; return llama.cpp's ``n_prev_rules`` for it."""
        if isinstance(node, Tree):  # a group
            lpar, alternates = node.children[0], node.children[-2]
            n_before = len(self.names)
            sub_id = self.generate(rule_name)
            self.positions[sub_id] = (lpar.line, lpar.column)
            self.alternates(alternates, rule_name, sub_id)
            out.append((REF, sub_id))
            return max(1, len(self.names) - n_before)
        kind = node.type
        if kind == "STRING":
            out.extend((CHAR, CharSet(items=((cp, None),))) for cp in self.literal(node))
        elif kind == "CHAR_CLASS":
            out.append((CHAR, self.char_class(node)))
        elif kind == "DOT":
            out.append((CHAR, ANY_CHAR))
        elif kind == "NAME":
            ref_id = self.symbol(str(node))
            self.uses.append((ref_id, node))
            out.append((REF, ref_id))
        elif kind == "TOKEN":
            out.append((TOKEN, self.token(node)))
        return 1

    # --- terminals --------------------------------------------------------------------------
    def char(self, tok: Token, body: str, i: int, offset: int) -> tuple[int, int]:
        """llama.cpp's ``parse_char`` at `body[i]`: (code point, next index)."""
        ch = body[i]
        if ch != "\\":
            return ord(ch), i + 1
        esc = body[i + 1] if i + 1 < len(body) else ""
        if esc in _SIMPLE_ESCAPES:
            return ord(_SIMPLE_ESCAPES[esc]), i + 2
        if esc in _HEX_DIGITS:
            n = _HEX_DIGITS[esc]
            digits = body[i + 2:i + 2 + n]
            if len(digits) != n or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise self.error(f"{Msg.BAD_HEX} (at \\{esc}{digits})", tok, offset + i)
            return int(digits, 16), i + 2 + n
        raise self.error(f"{Msg.UNKNOWN_ESCAPE} '\\{esc}'", tok, offset + i)

    def literal(self, tok: Token) -> list[int]:
        """The code points of a ``"..."`` literal."""
        body, i, out = str(tok)[1:-1], 0, []
        while i < len(body):
            cp, i = self.char(tok, body, i, 1)
            out.append(cp)
        return out

    def char_class(self, tok: Token) -> CharSet:
        """``[...]`` / ``[^...]``, ranges read as llama.cpp does (``[a-]`` is 'a' and '-')."""
        text = str(tok)
        negated = text.startswith("[^")
        offset = 2 if negated else 1
        body, i, items = text[offset:-1], 0, []
        if not body:
            raise self.error(Msg.EMPTY_CLASS, tok)
        while i < len(body):
            start = i
            lo, i = self.char(tok, body, i, offset)
            hi = None
            if i + 1 < len(body) and body[i] == "-":
                hi, i = self.char(tok, body, i + 1, offset)
                if hi < lo:
                    shown = body[start:i]
                    raise self.error(f"{Msg.INVERTED_RANGE} ({shown})", tok, offset + start)
            items.append((lo, hi))
        return CharSet(items=tuple(items), negated=negated)

    def token(self, tok: Token) -> TokenSpec:
        """``<[id]>`` / ``<text>``, optionally negated with ``!``."""
        text = str(tok)
        negated = text.startswith("!")
        body = text[1:] if negated else text
        if body.startswith("<["):
            token_id = int(body[2:-2])
            if token_id > 0xFFFFFFFF:
                raise self.error(f"{Msg.TOKEN_ID} ({token_id})", tok)
            return TokenSpec(id=token_id, text=None, negated=negated)
        return TokenSpec(id=None, text=body, negated=negated)

    # --- repetition -------------------------------------------------------------------------
    def bounds(self, q: Tree | Token) -> tuple[int, int, Token]:
        """(min, max or `_NO_MAX`, token to point at) of one quantifier."""
        if isinstance(q, Token):
            return {"STAR": (0, _NO_MAX), "PLUS": (1, _NO_MAX), "QMARK": (0, 1)}[q.type] + (q,)
        ints = [int(t) for t in q.children if isinstance(t, Token) and t.type == "INT"]
        lbrace = q.children[0]
        lo = ints[0]
        hi = lo if q.data == "exactly" else (ints[1] if len(ints) == 2 else _NO_MAX)
        if lo > MAX_REPETITION_THRESHOLD:
            raise self.error(f"{Msg.TOO_MANY_REPETITIONS} (minimum {lo})", lbrace)
        if hi != _NO_MAX and hi > MAX_REPETITION_THRESHOLD:
            hi = _NO_MAX  # llama.cpp reads a maximum above the threshold as "no maximum"
        if hi != _NO_MAX and hi < lo:
            raise self.error(f"{Msg.MIN_OVER_MAX} ({{{lo},{hi}}})", lbrace)
        return lo, hi, lbrace

    def repeat(self, out: list[Element], start: int, lo: int, hi: int, n_prev: int, rule_name: str,
               where: Token) -> int:
        """llama.cpp's ``handle_repetitions``: rewrite ``out[start:]`` as ``S{lo,hi}``."""
        if start == len(out):
            raise self.error(Msg.NOTHING_TO_REPEAT, where)
        no_max = hi == _NO_MAX
        prev = out[start:]
        total = hi if (not no_max and hi > 0) else (lo if lo > 0 else 1)
        if n_prev * total > MAX_REPETITION_THRESHOLD:
            raise self.error(f"{Msg.TOO_MANY_REPETITIONS} ({n_prev * total} copies)", where)
        n_opt = 1 if no_max else hi - lo
        self.check_elements(len(out) + len(prev) * max(lo - 1, 0) + n_opt * (len(prev) + 3), where)
        if lo == 0:
            del out[start:]
        else:
            out.extend(prev * (lo - 1))
        last_rec = 0
        for i in range(n_opt):
            rec_id = self.generate(rule_name)
            self.positions[rec_id] = (where.line, where.column)
            rec = list(prev)
            if i > 0 or no_max:
                rec.append((REF, rec_id if no_max else last_rec))
            self.rules[rec_id] = [rec, []]
            last_rec = rec_id
        if n_opt > 0:
            out.append((REF, last_rec))
        return n_prev * total


def build_ir(tree: Tree, text: str, root: str, limits: Limits = DEFAULT_LIMITS) -> GrammarIR:
    """Turn a parse tree into a `GrammarIR`; check references, the root rule and the size."""
    builder = _Builder(text, limits)
    for rule in tree.children:
        builder.rule(rule)
    if not builder.rules:
        raise error_at(text, Msg.EMPTY_GRAMMAR, 1, 1)
    for ref_id, tok in builder.uses:
        if ref_id not in builder.rules:
            name = builder.names[ref_id]
            raise builder.error(f"{Msg.UNDEFINED_RULE} '{name}' (it is used here but never defined)", tok)
    if root not in builder.symbols:
        first = min(builder.positions[i] for i in builder.rules if builder.names[i] in builder.symbols)
        defined = ", ".join(sorted(builder.symbols))
        raise error_at(text, f"{Msg.NO_ROOT} named '{root}' (defined: {defined})", *first)
    rules = [builder.rules[i] for i in range(len(builder.names))]
    return GrammarIR(
        rules=rules,
        names=builder.names,
        owners=builder.owners,
        symbols=builder.symbols,
        root=builder.symbols[root],
        positions=builder.positions,
    )
