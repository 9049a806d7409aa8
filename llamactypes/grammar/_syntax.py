"""Reading GBNF text into a Lark tree, and turning every mistake into a pointed `GrammarError`.

The grammar of GBNF is package data (`gbnf.lark`). Syntax errors are explained with
`GBNF_ERRORS`, a table of typical mistakes in the style of lark's own ``GRAMMAR_ERRORS``:
Lark matches a failing parse against the examples (same parser state, same token) and the
label becomes the message. The same table lists the mistakes the parser finds after parsing
(undefined rules, inverted ranges, left recursion...), and the tests feed every example
through `Grammar.from_gbnf` and check that its label comes out.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import GrammarError

__all__ = ["GBNF_ERRORS", "parse_tree", "error_at", "context_snippet", "Msg"]


class Msg:
    """The labels of `GBNF_ERRORS`, named so the parser can raise them without typos."""

    MISSING_DEFINE = "missing '::=' after the rule name"
    RULE_NAME = "expected a rule name at the start of a line"
    LEADING_BAR = (
        "a line cannot start with '|': outside parentheses a rule ends at the line break "
        "(end the previous line with '|', or wrap the alternatives in '( ... )')"
    )
    MISPLACED_DEFINE = (
        "unexpected '::=': a rule definition must start on its own line "
        "(is the previous rule missing its body?)"
    )
    UNTERMINATED_STRING = 'unterminated string literal (missing closing ")'
    UNTERMINATED_CLASS = "unterminated character class (missing closing ])"
    BAD_TOKEN = "malformed token: expected <[id]>, !<[id]>, <text> or !<text>"
    UNCLOSED_PAREN = "unclosed parenthesis (missing ')')"
    UNMATCHED_PAREN = "unmatched ')'"
    NOTHING_TO_REPEAT = "a quantifier (*, +, ?, {m,n}) needs something before it to repeat"
    BAD_BRACES = "malformed repetition: expected {m}, {m,} or {m,n} with whole numbers"
    UNEXPECTED_CHAR = "unexpected character"
    UNEXPECTED = "unexpected input"
    # found after parsing
    UNKNOWN_ESCAPE = "unknown escape sequence"
    BAD_HEX = "malformed escape sequence: \\x needs 2 hex digits, \\u 4 and \\U 8"
    EMPTY_CLASS = "empty character class: it can never match"
    INVERTED_RANGE = "inverted character range: it can never match"
    MIN_OVER_MAX = "repetition minimum is larger than its maximum"
    TOO_MANY_REPETITIONS = "repetition too large (llama.cpp allows at most 2000 copies)"
    TOKEN_ID = "token id too large"
    UNDEFINED_RULE = "undefined rule"
    NO_ROOT = "the grammar has no root rule"
    EMPTY_GRAMMAR = "the grammar is empty: it defines no rules"
    LEFT_RECURSION = "left recursion"


#: Typical mistakes, each with example grammars that make it. Syntax labels are matched by
#: Lark against the failing parse; the others are raised by the parser's checks.
GBNF_ERRORS: list[tuple[str, list[str]]] = [
    (Msg.MISSING_DEFINE, ['root\n', 'root "a"\n', 'root := "a"\n', "root = [a]\n", "root\n::= x\n"]),
    (Msg.RULE_NAME, ['"a"\n', '::= "a"\n', 'root ::= "a"\n"b"\n', "(a) ::= b\n"]),
    (Msg.LEADING_BAR, ['root ::= "a"\n  | "b"\n', 'root ::= "a"\n| "b"\n']),
    (Msg.MISPLACED_DEFINE, ['root ::= a b ::= "c"\n', 'root ::=\nb ::= "c"\n', "root ::= ::= a\n"]),
    (Msg.UNTERMINATED_STRING, ['root ::= "abc\n', 'root ::= "a" "b\n', 'root ::= ("abc\\")\n']),
    (Msg.UNTERMINATED_CLASS, ["root ::= [a-z\n", "root ::= [\\]\n", 'root ::= ("a" [^"\n']),
    (Msg.BAD_TOKEN, ["root ::= <[abc]>\n", "root ::= <think\n", "root ::= ! <[1]>\n", "root ::= !x\n"]),
    (Msg.UNCLOSED_PAREN, ['root ::= ("a"\n', 'root ::= ("a" | "b"', "root ::= (\n", 'root ::= (("a")\n',
                          'root ::= ("a"*\n', 'root ::= ("a" |\n']),
    (Msg.UNMATCHED_PAREN, ['root ::= "a")\n', "root ::= )\n", 'root ::= ("a"))\n', 'root ::= "a" | )\n']),
    (Msg.NOTHING_TO_REPEAT, ["root ::= *\n", "root ::= +\n", "root ::= ?\n", "root ::= {2}\n",
                             'root ::= "a" | *\n', 'root ::= ( * "a")\n', 'root ::= "a"{0}*\n']),
    (Msg.BAD_BRACES, ['root ::= "a"{,}\n', 'root ::= "a"{,10}\n', 'root ::= "a"{x}\n',
                      'root ::= "a"{1,2,3}\n', 'root ::= "a"{\n', 'root ::= "a"{2\n', 'root ::= "a"{-1}\n']),
    (Msg.UNEXPECTED_CHAR, ['root ::= "a" @\n', "root ::= a\nroot ::= b;\n"]),
    (Msg.UNKNOWN_ESCAPE, ['root ::= "\\q"\n', "root ::= [\\w]\n", 'root ::= "a\\ b"\n']),
    (Msg.BAD_HEX, ['root ::= "\\x4"\n', 'root ::= "\\u12G4"\n', "root ::= [\\U0001F60]\n"]),
    (Msg.EMPTY_CLASS, ["root ::= []\n", "root ::= [^]\n"]),
    (Msg.INVERTED_RANGE, ["root ::= [z-a]\n", "root ::= [a-z9-0]\n"]),
    (Msg.MIN_OVER_MAX, ['root ::= "a"{3,1}\n']),
    (Msg.TOO_MANY_REPETITIONS, ['root ::= "a"{5000}\n', 'root ::= "a"{5000,}\n',
                                'root ::= (((([^x]*){0,99}){0,99}){0,99}){0,99}\n']),
    (Msg.TOKEN_ID, ["root ::= <[4294967296]>\n"]),
    (Msg.UNDEFINED_RULE, ["root ::= numero\n", "root ::= a\na ::= (b | c)\nb ::= x\n"]),
    (Msg.NO_ROOT, ['rot ::= "a"\n']),
    (Msg.EMPTY_GRAMMAR, ["", "# nothing here\n\n"]),
    (Msg.LEFT_RECURSION, ['root ::= "a" | root "a"\n',
                          'root ::= asdf\nasdf ::= "a" | foo "b"\nfoo ::= "c" | asdf "d"\n',
                          'root ::= x\nx ::= e x "a" | "b"\ne ::= ("c")?\n']),
]

_SYNTAX_LABELS = {
    Msg.MISSING_DEFINE, Msg.RULE_NAME, Msg.LEADING_BAR, Msg.MISPLACED_DEFINE, Msg.UNCLOSED_PAREN,
    Msg.UNMATCHED_PAREN, Msg.NOTHING_TO_REPEAT, Msg.BAD_BRACES,
}
_QUANTIFIERS = {"STAR", "PLUS", "QMARK", "LBRACE"}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """The GBNF parser, built once from the packaged grammar."""
    text = resources.files(__package__).joinpath("gbnf.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_tree(text: str) -> Tree:
    """Parse GBNF `text` into a Lark tree, or raise a `GrammarError` pointing at the mistake."""
    try:
        return _lark().parse(text)
    except UnexpectedInput as exc:
        reason = _explain(exc, text)
        line, column = _position(exc, text)
        raise error_at(text, reason, line, column) from None


def context_snippet(text: str, line: int, column: int, width: int = 72) -> str:
    """The offending line of `text` with a caret under `column` (lark's ``get_context`` shape)."""
    lines = text.splitlines() or [""]
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    start = max(0, min(column - 1 - width // 2, len(src) - width))
    shown = src[start:start + width]
    caret = " " * len(src[start:column - 1].expandtabs()) + "^"
    prefix = "..." if start else ""
    return f"{prefix}{shown.expandtabs()}\n{' ' * len(prefix)}{caret}"


def error_at(text: str, reason: str, line: int, column: int) -> GrammarError:
    """A `GrammarError` for `reason` at 1-based `line`/`column` of `text`, with its snippet."""
    return GrammarError(reason, line=line, column=column, context=context_snippet(text, line, column))


def _position(exc: UnexpectedInput, text: str) -> tuple[int, int]:
    """Where to point for a Lark error; the end of the text for an unexpected end."""
    if isinstance(exc, UnexpectedEOF) or getattr(exc, "line", -1) in (-1, None):
        lines = text.splitlines() or [""]
        if text.endswith(("\n", "\r")):
            return len(lines) + 1, 1
        return len(lines), len(lines[-1]) + 1
    return exc.line, exc.column


def _explain(exc: UnexpectedInput, text: str) -> str:
    """The friendliest label for a Lark error: the char, the examples table, then heuristics."""
    if isinstance(exc, UnexpectedCharacters):
        by_char = _explain_char(exc, text)
        if by_char:
            return by_char
    label = None
    if getattr(exc, "state", None) is not None:
        label = exc.match_examples(
            _lark().parse, [(lbl, ex) for lbl, ex in GBNF_ERRORS if lbl in _SYNTAX_LABELS], use_accepts=True
        )
    if label:
        return label
    return _heuristic(exc)


def _explain_char(exc: UnexpectedCharacters, text: str) -> str | None:
    """Lexer errors named by the character that starts the bad token."""
    ch = exc.char
    if ch == '"':
        return Msg.UNTERMINATED_STRING
    if ch == "[":
        return Msg.UNTERMINATED_CLASS
    if ch in "<!":
        return Msg.BAD_TOKEN
    if ch == "{" or (ch in ",-" and _after_brace(text, exc.pos_in_stream)):
        return Msg.BAD_BRACES
    if "DEFINE" in (exc.allowed or ()):
        return Msg.MISSING_DEFINE  # "root := x", "root = x"
    if ch.isprintable() and not ch.isspace():
        return f"{Msg.UNEXPECTED_CHAR} {ch!r}"
    return f"{Msg.UNEXPECTED_CHAR} {ch!r} (U+{ord(ch):04X})"


def _after_brace(text: str, pos: int) -> bool:
    """True if `pos` is inside an unclosed ``{`` on the same line."""
    line_start = max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos)) + 1
    segment = text[line_start:pos]
    return segment.rfind("{") > segment.rfind("}")


def _heuristic(exc: UnexpectedInput) -> str:
    """Fallback labels from the unexpected token and what the parser expected instead."""
    expected = set(getattr(exc, "expected", ()) or getattr(exc, "allowed", ()) or ())
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        if "RPAR" in expected:
            return Msg.UNCLOSED_PAREN
        if "RBRACE" in expected or "INT" in expected or "COMMA" in expected:
            return Msg.BAD_BRACES
        if "DEFINE" in expected:
            return Msg.MISSING_DEFINE
        return Msg.UNEXPECTED + " at the end of the grammar"
    if isinstance(exc, UnexpectedToken):
        kind = exc.token.type
        if kind == "RPAR":
            return Msg.UNMATCHED_PAREN
        if kind == "DEFINE":
            return Msg.MISPLACED_DEFINE
        if kind in _QUANTIFIERS and kind not in expected:
            return Msg.NOTHING_TO_REPEAT
        if expected & {"INT", "RBRACE", "COMMA"}:
            return Msg.BAD_BRACES
        if kind == "_BAR":
            return Msg.LEADING_BAR
        if "DEFINE" in expected:
            return Msg.MISSING_DEFINE
        if expected <= {"NAME", "_NL"}:
            return Msg.RULE_NAME
        if "_NL" in expected and "NAME" in expected:
            return f"{Msg.UNEXPECTED} {exc.token.value!r}: expected the next item, '|' or a line break"
        return f"{Msg.UNEXPECTED} {exc.token.value!r}"
    return Msg.UNEXPECTED
