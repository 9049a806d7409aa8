"""The grammar engine's bounds: every hostile grammar or schema is refused, or stopped, with a
`GrammarError`/`SchemaError` naming its limit, within a stated time and memory.

Stated budgets (measured on a 2-core CI machine, with slack for noise): each case ends in
under 2 s and allocates under 64 MiB at peak (tracemalloc).
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest

from llamactypes.errors import GrammarError, SchemaError
from llamactypes.grammar import Grammar, TokenVocab, json_schema_to_gbnf
from llamactypes.grammar import matcher as matcher_module
from llamactypes.grammar._cache import ByteLRU
from llamactypes.limits import DEFAULT_LIMITS

SECONDS = 2.0
PEAK_BYTES = 64 * 1024 * 1024
AMBIGUOUS = 'root ::= "a" root "b" | "a" root "c" | "d"\n'


@contextmanager
def bounded(seconds: float = SECONDS, peak: int = PEAK_BYTES) -> Iterator[None]:
    """Fail unless the block ends within `seconds` and allocates under `peak` bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert top < peak, f"peak allocation {top / 2**20:.1f} MiB"


def small_vocab() -> TokenVocab:
    """Single letters, a few runs of 'a', and an end token (id 0)."""
    pieces = [b"", b"a", b"b", b"c", b"d", b"aa", b"aaaa", b"aaaaaaaa", b"ab", b"x"]
    return TokenVocab(pieces, eog={0})


# --- the ambiguous grammar: stacks double on every character ---------------------------------

def test_ambiguous_grammar_stops_at_the_stack_limit_per_token() -> None:
    matcher = Grammar.from_gbnf(AMBIGUOUS).compile(small_vocab()).matcher()
    steps = []
    with bounded():
        with pytest.raises(GrammarError, match="grammar_max_stacks") as info:
            for _ in range(64):
                start = time.perf_counter()
                matcher.advance(1)  # "a"
                steps.append(time.perf_counter() - start)
    assert "over the limit of 8192" in str(info.value)
    assert len(steps) < 20 and max(steps) < 0.5


def test_ambiguous_grammar_mask_fails_cleanly_and_keeps_failing() -> None:
    matcher = Grammar.from_gbnf(AMBIGUOUS).compile(small_vocab()).matcher()
    with bounded():
        with pytest.raises(GrammarError, match="grammar_max_stacks"):
            for _ in range(64):
                assert matcher.mask()[1]
                matcher.advance(7)  # "aaaaaaaa"
        # the refused transition is not memoized as a success: asking again fails again, fast
        start = time.perf_counter()
        with pytest.raises(GrammarError):
            matcher.advance(7)
        assert time.perf_counter() - start < 0.5


def test_step_work_budget_stops_one_call() -> None:
    limits = dataclasses.replace(DEFAULT_LIMITS, grammar_max_step_work=2_000)
    matcher = Grammar.from_gbnf(AMBIGUOUS, limits=limits).compile(small_vocab()).matcher()
    with bounded():
        with pytest.raises(GrammarError, match="grammar_max_step_work"):
            for _ in range(64):
                matcher.advance(7)


def test_lifetime_work_and_states_are_bounded() -> None:
    cases = (("grammar_max_work", 5_000, AMBIGUOUS, "a"), ("grammar_max_states", 20, 'root ::= "x"{0,500}\n', "x"))
    for field, value, text, char in cases:
        limits = dataclasses.replace(DEFAULT_LIMITS, **{field: value})
        grammar = Grammar.from_gbnf(text, limits=limits)
        with pytest.raises(GrammarError, match=field):
            grammar.accepts_prefix(char * 64)


def test_a_real_grammar_stays_well_inside_the_limits(json_gbnf: str) -> None:
    grammar = Grammar.from_gbnf(json_gbnf)
    text = '{"a": [1, 2.5e3, {"b": [true, false, null, "x\\u00e9"]}], "c": {"d": [[[[[]]]]]}}'
    assert grammar.accepts(text)
    machine = grammar.machine
    assert machine.n_states < DEFAULT_LIMITS.grammar_max_states // 100
    assert machine.budget.total < DEFAULT_LIMITS.grammar_max_work // 100


