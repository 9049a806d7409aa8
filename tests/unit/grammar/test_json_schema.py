"""JSON Schema to GBNF: llama.cpp's expected grammars, and random documents that validate."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jsonschema
import pytest

from llamactypes.errors import SchemaError
from llamactypes.grammar import Grammar, SchemaConverter, json_schema_to_gbnf

from .cpp_cases import schema_cases
from .grammar_gen import generate


def _trim(text: str) -> str:
    """The C++ test's ``trim``: strip, and drop indentation at line starts."""
    return re.sub(r"(^|\n)[ \t]+", r"\1", text.strip(" \n\r\t"))


#: Where we deliberately differ from llama.cpp's expected output (a bug fixed), as
#: (case name, text in llama.cpp's grammar, text in ours).
KNOWN_FIXES = [
    ("max -5", '"-" ([0-4] [0-9]{1,15}', '"-" ([1-4] [0-9]{1,15}'),  # llama.cpp accepts "-06"
    # llama.cpp's root is the value of the "" property, its object is root0
    ("optional props with empty name", 'space ":" space root\n', 'space ":" space integer\n'),
    ("optional props with empty name", 'root ::= ("-"? integral-part)\nroot0 ::=', "root ::="),
    ("regexp quote", '("\\"")', '("\\\\\\"")'),  # llama.cpp writes """, not "\""
    ("regexp", "dot ::= [^\\x0A\\x0D]", 'dot ::= [^"\\\\\\x00-\\x1F] | "\\\\" ["\\\\/bft]'),  # '"' raw in JSON
]


#: And in every "any other key" class of additional properties, llama.cpp's ``[^"a]`` lets a
#: raw backslash or control character start a key: ours leaves those out.
_KEY_CLASS = re.compile(r'\[\^"([^\]]*)\] char\*')
_KEY_FIX = r'[^"\1\\\\\\x7F\\x00-\\x1F] char*'


def test_same_grammars_as_llama_cpp(llama_source: Path) -> None:
    """Every case of tests/test-json-schema-to-grammar.cpp, byte for byte (but KNOWN_FIXES)."""
    cases = schema_cases(llama_source)
    assert len(cases) >= 70
    fixes: dict[str, list[tuple[str, str]]] = {}
    for name, old, new in KNOWN_FIXES:
        fixes.setdefault(name, []).append((old, new))
    for case in cases:
        schema = json.loads(case.schema)
        if not case.success:
            with pytest.raises(SchemaError):
                json_schema_to_gbnf(schema)
            continue
        expected = _KEY_CLASS.sub(_KEY_FIX, _trim(case.expected))
        for old, new in fixes.pop(case.name, []):
            assert old in expected, (case.name, old)
            expected = expected.replace(old, new)
        assert _trim(json_schema_to_gbnf(schema)) == expected, case.name
    assert not fixes, f"fixed cases no longer in the C++ test: {fixes}"


@pytest.mark.parametrize("schema", [{"type": "integer", "maximum": -5}, {"type": "integer", "minimum": 105},
                                    {"type": "integer", "minimum": 1152}, {"type": "integer", "maximum": -111}])
def test_integer_bounds_llama_cpp_gets_wrong(schema: dict) -> None:
    grammar = Grammar.from_gbnf(json_schema_to_gbnf(schema))
    lo, hi = schema.get("minimum"), schema.get("maximum")
    for n in [*range(-1200, 1200), 1050722, -1099, 10**9, -(10**9)]:
        inside = (lo is None or n >= lo) and (hi is None or n <= hi)
        assert grammar.accepts(str(n)) == inside, n
        assert not grammar.accepts(f"-0{abs(n)}") and not grammar.accepts(f"0{abs(n)}")


def test_expected_grammars_parse(llama_source: Path) -> None:
    for case in schema_cases(llama_source):
        if case.success:
            Grammar.from_gbnf(case.expected)


