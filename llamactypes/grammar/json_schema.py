"""JSON Schema to GBNF, following llama.cpp's ``common/json-schema-to-grammar.cpp`` (b11434).

    json_schema_to_gbnf({"type": "object", "properties": {"a": {"type": "integer"}}})

    conv = SchemaConverter()
    call = conv.add(tool_parameters_schema, "call")    # -> rule name, e.g. "call"
    grammar = conv.gbnf() + 'root ::= "<tool_call>" space call space "</tool_call>"\\n'

The output is the same grammar text llama.cpp produces (rule names, order, spacing), which
the tests check against llama.cpp's own expectations. What is supported, as in llama.cpp:
``type`` (also lists), ``const``, ``enum``, ``anyOf``/``oneOf`` (not exclusive), ``allOf``
(objects merged, enums intersected), local ``$ref`` into ``$defs``/``definitions``/anywhere
(``#/...``; remote refs are a `SchemaError`), objects (``properties``, ``required``,
``additionalProperties``; required properties first in declared order, then optional ones,
also in order), arrays (``items``, ``prefixItems``, ``minItems``, ``maxItems``), strings
(``minLength``, ``maxLength``, ``pattern``, ``format`` date / time / date-time / uuid),
integers with ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` (any size),
numbers, booleans, null, and ``{}`` for any value. Added here: OpenAPI ``nullable``.

Ignored like llama.cpp (the grammar then admits more than the schema): annotations
(``$schema``, ``$id``, ``title``, ``description``, ``default``, ``examples``...), bounds on
``number``, ``uniqueItems``, ``not``, ``if``/``then``/``else``, ``multipleOf``,
``patternProperties``, ``minProperties``... (see ``IGNORED_CONSTRAINTS``); and a ``pattern``
outside the supported subset becomes "any string" with a message in ``warnings``.
``SchemaConverter(strict=True)`` raises `SchemaError` for all of these instead.
Known llama.cpp quirk kept for identical output: with additional properties allowed, a key
that is a proper prefix of a declared property name (``"a"`` next to ``"ab"``) is excluded.

Where llama.cpp's grammar admits documents that are not JSON or not valid, we fix it (the
tests list each difference from llama.cpp's expected output): integer ranges (``minimum``
105 also let 100..104 through, 1152 shut out 1050722, ``maximum`` -5 let "-06" through);
``pattern`` literals, classes and ``.`` are kept to valid JSON string content (llama.cpp
writes a matched ``"`` or ``\\`` raw); the first character of an additional property name
cannot be a raw control character or backslash; and a top-level property named ``""`` no
longer takes the ``root`` rule from the object.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..errors import SchemaError
from ..limits import DEFAULT_LIMITS, Limits
from ._schema_model import (
    AllOfNode, AnyNode, AnyOfNode, ArrayNode, BooleanNode, ConstNode, EnumNode, IntegerNode, Node, NullNode,
    NumberNode, ObjectNode, RefNode, StringNode, TupleNode, build_schema, check_shape,
)
from ._schema_pattern import JSON_DOT, JSON_DOT_ALL, InvalidPattern, UnsupportedPattern, not_strings, pattern_to_gbnf
from ._schema_rules import (
    INT_MAX, PRIMITIVE_RULES, RESERVED_NAMES, SPACE_RULE, STRING_FORMAT_RULES, BuiltinRule, build_min_max_int,
    build_repetition, dump_json, escape_rule_name, format_literal,
)

__all__ = ["SchemaConverter", "json_schema_to_gbnf"]


class SchemaConverter:
    """Collects the GBNF rules of one or more schemas (``common_chat_schema_converter``).

    `add` converts a schema and returns the name of its top rule, so several schemas can
    share one grammar; `gbnf` returns every rule, sorted by name, one per line. The rule
    ``space`` (optional whitespace) is always present for callers to use.
    """

    def __init__(self, *, dotall: bool = False, strict: bool = False, limits: Limits | None = None) -> None:
        """`dotall`: ``.`` in patterns also matches newlines; `strict`: refuse ignored keywords;
        `limits`: the schema bounds (depth, properties, digits), `DEFAULT_LIMITS` if None."""
        self._dotall = dotall
        self._strict = strict
        self._limits = limits or DEFAULT_LIMITS
        self._rules: dict[str, str] = {"space": SPACE_RULE}
        self._resolving: set[str] = set()
        self._errors: list[str] = []
        #: Parts of schemas that were approximated (e.g. an unsupported pattern).
        self.warnings: list[str] = []

    # --- public -------------------------------------------------------------------------
    def add(self, schema: dict[str, Any], name: str = "root", *, document: dict[str, Any] | None = None) -> str:
        """Convert `schema` into rules named after `name`; return its top rule's name.

        ``$ref`` pointers resolve inside `document` (default: `schema` itself), so a property
        schema can be added on its own with its enclosing document. Raises `SchemaError`.
        """
        check_shape(schema, self._limits)
        if document is not None:
            check_shape(document, self._limits)
        node = build_schema(copy.deepcopy(schema), document=document, strict=self._strict, limits=self._limits)
        rule = self.visit(node, "" if name == "root" else name)
        self._check_errors()
        return rule

    def add_rule(self, name: str, body: str) -> str:
        """Add a raw GBNF rule (name made safe and unique); return the name used."""
        return self._add_rule(name, body)

    def gbnf(self) -> str:
        """All rules so far, ``name ::= body`` one per line, sorted by name."""
        return "".join(f"{name} ::= {body}\n" for name, body in sorted(self._rules.items()))

    # --- rules --------------------------------------------------------------------------
    def _add_rule(self, name: str, rule: str) -> str:
        esc = escape_rule_name(name)
        if esc not in self._rules or self._rules[esc] == rule:
            self._rules[esc] = rule
            return esc
        i = 0
        while f"{esc}{i}" in self._rules and self._rules[f"{esc}{i}"] != rule:
            i += 1
        self._rules[f"{esc}{i}"] = rule
        return f"{esc}{i}"

    def _add_primitive(self, name: str, rule: BuiltinRule) -> str:
        result = self._add_rule(name, rule.content)
        for dep in rule.deps:
            dep_rule = PRIMITIVE_RULES.get(dep) or STRING_FORMAT_RULES.get(dep)
            if dep_rule is None:
                self._errors.append(f"Rule {dep} not known")
            elif dep not in self._rules:
                self._add_primitive(dep, dep_rule)
        return result

    def _primitive(self, rule_name: str, type_name: str) -> str:
        return self._add_primitive("root" if rule_name == "root" else type_name, PRIMITIVE_RULES[type_name])

    def _check_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise SchemaError("JSON schema conversion failed: " + "; ".join(errors))

    # --- visiting -----------------------------------------------------------------------
    def visit(self, node: Node, name: str) -> str:
        """The rule for `node`, named after `name` (``""`` means the top level, ``root``)."""
        rule_name = name + "-" if name in RESERVED_NAMES else (name or "root")
        handler: Callable[[Any, str, str], str] = self._HANDLERS[type(node)]
        return handler(self, node, name, rule_name)

    def _ref(self, node: RefNode, name: str, rule_name: str) -> str:
        fragment = node.ref.split("#", 1)[1] if "#" in node.ref else node.ref
        ref_name = "ref" + escape_rule_name(fragment)
        if ref_name not in self._rules and node.ref not in self._resolving:
            if node.target is None:
                self._errors.append(f"Unresolved $ref {node.ref}")
                return self._add_rule(rule_name, "")
            self._resolving.add(node.ref)
            ref_name = self.visit(node.target, ref_name)
            self._resolving.discard(node.ref)
        return self._add_rule(rule_name, ref_name)

    def _any_of(self, node: AnyOfNode, name: str, rule_name: str) -> str:
        prefix = name + ("-" if name else "alternative-")
        alts = [self.visit(child, f"{prefix}{i}") for i, child in enumerate(node.children)]
        return self._add_rule(rule_name, " | ".join(alts))

    def _all_of(self, node: AllOfNode, name: str, rule_name: str) -> str:
        required: set[str] = set()
        properties: list[tuple[str, Node]] = []
        enum_counts: dict[str, int] = {}

        def add_component(comp: Node, is_required: bool) -> None:
            if isinstance(comp, RefNode):
                if comp.target is not None:
                    add_component(comp.target, is_required)
            elif isinstance(comp, ObjectNode):
                for prop in comp.properties:
                    properties.append((prop.name, prop.schema))
                    if is_required:
                        required.add(prop.name)
            elif isinstance(comp, EnumNode):
                for value in comp.values:
                    literal = format_literal(dump_json(value))
                    enum_counts[literal] = enum_counts.get(literal, 0) + 1

        for child in node.children:
            if isinstance(child, AnyOfNode):
                for alt in child.children:
                    add_component(alt, False)
            else:
                add_component(child, True)
        common = [v for v, count in sorted(enum_counts.items()) if count == len(node.children)]
        if common:
            return self._add_rule(rule_name, "(" + " | ".join(common) + ")")
        return self._add_rule(rule_name, self._object_rule(properties, required, name, None))

    def _const(self, node: ConstNode, name: str, rule_name: str) -> str:
        return self._add_rule(rule_name, format_literal(dump_json(node.value)))

    def _enum(self, node: EnumNode, name: str, rule_name: str) -> str:
        values = [format_literal(dump_json(v)) for v in node.values]
        return self._add_rule(rule_name, "(" + " | ".join(values) + ")")

    def _object(self, node: ObjectNode, name: str, rule_name: str) -> str:
        if not node.properties and isinstance(node.additional, AnyNode):
            return self._add_rule(rule_name, self._add_primitive("object", PRIMITIVE_RULES["object"]))
        properties = [(p.name, p.schema) for p in node.properties]
        required = {p.name for p in node.properties if p.required}
        return self._add_rule(rule_name, self._object_rule(properties, required, name, node.additional))

    def _tuple(self, node: TupleNode, name: str, rule_name: str) -> str:
        sub = name + "-" if name else ""
        items = [self.visit(item, f"{sub}tuple-{i}") for i, item in enumerate(node.items)]
        return self._add_rule(rule_name, '"[" space ' + ' "," space '.join(items) + ' space "]"')

    def _array(self, node: ArrayNode, name: str, rule_name: str) -> str:
        if isinstance(node.items, AnyNode) and node.min_items == 0 and node.max_items < 0:
            return self._primitive(rule_name, "array")
        item = self.visit(node.items, (name + "-" if name else "") + "item")
        max_items = INT_MAX if node.max_items < 0 else node.max_items
        body = build_repetition(item, node.min_items, max_items, '"," space')
        return self._add_rule(rule_name, f'"[" space {body} space "]"')

    def _string(self, node: StringNode, name: str, rule_name: str) -> str:
        if node.pattern:
            return self._pattern(node.pattern, rule_name)
        if node.format == "uuid":
            return self._primitive(rule_name, "uuid")
        if node.format:
            prim = f"{node.format}-string"
            return self._add_rule(rule_name, self._add_primitive(prim, STRING_FORMAT_RULES[prim]))
        if node.min_length > 0 or node.max_length >= 0:
            char = self._add_primitive("char", PRIMITIVE_RULES["char"])
            max_len = INT_MAX if node.max_length < 0 else node.max_length
            return self._add_rule(rule_name, f'"\\"" {build_repetition(char, node.min_length, max_len)} "\\""')
        return self._primitive(rule_name, "string")

    def _pattern(self, pattern: str, rule_name: str) -> str:
        snapshot = dict(self._rules)
        dot = JSON_DOT_ALL if self._dotall else JSON_DOT
        try:
            body = pattern_to_gbnf(pattern, rule_name, self._add_rule, lambda: self._add_rule("dot", dot))
            return self._add_rule(rule_name, body)
        except UnsupportedPattern as exc:
            self._rules = snapshot
            if self._strict:
                raise SchemaError(f"pattern {pattern} is not supported ({exc})") from None
            self.warnings.append(f"pattern {pattern} is not supported ({exc}), accepting any string")
            return self._add_rule(rule_name, self._add_primitive("string", PRIMITIVE_RULES["string"]))
        except InvalidPattern as exc:
            self._rules = snapshot
            self._errors.append(f"Invalid pattern {pattern}: {exc}")
            return ""

    def _integer(self, node: IntegerNode, name: str, rule_name: str) -> str:
        if node.minimum is None and node.maximum is None:
            return self._primitive(rule_name, "integer")
        return self._add_rule(rule_name, "(" + build_min_max_int(node.minimum, node.maximum) + ")")

    def _any(self, node: AnyNode, name: str, rule_name: str) -> str:
        return self._add_rule(rule_name, self._add_primitive("value", PRIMITIVE_RULES["value"]))

    # --- objects ------------------------------------------------------------------------
    def _object_rule(self, properties: list[tuple[str, Node]], required: set[str], name: str,
                     additional: Node | None) -> str:
        """``{ required..., optional... }``: required in declared order, then the optional
        ones in order (each may be skipped), then the additional properties, if allowed."""
        prefix = name + "-" if name else ""
        kv_rules: dict[str, str] = {}
        required_props: list[str] = []
        optional_props: list[str] = []
        for prop_name, prop_schema in properties:
            # llama.cpp names the value of a top-level "" property "root", and the object loses
            # the root rule to it (the grammar then matches the property's value only)
            value_rule = self.visit(prop_schema, prefix + prop_name or "-")
            kv_rules[prop_name] = self._add_rule(
                f"{prefix}{prop_name}-kv", f'{format_literal(dump_json(prop_name))} space ":" space {value_rule}'
            )
            (required_props if prop_name in required else optional_props).append(prop_name)
        if additional is not None:
            sub = prefix + "additional"
            value_rule = (self._add_primitive("value", PRIMITIVE_RULES["value"]) if isinstance(additional, AnyNode)
                          else self.visit(additional, f"{sub}-value"))
            names = [p for p, _ in properties]
            key_rule = (self._add_primitive("string", PRIMITIVE_RULES["string"]) if not names
                        else self._add_rule(f"{sub}-k", not_strings(names, self._char_rule())))
            kv_rules["*"] = self._add_rule(f"{sub}-kv", f'{key_rule} ":" space {value_rule}')
            optional_props.append("*")
        if not required_props and not optional_props:
            return '"{" space "}"'
        rule = '"{" space ' + ' "," space '.join(kv_rules[p] for p in required_props)
        if optional_props:
            rule += " ("
            if required_props:
                rule += ' "," space ( '
            rule += " | ".join(
                self._optional_chain(optional_props[i:], False, kv_rules, prefix) for i in range(len(optional_props))
            )
            if required_props:
                rule += " )"
            rule += " )?"
        return rule + ' space "}"'

    def _optional_chain(self, keys: list[str], first_optional: bool, kv_rules: dict[str, str], prefix: str) -> str:
        """llama.cpp's ``get_recursive_refs``: the first of `keys`, then maybe the rest.

        Built from the last key backwards (llama.cpp recurses once per key; the rules and
        their order of creation are the same), so many properties cannot exhaust the stack.
        """
        if not keys:
            return ""

        def head(key: str, optional: bool) -> str:
            kv = kv_rules[key]
            comma = f'( "," space {kv} )'
            if optional:
                return comma + ("*" if key == "*" else "?")
            return kv + (f" {comma}*" if key == "*" else "")

        rest: str | None = None  # the rule for keys[j + 1:], every key optional
        for j in range(len(keys) - 1, 0, -1):
            body = head(keys[j], True) + (f" {rest}" if rest is not None else "")
            rest = self._add_rule(f"{prefix}{keys[j - 1]}-rest", body)
        return head(keys[0], first_optional) + (f" {rest}" if rest is not None else "")

    def _char_rule(self) -> str:
        return self._add_primitive("char", PRIMITIVE_RULES["char"])

    _HANDLERS: dict[type, Callable[..., str]] = {}


SchemaConverter._HANDLERS = {
    RefNode: SchemaConverter._ref,
    AnyOfNode: SchemaConverter._any_of,
    AllOfNode: SchemaConverter._all_of,
    ConstNode: SchemaConverter._const,
    EnumNode: SchemaConverter._enum,
    ObjectNode: SchemaConverter._object,
    TupleNode: SchemaConverter._tuple,
    ArrayNode: SchemaConverter._array,
    StringNode: SchemaConverter._string,
    IntegerNode: SchemaConverter._integer,
    NumberNode: lambda self, node, name, rule_name: self._primitive(rule_name, "number"),
    BooleanNode: lambda self, node, name, rule_name: self._primitive(rule_name, "boolean"),
    NullNode: lambda self, node, name, rule_name: self._primitive(rule_name, "null"),
    AnyNode: SchemaConverter._any,
}


def json_schema_to_gbnf(schema: dict[str, Any], *, strict: bool = False, limits: Limits | None = None) -> str:
    """The GBNF grammar (root rule ``root``) of the JSON documents `schema` describes.

    Raises `SchemaError` for schemas llama.cpp cannot convert either (or, with `strict`,
    for keywords it would ignore).
    """
    converter = SchemaConverter(strict=strict, limits=limits)
    converter.add(schema)
    return converter.gbnf()
