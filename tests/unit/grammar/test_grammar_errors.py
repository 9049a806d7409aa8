"""Every typical mistake of `GBNF_ERRORS` gets its friendly message, pointing at the text."""

from __future__ import annotations

import pytest

from llamactypes.errors import GrammarError, InvalidRequestError
from llamactypes.grammar import Grammar
from llamactypes.grammar._syntax import GBNF_ERRORS

CASES = [(label, example) for label, examples in GBNF_ERRORS for example in examples]


@pytest.mark.parametrize(("label", "example"), CASES, ids=[repr(ex) for _, ex in CASES])
def test_error_table(label: str, example: str) -> None:
    with pytest.raises(GrammarError) as info:
        Grammar.from_gbnf(example)
    err = info.value
    assert err.reason.startswith(label), f"{example!r}: got {err.reason!r}"
    assert err.line is not None and err.line >= 1 and err.column is not None and err.column >= 1
    assert err.context is not None and err.context.rstrip().endswith("^")
    assert str(err).startswith(err.reason)


def test_errors_are_invalid_request_errors() -> None:
    with pytest.raises(InvalidRequestError):
        Grammar.from_gbnf("root ::= (")
    with pytest.raises(ValueError):
        Grammar.from_gbnf("root ::= (")


def _where(text: str) -> tuple[int, int, str]:
    with pytest.raises(GrammarError) as info:
        Grammar.from_gbnf(text)
    return info.value.line, info.value.column, info.value.context


def test_undefined_rule_points_at_its_use() -> None:
    line, column, context = _where('root ::= a\na ::= "x" numero "y"\n')
    assert (line, column) == (2, 11)
    assert context == 'a ::= "x" numero "y"\n          ^'


def test_unknown_escape_points_inside_the_literal() -> None:
    assert _where('root ::= "ab\\qc"\n')[:2] == (1, 13)


def test_inverted_range_points_at_the_range() -> None:
    line, column, _ = _where("root ::= [a-z9-0]\n")
    assert (line, column) == (1, 14)


def test_multiline_string_positions() -> None:
    assert _where('root ::= "a\nb\\q"\n')[:2] == (2, 2)


def test_unclosed_paren_at_end_of_text() -> None:
    line, column, _ = _where('root ::= ("a"\n  "b"\n')
    assert (line, column) == (2, 6)  # right after the last token


def test_leading_bar_is_explained() -> None:
    line, column, context = _where('root ::= "a"\n  | "b"\n')
    assert (line, column) == (2, 3)
    assert "line break" in str(_error('root ::= "a"\n  | "b"\n'))


def test_left_recursion_names_the_user_rule() -> None:
    err = _error('root ::= expr\nexpr ::= expr "+" term | term\nterm ::= [0-9]\n')
    assert "'expr'" in err.reason and err.line == 2


def test_missing_root_lists_the_rules() -> None:
    err = _error('rot ::= expr\nexpr ::= "1"\n')
    assert "'root'" in err.reason and "expr, rot" in err.reason


def test_context_of_a_long_line_is_clipped_around_the_column() -> None:
    text = "root ::= " + '"a" ' * 60 + "@\n"
    err = _error(text)
    first, caret = err.context.split("\n")
    assert len(first) <= 80 and caret.index("^") == first.index("@")


def _error(text: str) -> GrammarError:
    with pytest.raises(GrammarError) as info:
        Grammar.from_gbnf(text)
    return info.value
