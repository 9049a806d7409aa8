"""Lark grammars and regexes -> GBNF and -> one regex, checked against what the source accepts:
lark's own parser (LALR/Earley where they can build one) and Python's `re` are the oracles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lark import Lark

from llamactypes.errors import GrammarError
from llamactypes.grammar import Grammar
from llamactypes.grammar.json_schema import json_schema_to_gbnf
from llamactypes.grammar.lark_to_gbnf import UnsupportedGrammar, grammar_to_regex, lark_to_gbnf, regex_to_gbnf

APPLY_PATCH = (Path(__file__).parents[2] / "fixtures" / "grammars" / "codex_apply_patch.lark").read_text()

PATCHES_OK = [
    "*** Begin Patch\n*** Add File: hello.py\n+print(\"hi\")\n+\n*** End Patch\n",
    "*** Begin Patch\n*** Delete File: old.txt\n*** End Patch",
    "*** Begin Patch\n*** Update File: src/a.py\n*** Move to: src/b.py\n@@ def f():\n-    return 1\n"
    "+\treturn 'two'  # \\ backslash\n \n*** End of File\n*** End Patch\n",
    "*** Begin Patch\n*** Update File: x\n@@\n-a\n+b\n*** Add File: y\n+z\n*** End Patch\n",
]
PATCHES_BAD = [
    "",
    "*** Begin Patch\n*** End Patch\n",                              # no hunk
    "*** Begin Patch\n*** Add File: a\n*** End Patch\n",              # an added file needs lines
    "*** Begin Patch\n*** Update File: a\nno prefix\n*** End Patch\n",
    "*** Begin Patch\n*** Delete File: a\n*** End Patch\nmore",
    "*** Begin Patch\n*** Delete File: \n*** End Patch\n",            # empty file name
]


def test_codex_apply_patch_to_gbnf_accepts_what_it_should() -> None:
    gbnf = lark_to_gbnf(APPLY_PATCH)
    assert "filename ::= [^\\n]+" in gbnf
    grammar = Grammar.from_gbnf(gbnf)
    for patch in PATCHES_OK:
        assert grammar.accepts(patch), patch
    for patch in PATCHES_BAD:
        assert not grammar.accepts(patch), patch


def test_codex_apply_patch_as_one_regex_agrees_with_python_re() -> None:
    pattern = re.compile(grammar_to_regex(APPLY_PATCH, "lark"))
    for patch in PATCHES_OK:
        assert pattern.fullmatch(patch), patch
    for patch in PATCHES_BAD:
        assert not pattern.fullmatch(patch), patch


def test_codex_apply_patch_constrains_a_json_string() -> None:
    """How a custom tool's input is constrained: a JSON schema string whose pattern is the grammar,
    so quotes, backslashes, tabs and newlines in a patch travel escaped."""
    schema = {"type": "object", "properties": {"input": {"type": "string",
                                                         "pattern": "^" + grammar_to_regex(APPLY_PATCH, "lark") + "$"}},
              "required": ["input"]}
    grammar = Grammar.from_gbnf(json_schema_to_gbnf(schema))
    for patch in PATCHES_OK:
        assert grammar.accepts(json.dumps({"input": patch})), patch
    for patch in PATCHES_BAD:
        assert not grammar.accepts(json.dumps({"input": patch})), patch


CASES = [
    # (lark grammar, accepted, refused)
    ('start: "a"i "b"', ["ab", "Ab"], ["aB", "abb"]),
    ('start: "x".."z"+ [DIGIT]\n%import common.DIGIT', ["xyz", "x1"], ["", "a", "x12"]),
    ('start: "a"~2 "b"~1..3', ["aab", "aabbb"], ["ab", "aabbbb"]),
    ('start: item ("," item)*\nitem: NUMBER | WORD -> w\n%import common.NUMBER\n%import common.WORD',
     ["1,abc,2.5", "x"], ["1,", ",x", "1 2"]),
    ('start: /[^"\\\\]+/ "!"', ["hi there!"], ['a"b!', "!"]),
    ('start: /\\d{2,3}-\\w+/s', ["12-ab_9", "123-x"], ["1-x", "12-", "12-a b"]),
    ('start: /(?:ab|cd)*?e/', ["e", "abcde"], ["abe"[:2], "ace"]),
]


@pytest.mark.parametrize("source, good, bad", CASES)
def test_lark_features_match_lark_itself(source: str, good: list[str], bad: list[str]) -> None:
    oracle = Lark(source, parser="earley", lexer="dynamic_complete")  # every terminal length
    grammar = Grammar.from_gbnf(lark_to_gbnf(source))
    pattern = re.compile(grammar_to_regex(source, "lark"))
    for text in good + bad:
        try:
            oracle.parse(text)
            expected = True
        except Exception:
            expected = False
        assert expected == (text in good), f"oracle disagrees with the case table on {text!r}"
        assert grammar.accepts(text) == expected, text
        assert bool(pattern.fullmatch(text)) == expected, text


def test_recursive_grammars_become_gbnf_but_not_a_regex() -> None:
    source = 'start: "(" start ")" | "x"'
    grammar = Grammar.from_gbnf(lark_to_gbnf(source))
    assert grammar.accepts("((x))") and not grammar.accepts("((x)")
    with pytest.raises(UnsupportedGrammar, match="recursive"):
        grammar_to_regex(source, "lark")


@pytest.mark.parametrize("pattern, good, bad", [
    (r"[a-c]+\.txt", ["abc.txt"], ["d.txt", "a.txtx"]),
    (r"(yes|no)( please)?", ["yes", "no please"], ["maybe"]),
    (r"^\d{4}-\d{2}$", ["2024-01"], ["24-01"]),
    (r"[^\n]*\n", ["a\tb\n"], ["a\nb\n"]),
])
def test_regex_to_gbnf_and_back(pattern: str, good: list[str], bad: list[str]) -> None:
    grammar = Grammar.from_gbnf(regex_to_gbnf(pattern))
    flat = re.compile(grammar_to_regex(pattern, "regex"))
    for text in good:
        assert re.fullmatch(pattern, text) and grammar.accepts(text) and flat.fullmatch(text), text
    for text in bad:
        assert not re.fullmatch(pattern, text)
        assert not grammar.accepts(text) and not flat.fullmatch(text), text


@pytest.mark.parametrize("syntax, definition, what", [
    ("lark", 'start: "a" "b"\n%ignore " "', "%ignore"),
    ("lark", "start: _sep{\"a\"}\n_sep{x}: x (\",\" x)*", "template"),
    ("lark", "%declare TOKEN\nstart: TOKEN", "%declare"),
    ("regex", r"a(?=b)", "lookaround"),
    ("regex", r"(a)\1", "backreference"),
    ("regex", r"a^b", "anchor"),
    ("regex", r"(?i:a)", "inline regex flags"),
    ("lark", r"start: /a/x", "flags"),
    ("ebnf", "x", "syntax"),
])
def test_what_does_not_map_is_said_clearly(syntax: str, definition: str, what: str) -> None:
    with pytest.raises(UnsupportedGrammar, match=what):
        grammar_to_regex(definition, syntax)


@pytest.mark.parametrize("syntax, definition", [("lark", "start: ("), ("lark", "start: undefined_rule"),
                                                ("regex", "a(b")])
def test_broken_grammars_are_grammar_errors(syntax: str, definition: str) -> None:
    with pytest.raises(GrammarError):
        grammar_to_regex(definition, syntax)
