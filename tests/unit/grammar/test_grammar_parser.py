"""GBNF parsing: llama.cpp's grammars and parser test cases, rule by rule, symbol by symbol."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamactypes.errors import GrammarError
from llamactypes.grammar import Grammar
from llamactypes.grammar._ir import CHAR, REF, TOKEN

from .cpp_cases import parser_cases, parser_failures

GRAMMAR_SAMPLES = {
    "arithmetic.gbnf": (["1+2=3\n", "x*(y+2)= 10\n"], ["1+2=3", "=3\n", "x * (y + 2) = 10\n"]),
    "c.gbnf": (["int main(){return 0;}"], ["int main()"]),
    "chess.gbnf": (["1. e4 e5\n2. Nf3 Nc6\n"], ["1. e4 e5\n", "1. e9 e5\n2. a3 a4\n"]),
    "english.gbnf": (["Hello, world!", "a b\tc"], ["", "héllo"]),
    "japanese.gbnf": (["こんにちは", "カタカナ 漢字"], ["hello", ""]),
    "json.gbnf": (['{"a": [1, 2.5, "x\\n", true, null, {"b": {}}]}', "{}"], ["[]", '{"a" 1}', "{'a': 1}"]),
    "json_arr.gbnf": (['[\n{"a": 1},\n[2]]', "[\n]"], ["[]", "{}"]),
    "list.gbnf": (["- one\n- two\n"], ["- one", "one\n"]),
}


def test_every_bundled_grammar_parses(grammars_dir: Path) -> None:
    files = sorted(grammars_dir.glob("*.gbnf"))
    assert files, f"no grammars in {grammars_dir}"
    for path in files:
        grammar = Grammar.from_gbnf(path.read_text(encoding="utf-8"))
        assert "root" in grammar.rule_names, path.name
    assert {p.name for p in files} >= set(GRAMMAR_SAMPLES), "a grammar of the samples table is gone"


@pytest.mark.parametrize("name", sorted(GRAMMAR_SAMPLES))
def test_bundled_grammar_samples(grammars_dir: Path, name: str) -> None:
    grammar = Grammar.from_gbnf((grammars_dir / name).read_text(encoding="utf-8"))
    good, bad = GRAMMAR_SAMPLES[name]
    for text in good:
        assert grammar.accepts(text), text
    for text in bad:
        assert not grammar.accepts(text), text


def test_rules_and_symbol_ids_match_llama_cpp(llama_source: Path) -> None:
    """Every ``verify_parsing`` case of tests/test-grammar-parser.cpp, element for element."""
    cases = parser_cases(llama_source)
    assert len(cases) >= 15
    for case in cases:
        ir = Grammar.from_gbnf(case.grammar).ir
        assert ir.symbol_ids() == case.symbols, case.grammar
        elements = [el for rule in range(len(ir.rules)) for el in ir.llama_elements(rule)]
        assert elements == case.elements, case.grammar


def test_llama_cpp_parse_failures_fail(llama_source: Path) -> None:
    failures = parser_failures(llama_source)
    assert len(failures) >= 5
    for text in failures:
        with pytest.raises(GrammarError):
            Grammar.from_gbnf(text)


def test_newlines_inside_parentheses_and_after_bar() -> None:
    grammar = Grammar.from_gbnf(
        'root ::= (\n  "a"\n  | "b"  # comment\n  "c"\n  ) { 1 , 2 } "!" |\n "z"\nnext ::= "n"\n'
    )
    assert grammar.accepts("a!") and grammar.accepts("bcbc!") and grammar.accepts("z")
    assert not grammar.accepts("ab!")


def test_newline_after_a_group_ends_the_rule_like_llama_cpp() -> None:
    with pytest.raises(GrammarError, match="rule name"):
        Grammar.from_gbnf('root ::= ("a")\n  {2}\n')


def test_newline_after_bar_continues_even_across_blank_lines() -> None:
    """llama.cpp skips all line breaks after "|": the next line's name becomes a reference."""
    with pytest.raises(GrammarError, match="::="):
        Grammar.from_gbnf('root ::= "a" |\n\nother ::= "b"\n')