def test_sub_schema_with_enclosing_document() -> None:
    """The "sub-schema $ref" block of the C++ test: a property schema added on its own."""
    document = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/item"}},
        "$defs": {"item": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                           "additionalProperties": False}},
    }
    conv = SchemaConverter()
    assert conv.add(document["properties"]["item"], "root", document=document) == "root"
    assert _trim(conv.gbnf()) == _trim(r'''
        char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})
        ref-defs-item ::= "{" space ref-defs-item-a-kv space "}"
        ref-defs-item-a-kv ::= "\"a\"" space ":" space string
        root ::= ref-defs-item
        space ::= | " " | "\n"{1,2} [ \t]{0,20}
        string ::= "\"" char* "\""
    ''')


def test_recursive_ref() -> None:
    schema = {"$ref": "#/$defs/node", "$defs": {"node": {
        "type": "object", "properties": {"next": {"$ref": "#/$defs/node"}, "leaf": {}}, "additionalProperties": False}}}
    grammar = Grammar.from_gbnf(json_schema_to_gbnf(schema))
    assert grammar.accepts('{"next": {"next": {"leaf": [1]}}, "leaf": null}')
    assert not grammar.accepts('{"leaf": 1, "next": {}}')


def test_embedding_schemas_in_a_bigger_grammar() -> None:
    conv = SchemaConverter()
    call = conv.add({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "call")
    assert call == "call"
    other = conv.add({"type": "integer", "minimum": 1}, "count")
    text = conv.gbnf() + f'root ::= "<tool_call>" space {call} space "</tool_call>" | "n=" {other}\n'
    grammar = Grammar.from_gbnf(text)
    assert grammar.accepts('<tool_call>\n{"city": "Paris"} </tool_call>')
    assert grammar.accepts("n=12") and not grammar.accepts("n=0")
    assert conv.add_rule("my rule!", '"x"') == "my-rule-"


@pytest.mark.parametrize(("lo", "hi"), [(None, 0), (0, None), (-5, None), (None, -5), (7, 123), (-123, 42),
                                        (-1000, -10), (15, 300), (99, 1000), (-9, 9), (1, 1), (0, 9),
                                        (1000, None), (None, -1000), (-2020, 10), (None, 2020)])
def test_integer_ranges_exhaustively(lo: int | None, hi: int | None) -> None:
    schema: dict = {"type": "integer"}
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    grammar = Grammar.from_gbnf(json_schema_to_gbnf(schema))
    for n in range(-1200, 1200):
        inside = (lo is None or n >= lo) and (hi is None or n <= hi)
        assert grammar.accepts(str(n)) == inside, (schema, n)
    assert not grammar.accepts("01") and not grammar.accepts("")  # "-0" may pass: llama.cpp allows it


def test_huge_integer_bounds() -> None:
    big = 2**53
    grammar = Grammar.from_gbnf(json_schema_to_gbnf({"type": "integer", "minimum": -big, "maximum": big}))
    for n in (-big, -big + 1, -1, 0, 1, big - 1, big, 10**15):
        assert grammar.accepts(str(n)), n
    for n in (-big - 1, big + 1, 10**16, -(10**16)):
        assert not grammar.accepts(str(n)), n
    exclusive = Grammar.from_gbnf(json_schema_to_gbnf({"type": "integer", "exclusiveMinimum": 0.5,
                                                       "exclusiveMaximum": 10**30}))
    assert exclusive.accepts("1") and exclusive.accepts(str(10**30 - 1))
    assert not exclusive.accepts("0") and not exclusive.accepts(str(10**30))


def test_nullable() -> None:
    grammar = Grammar.from_gbnf(json_schema_to_gbnf({"type": "string", "nullable": True}))
    assert grammar.accepts("null") and grammar.accepts('"x"') and not grammar.accepts("1")
    grammar = Grammar.from_gbnf(json_schema_to_gbnf({"enum": [1, 2], "nullable": True}))
    assert grammar.accepts("null") and grammar.accepts("2") and not grammar.accepts("3")


@pytest.mark.parametrize(("schema", "path", "words"), [
    ({"$ref": "https://example.com/s.json"}, "#", "only references into the same document"),
    ({"$ref": "#/$defs/missing"}, "#", "not found"),
    ({"type": "kaboom"}, "#", "unrecognized type"),
    ({"properties": {"a": {"type": 3}}}, "#/properties/a", "type must be"),
    ({"type": "string", "pattern": "^(a$"}, "#", "unbalanced"),
    ({"type": "array", "minItems": -1}, "#", "minItems"),
    ({"anyOf": []}, "#/anyOf", "must not be empty"),
    (["not", "a", "schema"], "#", "schema must be an object"),
])
def test_schema_errors(schema: object, path: str, words: str) -> None:
    with pytest.raises(SchemaError) as info:
        json_schema_to_gbnf(schema)  # type: ignore[arg-type]
    assert words in str(info.value)
    assert info.value.path == path or path == "#"


def test_unsupported_pattern_warns_or_fails_in_strict_mode() -> None:
    conv = SchemaConverter()
    conv.add({"type": "string", "pattern": "^\\d+$"})
    assert conv.warnings and "accepting any string" in conv.warnings[0]
    with pytest.raises(SchemaError, match="not supported"):
        json_schema_to_gbnf({"type": "string", "pattern": "^\\d+$"}, strict=True)


@pytest.mark.parametrize("schema", [
    {"type": "array", "uniqueItems": True},
    {"type": "number", "minimum": 0},
    {"type": "integer", "multipleOf": 2},
    {"not": {"type": "string"}},
])
def test_strict_mode_refuses_ignored_constraints(schema: dict) -> None:
    json_schema_to_gbnf(schema)  # ignored, like llama.cpp
    with pytest.raises(SchemaError, match="strict"):
        json_schema_to_gbnf(schema, strict=True)


# Schemas whose generated documents must validate: the C++ cases (minus those relying on
# features the grammar ignores) and a few more.
_LOSSY = {"unanchored regexp", "regexp with unsupported shorthand", "unsupported regexp in a property"}
_MORE = [
    {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 999},
                                      "name": {"type": "string", "minLength": 1, "maxLength": 8},
                                      "tags": {"type": "array", "items": {"enum": ["a", "b", 3, None]},
                                               "maxItems": 3},
                                      "when": {"type": "string", "format": "date-time"},
                                      "ratio": {"type": ["number", "null"]}},
     "required": ["id", "name"], "additionalProperties": {"type": "boolean"}},
    {"type": "array", "prefixItems": [{"const": "x"}, {"type": "integer", "exclusiveMaximum": -3}]},
    {"anyOf": [{"type": "string", "pattern": "^[a-c]{2,3}(-[0-9]+)?$"}, {"type": "boolean"}]},
    {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"type": ["string", "null"]}}}], "type": "object"},
    {"type": "object", "properties": {"": {"type": "null"}, "ab": {"const": 1}}, "additionalProperties": True},
]


