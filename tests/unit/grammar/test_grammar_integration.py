"""The cases of llama.cpp's tests/test-grammar-integration.cpp, read from the pinned tree.

Grammar cases run at the token level, as the C++ test does: each character is a token, and
``token(N)`` markers are token N (whose piece is ``<[N]>``). Schema cases convert the schema
first and run the JSON text. The build-failure cases (missing root, undefined rule, left
recursion) must fail here too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llamactypes.errors import GrammarError
from llamactypes.grammar import Grammar, GrammarMatcher, TokenVocab, json_schema_to_gbnf

from .cpp_cases import IntegrationCase, Token, integration_cases

MARKER_IDS = 100  # ids below this are token(N) markers; characters get ids from here on


def _cases(llama_source: Path, kind: str) -> list[IntegrationCase]:
    cases = [c for c in integration_cases(llama_source) if c.kind == kind]
    assert cases, f"no test_{kind} cases found in test-grammar-integration.cpp"
    return cases


def _char_vocab(cases: list[IntegrationCase]) -> tuple[TokenVocab, dict[str, int]]:
    """Markers 0..99 (piece ``<[N]>``) and one token per character seen in the inputs."""
    chars = sorted({ch for c in cases for s in c.passing + c.failing for part in s if isinstance(part, str)
                    for ch in part})
    pieces = [f"<[{i}]>".encode() for i in range(MARKER_IDS)] + [ch.encode() for ch in chars]
    return TokenVocab(pieces, frozenset()), {ch: MARKER_IDS + i for i, ch in enumerate(chars)}


def _run(matcher: GrammarMatcher, parts: list, ids: dict[str, int]) -> bool:
    for part in parts:
        tokens = [part.id] if isinstance(part, Token) else [ids[ch] for ch in part]
        for token in tokens:
            if not matcher.allows(token):
                return False
            matcher.advance(token)
    return matcher.is_complete()


def test_grammar_cases(llama_source: Path) -> None:
    cases = _cases(llama_source, "grammar")
    vocab, ids = _char_vocab(cases)
    for case in cases:
        compiled = Grammar.from_gbnf(case.source).compile(vocab)
        for parts in case.passing:
            assert _run(compiled.matcher(), parts, ids), (case.description, parts)
        for parts in case.failing:
            assert not _run(compiled.matcher(), parts, ids), (case.description, parts)
        texts = [p for p in case.passing if all(isinstance(x, str) for x in p)]
        grammar = compiled.grammar
        for parts in texts:
            assert grammar.accepts("".join(parts)), (case.description, parts)


def test_schema_cases(llama_source: Path) -> None:
    for case in _cases(llama_source, "schema"):
        grammar = Grammar.from_gbnf(json_schema_to_gbnf(json.loads(case.source)))
        for parts in case.passing:
            assert grammar.accepts("".join(parts)), (case.description, parts)
        for parts in case.failing:
            assert not grammar.accepts("".join(parts)), (case.description, parts)


def _raw_strings(src: str, function: str) -> list[str]:
    body = src[src.index(f"static void {function}()"):]
    body = body[: body.index("\n}\n")]
    return re.findall(r'R"""\((.*?)\)"""', body, flags=re.S)


def test_build_failures(llama_source: Path) -> None:
    src = (llama_source / "tests" / "test-grammar-integration.cpp").read_text(encoding="utf-8")
    left = _raw_strings(src, "test_failure_left_recursion")
    assert len(left) == 4
    missing = _raw_strings(src, "test_failure_missing_reference") + _raw_strings(src, "test_failure_missing_root")
    for text in left + missing:
        with pytest.raises(GrammarError):
            Grammar.from_gbnf(text)
    (root_only,) = _raw_strings(src, "test_failure_missing_root_symbol")
    with pytest.raises(GrammarError, match="nonexistent"):
        Grammar.from_gbnf(root_only, root="nonexistent")
    (custom,) = _raw_strings(src, "test_custom_root_symbol_check")
    with pytest.raises(GrammarError):
        Grammar.from_gbnf(custom)
    assert Grammar.from_gbnf(custom, root="foobar").accepts("foobar")