def test_rule_body_may_start_on_the_next_line() -> None:
    grammar = Grammar.from_gbnf('root ::=\n  "x" y\ny ::= "y"\n')
    assert grammar.accepts("xy")


def test_empty_alternative_and_crlf_line_ends() -> None:
    grammar = Grammar.from_gbnf('root ::= "a" | other |\r\n  \r\n  "c"\r\nother ::= \r\n "b" |\r\n')
    assert grammar.accepts("a") and grammar.accepts("") and grammar.accepts("c") and not grammar.accepts("d")


def test_names_are_llama_word_chars() -> None:
    grammar = Grammar.from_gbnf('root ::= 1 -x-\n1 ::= "1"\n-x- ::= "x"\n')
    assert grammar.accepts("1x")


def test_literal_escapes() -> None:
    grammar = Grammar.from_gbnf(r'root ::= "\x41\u00e9\U0001F600\t\n\r\"\\\[\]\-" [\x00-\x08\]-]')
    assert grammar.accepts('Aé😀\t\n\r"\\[]-' + "]")
    assert grammar.accepts('Aé😀\t\n\r"\\[]-' + "\x05")


def test_char_class_dash_rules() -> None:
    grammar = Grammar.from_gbnf("root ::= [a-] [-z] [--/]")
    assert grammar.accepts("--.") and grammar.accepts("a-/")
    assert not grammar.accepts("b--")


def test_negated_class_and_dot_match_any_code_point() -> None:
    grammar = Grammar.from_gbnf('root ::= [^a-z] . "x"')
    assert grammar.accepts("A😀x") and grammar.accepts("😀\nx")
    assert not grammar.accepts("ab x")


def test_repetition_counts() -> None:
    grammar = Grammar.from_gbnf('root ::= "ab"{2} [0-9]{1,3} "x"{2,} "y"{0}')
    assert grammar.accepts("abab1xx") and grammar.accepts("abab123xxxx")
    assert not grammar.accepts("ab1xx") and not grammar.accepts("abab1234xx") and not grammar.accepts("abab1x")


def test_maximum_above_threshold_means_unbounded_like_llama_cpp() -> None:
    assert Grammar.from_gbnf('root ::= "a"{0,5000}').accepts("a" * 2500)


def test_nested_quantifiers() -> None:
    grammar = Grammar.from_gbnf('root ::= ("a"? "b")* "c"+')
    assert grammar.accepts("abbabc") and grammar.accepts("c") and not grammar.accepts("aac")


def test_token_references_parse() -> None:
    ir = Grammar.from_gbnf("root ::= <[10]> !<[11]>* <think> !</think>").ir
    tokens = {str(value) for alts in ir.rules for alt in alts for kind, value in alt if kind == TOKEN}
    assert tokens == {"<[10]>", "!<[11]>", "<think>", "!</think>"}


def test_tail_recursion_through_nullable_groups_is_fine() -> None:
    """``( [x]* )*`` is the "segfault" case of test-grammar-integration.cpp: it must work."""
    grammar = Grammar.from_gbnf("root ::= ( [x]* )*")
    assert grammar.accepts("") and grammar.accepts("xx") and not grammar.accepts("y")


def test_custom_root() -> None:
    grammar = Grammar.from_gbnf('foobar ::= "foo" bar\nbar ::= "bar"\n', root="foobar")
    assert grammar.accepts("foobar")
    with pytest.raises(GrammarError):
        Grammar.from_gbnf('foobar ::= "foo"\n')


def test_redefinition_keeps_the_last_like_llama_cpp() -> None:
    assert Grammar.from_gbnf('root ::= "a"\nroot ::= "b"\n').accepts("b")


def test_ir_shape() -> None:
    ir = Grammar.from_gbnf('root ::= item+\nitem ::= [a-c] "!"\n').ir
    assert ir.names[:2] == ["root", "item"] and ir.root == 0
    assert ir.rules[1] == [[(CHAR, ir.rules[1][0][0][1]), (CHAR, ir.rules[1][0][1][1])]]
    assert ir.rules[0][0][0] == (REF, 1)
