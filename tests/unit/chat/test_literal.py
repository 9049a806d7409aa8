"""Values written as a template's own literals (Python call syntax, Gemma 4's quote marker)."""

from __future__ import annotations

import pytest

from llamactypes.chat.formats._json import Scan
from llamactypes.chat.formats._literal import LiteralSyntax, scan_literal

PYTHON = LiteralSyntax({"'": True, '"': True})
GEMMA = LiteralSyntax({'<|"|>': False, '"': True})


@pytest.mark.parametrize("syntax, text, value", [
    (PYTHON, '"First line\\nSecond\\tx \\"q\\""', 'First line\nSecond\tx "q"'),
    (PYTHON, "'raw'", "raw"),
    (PYTHON, "True", True),
    (PYTHON, "None", None),
    (PYTHON, "-7", -7),
    (PYTHON, "1.5e10", 1.5e10),
    (PYTHON, '{"enabled": True, "note": null, "tags": [\'a\', "b"]}',
     {"enabled": True, "note": None, "tags": ["a", "b"]}),
    (GEMMA, '[<|"|>buy milk<|"|>,<|"|>walk dog<|"|>]', ["buy milk", "walk dog"]),
    (GEMMA, '{theme:<|"|>dark \\ raw<|"|>,count:3}', {"theme": "dark \\ raw", "count": 3}),
    (GEMMA, '{"theme": "dark"}', {"theme": "dark"}),
])
def test_literals_read_as_json_values(syntax: LiteralSyntax, text: str, value: object) -> None:
    status, end, got = scan_literal(text + ")", 0, syntax)
    assert (status, end, got) == (Scan.OK, len(text), value)


@pytest.mark.parametrize("text", ['"abc', "[1, 2", "{a:", "Tru", "12", '<|"', '"x\\'])
def test_a_value_cut_short_is_partial(text: str) -> None:
    syntax = GEMMA if text.startswith(("{a", "<|")) else PYTHON
    assert scan_literal(text, 0, syntax)[0] is Scan.PARTIAL


@pytest.mark.parametrize("text", ["abc)", "[1 2]", "{a 1}", "Truth)"])
def test_text_that_is_no_literal_is_bad(text: str) -> None:
    assert scan_literal(text, 0, PYTHON)[0] is Scan.BAD
