"""Read the test cases of llama.cpp's C++ grammar tests straight from the pinned source tree.

A tiny reader for the C++ subset those files use: string literals (plain with escapes, and
raw strings R"delim(...)delim"), ``token(N)`` (a token id marker), ``+`` between them, braces, commas
and the enum names SUCCESS / FAILURE. Cases are never copied into this repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Token", "cpp_calls", "IntegrationCase", "integration_cases", "SchemaCase", "schema_cases",
    "ParserCase", "parser_cases", "parser_failures",
]

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0"}


@dataclass(frozen=True)
class Token:
    """``token(N)`` in an input string: the whole token with id N."""

    id: int


Piece = str | Token


def _lex(src: str, pos: int):
    """Yield (kind, value, end) tokens of the C++ subset from `pos` on."""
    n = len(src)
    while pos < n:
        ch = src[pos]
        if ch.isspace():
            pos += 1
        elif src.startswith("//", pos):
            pos = src.find("\n", pos) if src.find("\n", pos) >= 0 else n
        elif src.startswith("/*", pos):
            pos = src.index("*/", pos) + 2
        elif src.startswith('R"', pos):
            delim_end = src.index("(", pos)
            delim = src[pos + 2:delim_end]
            close = src.index(")" + delim + '"', delim_end)
            yield "str", src[delim_end + 1:close], close + len(delim) + 2
            pos = close + len(delim) + 2
        elif ch == "'":
            if src[pos + 1] == "\\":
                yield "char", ord(_ESCAPES[src[pos + 2]]), pos + 4
                pos += 4
            else:
                yield "char", ord(src[pos + 1]), pos + 3
                pos += 3
        elif ch == '"':
            out, i = [], pos + 1
            while src[i] != '"':
                if src[i] == "\\":
                    out.append(_ESCAPES[src[i + 1]])
                    i += 2
                else:
                    out.append(src[i])
                    i += 1
            yield "str", "".join(out), i + 1
            pos = i + 1
        elif ch.isalnum() or ch == "_":
            m = re.compile(r"[A-Za-z0-9_:]+").match(src, pos)
            yield "word", m.group(0), m.end()
            pos = m.end()
        else:
            yield "punct", ch, pos + 1
            pos += 1


class _Reader:
    """Recursive descent over the token stream, one token of lookahead."""

    def __init__(self, src: str, pos: int) -> None:
        self.tokens = _lex(src, pos)
        self.peek = next(self.tokens)

    def take(self):
        tok, self.peek = self.peek, next(self.tokens, ("eof", "", 0))
        return tok

    def is_punct(self, char: str) -> bool:
        return self.peek[0] == "punct" and self.peek[1] == char

    def value(self):
        """A list ``{...}``, a ``+`` concatenation of strings / token(N), or a bare word."""
        if self.is_punct("{"):
            self.take()
            items = []
            while not self.is_punct("}"):
                items.append(self.value())
                if self.is_punct(","):
                    self.take()
            self.take()
            return items
        if self.peek[0] == "char":
            return self.take()[1]
        if self.peek[0] == "word" and self.peek[1] != "token":
            word = self.take()[1]
            return int(word) if word.isdigit() else word
        parts: list[Piece] = []
        while True:
            kind, value, _ = self.take()
            if kind == "word":  # token ( N )
                self.take()
                parts.append(Token(int(self.take()[1])))
                self.take()
            else:
                parts.append(value)
            if self.peek[0] == "str":  # adjacent literals concatenate
                continue
            if not self.is_punct("+"):
                return parts
            self.take()


def cpp_calls(src: str, name: str) -> list[list]:
    """The argument lists of every call ``name(...)`` (definitions are skipped)."""
    calls = []
    for m in re.finditer(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"\(", src):
        try:
            reader = _Reader(src, m.end())
        except (KeyError, ValueError, IndexError):
            continue  # the name inside some string literal
        if reader.peek[0] == "word" and reader.peek[1] in ("const", "std::string"):
            continue
        args = [reader.value()]
        while reader.is_punct(","):
            reader.take()
            args.append(reader.value())
        calls.append(args)
    return calls


def _text(parts) -> str:
    assert all(isinstance(p, str) for p in parts), parts
    return "".join(parts)


@dataclass(frozen=True)
class IntegrationCase:
    """One ``test_grammar`` / ``test_schema`` call of test-grammar-integration.cpp."""

    kind: str  # "grammar" or "schema"
    description: str
    source: str  # GBNF text or JSON schema text
    passing: list[list[Piece]]
    failing: list[list[Piece]]


def integration_cases(tree: Path) -> list[IntegrationCase]:
    src = (tree / "tests" / "test-grammar-integration.cpp").read_text(encoding="utf-8")
    cases = []
    for kind in ("grammar", "schema"):
        for args in cpp_calls(src, f"test_{kind}"):
            desc, source, passing, failing = args
            cases.append(IntegrationCase(kind, _text(desc), _text(source), passing, failing))
    return cases


@dataclass(frozen=True)
class SchemaCase:
    """One ``test({...})`` of test-json-schema-to-grammar.cpp."""

    success: bool
    name: str
    schema: str
    expected: str


def schema_cases(tree: Path) -> list[SchemaCase]:
    src = (tree / "tests" / "test-json-schema-to-grammar.cpp").read_text(encoding="utf-8")
    cases = []
    for args in cpp_calls(src, "test"):
        (status, name, schema, expected), = args
        cases.append(SchemaCase(status == "SUCCESS", _text(name), _text(schema), _text(expected)))
    return cases


@dataclass(frozen=True)
class ParserCase:
    """One ``verify_parsing`` of test-grammar-parser.cpp: symbol ids and all rule elements."""

    grammar: str
    symbols: dict[str, int]
    elements: list[tuple[str, int]]  # ("CHAR", 97), ... all rules in id order


def parser_cases(tree: Path) -> list[ParserCase]:
    src = (tree / "tests" / "test-grammar-parser.cpp").read_text(encoding="utf-8")
    cases = []
    for args in cpp_calls(src, "verify_parsing"):
        if len(args) != 3:
            continue  # "verify_parsing(" quoted inside a string of the test itself
        grammar, symbols, elements = args
        cases.append(ParserCase(
            _text(grammar),
            {_text(name): int(i) for name, i in symbols},
            [(kind.removeprefix("LLAMA_GRETYPE_"), int(value)) for kind, value in elements],
        ))
    return cases


def parser_failures(tree: Path) -> list[str]:
    """The grammars of ``verify_failure`` (llama.cpp refuses each)."""
    src = (tree / "tests" / "test-grammar-parser.cpp").read_text(encoding="utf-8")
    return [_text(args[0]) for args in cpp_calls(src, "verify_failure")]