# --- parse-time bounds ----------------------------------------------------------------------

def test_expansion_bomb_is_refused_before_expanding() -> None:
    bomb = 'root ::= "' + "x" * 4000 + '"{2000}\n'
    with bounded(seconds=1.0, peak=16 * 1024 * 1024):
        with pytest.raises(GrammarError, match="grammar_max_elements") as info:
            Grammar.from_gbnf(bomb)
    assert "8000000" in str(info.value) and info.value.line == 1


def test_nested_repetitions_are_counted_too() -> None:
    text = 'root ::= x{2000} z\nx ::= "' + "y" * 200 + '"{1000}\nz ::= "' + "w" * 100 + '"{1000}\n'
    with bounded(seconds=1.0):
        with pytest.raises(GrammarError, match="grammar_max_elements"):
            Grammar.from_gbnf(text)


def test_deep_nesting_is_a_grammar_error_not_a_recursion_error() -> None:
    deep = "root ::= " + "(" * 400 + '"a"' + ")" * 400 + "\n"
    with bounded():
        with pytest.raises(GrammarError, match="grammar_max_nesting"):
            Grammar.from_gbnf(deep)
    ok = "root ::= " + "(" * 100 + '"a"' + ")" * 100 + "\n"
    assert Grammar.from_gbnf(ok).accepts("a")
    # parentheses inside strings, classes and comments do not nest
    quoted = 'root ::= "' + "(" * 400 + '" [(((] # ' + "(" * 400 + "\n"
    assert Grammar.from_gbnf(quoted).accepts("(" * 400 + "(")


def test_grammar_text_size_is_bounded() -> None:
    limits = dataclasses.replace(DEFAULT_LIMITS, grammar_max_bytes=1000)
    text = 'root ::= "' + "é" * 600 + '"\n'  # 600 characters, 1200 bytes
    with pytest.raises(GrammarError, match="grammar_max_bytes") as info:
        Grammar.from_gbnf(text, limits=limits)
    assert "1212" in str(info.value)
    assert Grammar.from_gbnf(text).accepts("é" * 600)


def test_a_rule_with_too_many_alternatives_to_expand() -> None:
    alts = " | ".join(f'x{i} "{i}"' for i in range(100))
    rules = "".join(f'x{i} ::= y | "{i}"\n' for i in range(100))
    text = f"root ::= {alts}\n{rules}" + "y ::= " + " | ".join(f'"{chr(65 + i % 26)}{i}"' for i in range(100)) + "\n"
    with bounded():
        with pytest.raises(GrammarError, match="grammar_max_stacks"):
            Grammar.from_gbnf(text).accepts("A0")


# --- JSON schemas ---------------------------------------------------------------------------

@pytest.mark.parametrize("schema, field", [
    ({"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(1200)}},
     "schema_max_properties"),
    ({"type": "integer", "maximum": 10**1500}, "schema_max_number_digits"),
    ({"type": "integer", "minimum": -(10**200)}, "schema_max_number_digits"),
])
def test_schema_bombs_are_schema_errors(schema: dict, field: str) -> None:
    with bounded():
        with pytest.raises(SchemaError, match=field):
            json_schema_to_gbnf(schema)


def test_deeply_nested_schema_is_refused_without_recursion() -> None:
    schema: dict = {"type": "string"}
    for _ in range(5000):
        schema = {"type": "array", "items": schema}
    with bounded():
        with pytest.raises(SchemaError, match="schema_max_depth"):
            json_schema_to_gbnf(schema)


def test_many_optional_properties_below_the_limit_convert() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(300)}}
    grammar = Grammar.from_gbnf(json_schema_to_gbnf(schema))
    assert grammar.accepts('{"p0": 1, "p299": 2}')
    assert not grammar.accepts('{"p299": 2, "p0": 1}')  # declared order, as llama.cpp


