"""Token-level matching on a synthetic byte vocabulary, checked against a transcription of
llama.cpp's own sampler (llama_reference.py) and against `allows` for every token."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from llamactypes.errors import GrammarError
from llamactypes.grammar import Grammar, TokenVocab

from .llama_reference import LlamaReference

EMPTY, EOG = 0, 1


def _vocab() -> TokenVocab:
    """Control + EOG tokens, every single byte, NUL cases, words, and split UTF-8."""
    pieces = [b"", b"<|eos|>"]
    pieces += [bytes([b]) for b in range(1, 256)]
    pieces += [b"\x00", b"a\x00b", b"\x00a"]
    words = ["true", "false", "null", '{"', '":', '", "', '"}', "ab", "abc", " the", "\n\n", "  ", "12", "3.5",
             "é", "日本", "😀", "ア", "ー", "こんにちは", "- ", "\n- ", "xyz", '"a', 'a"', "{}", "[1", ", "]
    pieces += [w.encode() for w in words]
    pieces += [b"\xc3", b"\xa9", b"\xe6\x97", b"\xa5", b"\xa5\xe6", b"\xf0\x9f\x98", b"\x80", b"a\xc3",
               b"\xff\xfe", b"\x80a", b"\xc0\x80", b"\xe3\x81", b"\x82\xe3\x81", b"<think>", b"</think>"]
    return TokenVocab(pieces, frozenset({EOG}))


VOCAB = _vocab()
TOK = {p: i for i, p in reversed(list(enumerate(VOCAB.pieces)))}
#: Pieces that decode to code point 0 without a NUL byte (overlong b"\xc0\x80"): llama.cpp's
#: mask reads the 0 as the end of the token and allows them, then its accept fails on them.
_NUL_CODE_POINT = {TOK[b"\xc0\x80"]}


def _walk(grammar: Grammar, seed: int, steps: int, check) -> None:
    """A random walk through allowed tokens, calling `check(matcher, reference)` each step."""
    rng = random.Random(seed)
    compiled = grammar.compile(VOCAB)
    matcher = compiled.matcher()
    reference = LlamaReference(grammar, VOCAB)
    for _ in range(steps):
        allowed = check(matcher, reference)
        choices = [t for t in allowed if t != EOG]
        if not choices:
            break
        token = rng.choice(choices)
        matcher.advance(token)
        reference.accept(token)


def _check_against_reference(matcher, reference) -> list[int]:
    mask = matcher.mask()
    ours = set(np.flatnonzero(mask).tolist())
    expected = reference.allowed()
    if reference.partial[1] != 0:
        expected.discard(EOG)  # deliberate: no end of generation inside a character
    expected -= _NUL_CODE_POINT  # deliberate: llama.cpp lets these pass, then fails to accept them
    ours -= _NUL_CODE_POINT
    assert ours == expected, (sorted(ours - expected), sorted(expected - ours))
    assert all(matcher.allows(t) == mask[t] for t in range(len(VOCAB)))
    assert matcher.is_complete() == (EOG in expected)
    return sorted(ours)


GRAMMARS = {
    "json": None,  # filled from the pinned tree
    "japanese": None,
    "list": None,
    "classes": 'root ::= ([^a-z"] | "é" [日本]+ | "ab" "c"? | [\\u00a0-\\uffff]){1,6} "!"?',
    "any": "root ::= . . .? [^\\x00-\\x7f]?",
    "tokens": "root ::= <[2]>? (!<[400]>)* <[400]>",
}


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_mask_matches_llama_reference_on_random_walks(grammars_dir: Path, name: str) -> None:
    text = GRAMMARS[name] or (grammars_dir / f"{name}.gbnf").read_text(encoding="utf-8")
    if name == "tokens":
        text = text.replace("400", str(TOK[b"</think>"]))
    grammar = Grammar.from_gbnf(text)
    for seed in range(4):
        _walk(grammar, seed, 25, _check_against_reference)


def test_utf8_split_across_tokens() -> None:
    grammar = Grammar.from_gbnf('root ::= "é" "日" "!"')
    matcher = grammar.compile(VOCAB).matcher()
    assert not matcher.allows(TOK[b"\xa9"])  # a continuation byte cannot start
    for piece in (b"\xc3", b"\xa9", b"\xe6\x97"):
        assert matcher.allows(TOK[piece]), piece
        matcher.advance(TOK[piece])
        assert not matcher.is_complete() and not matcher.allows(EOG)
    assert not matcher.allows(TOK[b"\xa5\xe6"])  # completes 日, then starts a char "!" cannot be
    assert matcher.allows(TOK[b"\xa5"])
    matcher.advance(TOK[b"\xa5"])
    matcher.advance(TOK[b"!"])
    assert matcher.is_complete() and matcher.allows(EOG) and matcher.is_dead_end()


def test_partial_character_needs_a_stack_that_could_take_it() -> None:
    matcher = Grammar.from_gbnf('root ::= [a-z] "é"').compile(VOCAB).matcher()
    assert matcher.allows(TOK[b"a\xc3"])  # [a-z] takes 'a', and C3 may start "é"
    assert not matcher.allows(TOK[b"\xe6\x97"])  # a 3-byte start can never be é
    matcher.advance(TOK[b"a\xc3"])
    assert {VOCAB.pieces[t] for t in np.flatnonzero(matcher.mask())} == {b"\xa9"}


def test_eog_only_when_complete() -> None:
    matcher = Grammar.from_gbnf('root ::= "ab" "c"?').compile(VOCAB).matcher()
    assert not matcher.allows(EOG)
    with pytest.raises(GrammarError):
        matcher.advance(EOG)
    matcher.advance(TOK[b"ab"])
    assert matcher.allows(EOG) and matcher.is_complete() and not matcher.is_dead_end()
    matcher.advance(EOG)  # accepted, nothing changes
    assert matcher.is_complete()
    matcher.advance(TOK[b"c"])
    assert matcher.is_dead_end() and matcher.mask().sum() == 1


def test_control_tokens_and_nul_pieces_are_never_allowed() -> None:
    matcher = Grammar.from_gbnf("root ::= .*").compile(VOCAB).matcher()
    assert not matcher.allows(EMPTY)
    assert not matcher.allows(TOK[b"\x00"]) and not matcher.allows(TOK[b"\x00a"])
    assert matcher.allows(TOK[b"a\x00b"])  # read up to the NUL, like llama.cpp
    assert not matcher.allows(TOK[b"\x80a"])  # a continuation byte cannot start a character
    assert matcher.allows(TOK[b"\xff\xfe"])  # llama.cpp reads FF as a 4-byte lead, FE as its continuation
    assert not matcher.allows(-1) and not matcher.allows(len(VOCAB))
    with pytest.raises(GrammarError):
        matcher.advance(EMPTY)


def test_advance_rejects_without_changing_state() -> None:
    matcher = Grammar.from_gbnf('root ::= "ab" "c"').compile(VOCAB).matcher()
    with pytest.raises(GrammarError, match="not allowed"):
        matcher.advance(TOK[b"c"])
    matcher.advance(TOK[b"ab"])
    assert matcher.allows(TOK[b"c"])


def test_advance_bytes() -> None:
    matcher = Grammar.from_gbnf('root ::= "x" "é" [a-z]+').compile(VOCAB).matcher()
    assert matcher.advance_bytes(b"") and matcher.advance_bytes(b"x\xc3")
    assert not matcher.allows(TOK[b"a"]) and matcher.allows(TOK[b"\xa9"])
    assert not matcher.advance_bytes(b"\xa9Z")  # rejected: state unchanged
    assert matcher.advance_bytes(b"\xa9") and matcher.advance_bytes(b"ab")
    assert matcher.is_complete()
    assert not matcher.advance_bytes(b"\xff")
    assert not matcher.advance_bytes(b"\xe6\x97")  # no stack could take a 3-byte character


def test_copy_and_reset_are_independent() -> None:
    matcher = Grammar.from_gbnf('root ::= "ab" | "xyz"').compile(VOCAB).matcher()
    twin = matcher.copy()
    matcher.advance(TOK[b"ab"])
    assert matcher.is_complete() and not twin.is_complete() and twin.allows(TOK[b"xyz"])
    matcher.reset()
    assert matcher.allows(TOK[b"xyz"]) and not matcher.is_complete()


def test_known_mask_is_the_cached_mask_and_never_computes_one() -> None:
    matcher = Grammar.from_gbnf('root ::= "ab" [a-z]* | "xyz" "!"').compile(VOCAB).matcher()
    assert matcher.known_mask() is None  # nothing computed for this position yet
    full = matcher.mask()
    known = matcher.known_mask()
    assert known is not None and np.array_equal(known, full)
    matcher.advance(TOK[b"ab"])
    assert matcher.known_mask() is None
    assert np.array_equal(matcher.mask(), matcher.known_mask())


def test_token_terminals_by_text_and_id() -> None:
    think, end = TOK[b"<think>"], TOK[b"</think>"]
    grammar = Grammar.from_gbnf('root ::= <think> (!</think>)* </think> "ab"')
    matcher = grammar.compile(VOCAB).matcher()
    assert np.flatnonzero(matcher.mask()).tolist() == [think]
    assert not matcher.allows(TOK[b"<"])  # the text of a token terminal does not match
    matcher.advance(think)
    mask = matcher.mask()
    assert mask[end] and mask[TOK[b"ab"]] and mask[TOK[b"xyz"]] and mask[TOK[b"a\xc3"]]
    assert not mask[TOK[b"\xc3"]]  # a token terminal needs at least one whole character
    assert not mask[EMPTY] and not mask[EOG] and not mask[TOK[b"\xff\xfe"]]
    matcher.advance(TOK[b"xyz"])
    matcher.advance(end)
    matcher.advance(TOK[b"ab"])
    assert matcher.is_complete()


def test_token_text_must_be_one_token() -> None:
    grammar = Grammar.from_gbnf("root ::= <nothere>")
    with pytest.raises(GrammarError, match="<nothere>"):
        grammar.compile(VOCAB)


def test_compile_is_cached_per_vocab_and_matchers_are_separate() -> None:
    grammar = Grammar.from_gbnf('root ::= "ab"')
    assert grammar.compile(VOCAB) is grammar.compile(VOCAB)
    other = TokenVocab(VOCAB.pieces, VOCAB.eog)
    assert grammar.compile(other) is not grammar.compile(VOCAB)
    a, b = grammar.compile(VOCAB).matcher(), grammar.compile(VOCAB).matcher()
    a.advance(TOK[b"ab"])
    assert a.is_complete() and not b.is_complete()


def test_mask_is_a_fresh_array() -> None:
    matcher = Grammar.from_gbnf('root ::= "ab"').compile(VOCAB).matcher()
    mask = matcher.mask()
    n_allowed = int(mask.sum())
    mask[:] = True
    assert matcher.mask().sum() == n_allowed


def test_vocab_checks_eog_ids() -> None:
    with pytest.raises(ValueError):
        TokenVocab([b"a"], frozenset({3}))


def test_token_terminal_in_mid_token_does_not_match() -> None:
    """Deliberate difference: llama.cpp's mask would pass "ab" here, then fail to accept it."""
    grammar = Grammar.from_gbnf(f"root ::= \"a\" !<[{TOK[b'xyz']}]>")
    matcher = grammar.compile(VOCAB).matcher()
    assert not matcher.allows(TOK[b"ab"])
    assert matcher.allows(TOK[b"a"])
    matcher.advance(TOK[b"a"])
    assert matcher.allows(TOK[b"ab"]) and not matcher.allows(TOK[b"xyz"])


def test_one_compiled_grammar_shared_by_threads(json_gbnf: str) -> None:
    """Matchers in several threads share one CompiledGrammar (and its memo tables)."""
    import threading

    rng = random.Random(5)
    serial = Grammar.from_gbnf(json_gbnf).compile(VOCAB).matcher()
    tokens, masks = [], []
    for _ in range(30):
        mask = serial.mask()
        masks.append(mask)
        choices = [t for t in np.flatnonzero(mask).tolist() if t != EOG]
        if not choices:
            break
        tokens.append(rng.choice(choices))
        serial.advance(tokens[-1])
    shared = Grammar.from_gbnf(json_gbnf).compile(VOCAB)
    failures: list[str] = []

    def replay() -> None:
        matcher = shared.matcher()
        for token, mask in zip(tokens, masks):
            if not np.array_equal(matcher.mask(), mask) or not matcher.allows(token):
                failures.append(f"diverged before token {token}")
                return
            matcher.advance(token)

    threads = [threading.Thread(target=replay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
