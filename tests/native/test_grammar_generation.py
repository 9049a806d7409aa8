"""Grammar-constrained generation on the tiny model: eager, lazy (words, patterns, tokens), after a marker."""

from __future__ import annotations

import re

import pytest

from llamactypes import GrammarError, InvalidRequestError, Model

CHAT = "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"


def test_eager_grammar_output_matches_and_ends(tiny_model: Model) -> None:
    gen = tiny_model.stream(CHAT, grammar='root ::= "yes" | "no" | "maybe"', max_tokens=20, temperature=0)
    text = gen.read()
    assert text in ("yes", "no", "maybe")
    assert gen.finish_reason == "stop"


@pytest.mark.parametrize("seed", range(4))
def test_sampled_output_always_inside_grammar(tiny_model: Model, seed: int) -> None:
    grammar = r'''root ::= "{" ws "\"n\":" ws num ws "}"
num ::= [1-9] [0-9]{0,3}
ws ::= [ ]?'''
    text = tiny_model.generate(CHAT, grammar=grammar, max_tokens=40, temperature=1.5, seed=seed)
    assert re.fullmatch(r'\{ ?"n": ?[1-9][0-9]{0,3} ?\}', text), text


def test_grammar_with_repetition_and_unicode(tiny_model: Model) -> None:
    text = tiny_model.generate(CHAT, grammar='root ::= "é" [a-c]{3} "🦙"', temperature=1.0, seed=1, max_tokens=30)
    assert re.fullmatch(r"é[a-c]{3}🦙", text), text


def test_lazy_grammar_free_until_trigger_word(tiny_model: Model) -> None:
    q = tiny_model.tokenize("Q", add_special=False)[0]
    # the bias makes the model say "Q" soon; after it the grammar forces digits then ends
    gen = tiny_model.stream(CHAT, grammar='root ::= "Q" [0-9] [0-9] "!"', grammar_lazy=True, trigger_words=["Q"],
                            logit_bias={q: 3.0}, temperature=0.9, seed=3, max_tokens=60)
    text = gen.read()
    assert "Q" in text
    head, _, tail = text.partition("Q")
    assert re.fullmatch(r"[0-9][0-9]!", tail), text
    assert gen.finish_reason == "stop"


def test_lazy_trigger_pattern_with_group_split_across_tokens(tiny_model: Model) -> None:
    # "the" is one token (a merge); pattern needs "th" + "e" spanning tokens possibly; group starts grammar at "e"
    a = tiny_model.tokenize(" the", add_special=False)[0]
    gen = tiny_model.stream(CHAT, grammar='root ::= "e" [x-z]{2}', grammar_lazy=True, trigger_patterns=[r"t(h)e"],
                            logit_bias={a: 4.0}, temperature=0.8, seed=1, max_tokens=60)
    text = gen.read()
    # the grammar applied from the capture group: "he" must continue... the group is "h", so "h" must match "e": it cannot
    # llama.cpp semantics: the replayed text "he" is fed to the grammar, which rejects it: the generation ends there.
    assert "the" in text
    assert text.endswith("the") or gen.finish_reason == "stop"


def test_lazy_trigger_token(tiny_model: Model) -> None:
    tool = tiny_model.tokenize("<tool_call>", add_special=False, parse_special=True)
    assert len(tool) == 1
    gen = tiny_model.stream(CHAT, grammar='root ::= "<tool_call>" "{}"', grammar_lazy=True, trigger_tokens=tool,
                            logit_bias={tool[0]: 6.0}, temperature=0.5, seed=2, max_tokens=60)
    text = gen.read()
    assert text.endswith("<tool_call>{}"), text


def test_grammar_after_marker(tiny_model: Model) -> None:
    think_end = tiny_model.tokenize("</think>", add_special=False, parse_special=True)[0]
    gen = tiny_model.stream(CHAT, grammar='root ::= " ok"', grammar_after="</think>", logit_bias={think_end: 2.0},
                            temperature=0.8, seed=5, max_tokens=80)
    text = gen.read()
    assert "</think>" in text and text.endswith("</think> ok"), text


def test_bad_grammar_is_a_clear_error(tiny_model: Model) -> None:
    with pytest.raises(GrammarError) as info:
        tiny_model.generate(CHAT, grammar='root ::= "a" | undefined-rule')
    assert info.value.line == 1
    with pytest.raises(InvalidRequestError):
        tiny_model.generate(CHAT, grammar='root ::= "a"', grammar_lazy=True)
    with pytest.raises(InvalidRequestError):
        tiny_model.generate(CHAT, grammar='root ::= "a"', grammar_lazy=True, trigger_patterns=["(unclosed"])