def test_huge_counts_are_schema_errors() -> None:
    with pytest.raises(SchemaError, match="minLength"):
        json_schema_to_gbnf({"type": "string", "minLength": 10**1500})


@pytest.mark.parametrize("bound", [1e30, 10**25, -1e30])
def test_integer_bounds_beyond_16_digits_work(bound: float) -> None:
    key = "minimum" if bound > 0 else "maximum"
    grammar = Grammar.from_gbnf(json_schema_to_gbnf({"type": "integer", key: bound}))
    value = int(bound)
    assert grammar.accepts(str(value))
    step = 1 if bound > 0 else -1
    assert grammar.accepts(str(value + step * 987654321))
    assert grammar.accepts(str(value * 10))
    assert not grammar.accepts(str(value - step))
    assert not grammar.accepts("5" if bound > 0 else "-5")


def test_pattern_expansion_bomb_is_bounded() -> None:
    schema = {"type": "string", "pattern": "^" + "x" * 300 + "{2000}$"}
    with bounded():
        try:
            grammar = Grammar.from_gbnf(json_schema_to_gbnf(schema))
        except (GrammarError, SchemaError) as exc:
            assert "limit" in str(exc) or "repetition" in str(exc)
        else:
            assert grammar.accepts('"' + "x" * 299 + "x" * 2000 + '"')


# --- caches bounded in bytes ----------------------------------------------------------------

def test_byte_lru_evicts_by_size() -> None:
    cache: ByteLRU[str] = ByteLRU(lambda: 100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # now the most recent
    cache.put("c", "C", 40)
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    assert cache.nbytes == 80
    cache.put("huge", "H", 101)
    assert cache.get("huge") is None and cache.nbytes == 80


def test_mask_cache_is_bounded_in_bytes(json_gbnf: str) -> None:
    pieces = [b""] + [bytes([c]) for c in range(32, 127)] + [f"{i}".encode() for i in range(2000)]
    vocab = TokenVocab(pieces, eog={0})
    limit = 40 * 1024
    matcher_module.set_cache_limits(dataclasses.replace(DEFAULT_LIMITS, grammar_mask_cache_bytes=limit))
    try:
        cache = matcher_module.mask_cache()
        for depth in range(1, 60):
            matcher = Grammar.from_gbnf(json_gbnf).compile(vocab).matcher()
            text = '{"a":' + "[" * depth
            for ch in text:
                matcher.advance(pieces.index(ch.encode()))
            first = matcher.mask()
            assert np.array_equal(first, matcher.mask())  # served from the cache, identical
            assert cache.nbytes <= limit
    finally:
        matcher_module.set_cache_limits(DEFAULT_LIMITS)


def test_request_grammar_cache_is_bounded_in_bytes_and_renews_worn_grammars() -> None:
    from llamactypes.sampling import constrained

    limit = 200_000
    matcher_module.set_cache_limits(dataclasses.replace(DEFAULT_LIMITS, grammar_cache_bytes=limit,
                                                        grammar_max_states=40))
    try:
        for i in range(200):
            constrained._parsed(f'root ::= "{i}" [a-z]* "{"x" * 200}"\n')
            assert constrained._PARSED.nbytes <= limit
        assert 0 < len(constrained._PARSED) < 200
        text = 'root ::= "x"{0,500}\n'
        first = constrained._parsed(text)
        first.accepts_prefix("x" * 25)  # 26 states: over half of grammar_max_states
        second = constrained._parsed(text)
        assert second is not first and second.accepts("x" * 10)
    finally:
        matcher_module.set_cache_limits(DEFAULT_LIMITS)


def test_a_long_chain_of_nullable_rules_is_checked_in_linear_time() -> None:
    n = 8000  # quadratic before: 4,000 took 9 s
    text = 'root ::= r0 "x"\n' + "".join(f"r{i} ::= r{i + 1}\n" for i in range(n)) + f'r{n} ::= "a" | \n'
    start = time.perf_counter()
    grammar = Grammar.from_gbnf(text)
    assert time.perf_counter() - start < 2.0
    assert grammar.accepts("x") and grammar.accepts("ax")