def _validation_schemas(llama_source: Path) -> list[tuple[str, dict]]:
    cases = [(c.name, json.loads(c.schema)) for c in schema_cases(llama_source) if c.success and c.name not in _LOSSY]
    return cases + [(f"extra-{i}", s) for i, s in enumerate(_MORE)]


def _validator(schema: dict):
    """Draft 7 for schemas with the old tuple form (``"items": [...]``), else 2020-12."""
    def has_item_list(node: object) -> bool:
        if isinstance(node, dict):
            return isinstance(node.get("items"), list) or any(has_item_list(v) for v in node.values())
        return isinstance(node, list) and any(has_item_list(v) for v in node)

    cls = jsonschema.Draft7Validator if has_item_list(schema) else jsonschema.Draft202012Validator
    return cls(schema)


def test_generated_documents_validate(llama_source: Path) -> None:
    rng = random.Random(1234)
    not_json_schema = []  # llama.cpp also reads e.g. "prefixItems": {...}, which validators refuse
    for name, schema in _validation_schemas(llama_source):
        grammar = Grammar.from_gbnf(json_schema_to_gbnf(schema))
        validator = _validator(schema)
        try:
            validator.check_schema(schema)
        except jsonschema.SchemaError:
            not_json_schema.append(name)
            continue
        for _ in range(15):
            text = generate(grammar, rng, max_depth=30)
            assert grammar.accepts(text), (name, text)
            document = json.loads(text)
            errors = [e.message for e in validator.iter_errors(document)]
            assert not errors, (name, text, errors)
    assert len(not_json_schema) <= 4, not_json_schema
