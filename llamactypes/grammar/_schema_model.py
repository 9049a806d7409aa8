"""JSON Schema read into the node kinds the converter understands.

A port of llama.cpp's ``common/json-schema.cpp`` (``common_chat_schema_from_json``): the same
keywords decide the same kinds in the same order, and the same inputs are refused, here as
`SchemaError` with the JSON pointer of the culprit.

One extension: OpenAPI's ``"nullable": true`` also admits ``null`` (llama.cpp ignores it).
Keywords llama.cpp ignores and we ignore too (documented in json_schema.py) are listed in
`IGNORED_CONSTRAINTS`; ``SchemaConverter(strict=True)`` refuses them instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import SchemaError
from ..limits import DEFAULT_LIMITS, Limits, limit_message

__all__ = [
    "Node", "AnyNode", "RefNode", "AnyOfNode", "AllOfNode", "ConstNode", "EnumNode", "NullNode",
    "BooleanNode", "NumberNode", "IntegerNode", "StringNode", "ArrayNode", "TupleNode", "ObjectNode",
    "Property", "build_schema", "check_shape", "IGNORED_CONSTRAINTS",
]

#: Keywords that narrow the valid documents but that the grammar does not enforce.
IGNORED_CONSTRAINTS = frozenset({
    "not", "if", "then", "else", "uniqueItems", "contains", "minContains", "maxContains", "multipleOf",
    "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired",
    "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems",
})
#: Number bounds: llama.cpp enforces them for "integer" only.
NUMBER_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


class Node:
    """One schema node; subclasses mirror llama.cpp's ``common_chat_schema`` kinds."""


@dataclass(eq=False)
class AnyNode(Node):
    """Any JSON value."""


@dataclass(eq=False)
class RefNode(Node):
    """A ``$ref`` into the same document; `target` is filled once every ref is built."""

    ref: str
    target: Node | None = None


@dataclass(eq=False)
class AnyOfNode(Node):
    """``anyOf`` / ``oneOf`` (oneOf is not exclusive here), or one branch per ``type``."""

    children: list[Node]


@dataclass(eq=False)
class AllOfNode(Node):
    """``allOf``: objects are merged, enums intersected, anything else ignored."""

    children: list[Node]


@dataclass(eq=False)
class ConstNode(Node):
    value: Any


@dataclass(eq=False)
class EnumNode(Node):
    values: list[Any]


@dataclass(eq=False)
class NullNode(Node):
    pass


@dataclass(eq=False)
class BooleanNode(Node):
    pass


@dataclass(eq=False)
class NumberNode(Node):
    pass


@dataclass(eq=False)
class IntegerNode(Node):
    """Inclusive bounds, None when open (exclusive bounds and fractions folded in)."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(eq=False)
class StringNode(Node):
    pattern: str = ""
    format: str = ""  # "", "uuid", "date", "time" or "date-time"
    min_length: int = 0
    max_length: int = -1


@dataclass(eq=False)
class ArrayNode(Node):
    items: Node
    min_items: int = 0
    max_items: int = -1


@dataclass(eq=False)
class TupleNode(Node):
    items: list[Node]


@dataclass(eq=False)
class Property:
    name: str
    schema: Node
    required: bool = False


@dataclass(eq=False)
class ObjectNode(Node):
    properties: list[Property] = field(default_factory=list)
    additional: Node | None = None  # None: no other properties allowed


def _schema_limit(what: str, value: object, field: str, limits: Limits, path: str) -> SchemaError:
    bound = getattr(limits, field)
    return SchemaError(limit_message(what, value, bound, f"raise Limits.{field}, see docs/limits.md"), path)


def check_shape(schema: Any, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a schema document nested deeper than ``schema_max_depth`` (objects and arrays),
    without recursing: it runs before anything that would (`copy.deepcopy`, the builder)."""
    todo: list[tuple[Any, int]] = [(schema, 1)]
    most = limits.schema_max_depth
    while todo:
        value, depth = todo.pop()
        if depth > most:
            raise _schema_limit("the nesting of the schema (objects and arrays)", depth, "schema_max_depth",
                                limits, "#")
        if isinstance(value, dict):
            todo.extend((item, depth + 1) for item in value.values() if isinstance(item, (dict, list)))
        elif isinstance(value, list):
            todo.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))


class _Builder:
    """``common_chat_schema_builder``: one pass over the JSON, refs resolved at the end."""

    def __init__(self, document: Any, strict: bool, limits: Limits = DEFAULT_LIMITS) -> None:
        self.document = document
        self.strict = strict
        self.limits = limits
        self.refs: dict[str, Node | None] = {}
        self.pending: list[RefNode] = []

    def build(self, schema: Any, path: str = "#") -> Node:
        node = self.node(schema, path)
        for ref in self.pending:
            ref.target = self.refs[ref.ref]
        return node

    @staticmethod
    def count(schema: dict, key: str, path: str, default: int) -> int:
        if key not in schema:
            return default
        value = schema[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SchemaError(f"{key} must be a non-negative integer", path)
        if value > 2**31 - 1:  # llama.cpp reads counts as int; a grammar could not repeat more anyway
            raise SchemaError(f"{key} must be at most {2**31 - 1}", path)
        return value

    def bound(self, schema: dict, key: str, path: str, round_up: bool) -> int:
        """An integer bound; a fractional one is rounded inwards, as llama.cpp does."""
        value = schema[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{key} must be a number", path)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise SchemaError(f"{key} must be a finite number", path)
            value = math.ceil(value) if round_up else math.floor(value)
        most = self.limits.schema_max_number_digits
        if abs(value) >= 10 ** most:
            digits = int(abs(value).bit_length() * 0.30103) + 1  # str() of a huge int is refused
            raise _schema_limit(f"the number of digits of {key}", f"about {digits}", "schema_max_number_digits",
                                self.limits, path)
        return value

    @staticmethod
    def format(schema: dict, path: str) -> str:
        if "format" not in schema:
            return ""
        fmt = schema["format"]
        if not isinstance(fmt, str):
            raise SchemaError("format must be a string", path)
        if fmt in ("date", "time", "date-time"):
            return fmt
        if fmt == "uuid" or (len(fmt) == 5 and fmt.startswith("uuid") and "1" <= fmt[4] <= "5"):
            return "uuid"
        return ""

    def resolve(self, ref: str, path: str) -> Any:
        target = self.document
        for sel in ref[1:].split("/")[1:]:
            if isinstance(target, dict) and sel in target:
                target = target[sel]
            elif isinstance(target, list):
                idx = int(sel) if sel.isdigit() else len(target)
                if idx >= len(target):
                    raise SchemaError(f"cannot resolve $ref {ref}, {sel} is out of range", path)
                target = target[idx]
            else:
                raise SchemaError(f"cannot resolve $ref {ref}, {sel} not found", path)
        return target

    def ref(self, value: Any, path: str) -> Node:
        if not isinstance(value, str):
            raise SchemaError("$ref must be a string", path)
        if not value.startswith("#/"):
            raise SchemaError(
                f"unsupported $ref {value}, only references into the same document are supported", path
            )
        if value not in self.refs:
            self.refs[value] = None  # a cycle back to this $ref stops here
            self.refs[value] = self.node(self.resolve(value, path), value)
        node = RefNode(value)
        self.pending.append(node)
        return node

    def alternatives(self, alts: Any, path: str) -> list[Node]:
        if not isinstance(alts, list):
            raise SchemaError("must be an array of schemas", path)
        if not alts:
            raise SchemaError("must not be empty", path)
        return [self.node(alt, f"{path}/{i}") for i, alt in enumerate(alts)]

    def object(self, schema: dict, path: str) -> ObjectNode:
        required = set()
        if isinstance(schema.get("required"), list):
            required = {name for name in schema["required"] if isinstance(name, str)}
        node = ObjectNode()
        if "properties" in schema:
            props = schema["properties"]
            if not isinstance(props, dict):
                raise SchemaError("properties must be an object", path)
            if len(props) > self.limits.schema_max_properties:
                raise _schema_limit("the number of properties of an object", len(props), "schema_max_properties",
                                    self.limits, path)
            for name, prop in props.items():
                node.properties.append(Property(name, self.node(prop, f"{path}/properties/{name}"), name in required))
        if "additionalProperties" in schema:
            extra = schema["additionalProperties"]
            if isinstance(extra, bool):
                node.additional = AnyNode() if extra else None
            elif isinstance(extra, dict):
                node.additional = self.node(extra, f"{path}/additionalProperties")
            else:
                raise SchemaError("additionalProperties must be a boolean or a schema", path)
        elif "properties" not in schema:
            node.additional = AnyNode()  # {"type": "object"} on its own accepts any object
        return node

    def array(self, schema: dict, path: str) -> Node:
        if "items" in schema or "prefixItems" in schema:
            key = "items" if "items" in schema else "prefixItems"
            items = schema[key]
            if isinstance(items, list):
                return TupleNode([self.node(item, f"{path}/{key}/{i}") for i, item in enumerate(items)])
            item_node = self.node(items, f"{path}/{key}")
        else:
            item_node = AnyNode()
        return ArrayNode(item_node, self.count(schema, "minItems", path, 0), self.count(schema, "maxItems", path, -1))

    def string(self, schema: dict, path: str) -> StringNode:
        pattern = schema.get("pattern", "")
        if not isinstance(pattern, str):
            raise SchemaError("pattern must be a string", path)
        return StringNode(
            pattern, self.format(schema, path),
            self.count(schema, "minLength", path, 0), self.count(schema, "maxLength", path, -1),
        )

    def integer(self, schema: dict, path: str) -> IntegerNode:
        node = IntegerNode()
        if "minimum" in schema:
            node.minimum = self.bound(schema, "minimum", path, True)
        elif "exclusiveMinimum" in schema:
            node.minimum = self.bound(schema, "exclusiveMinimum", path, False) + 1
        if "maximum" in schema:
            node.maximum = self.bound(schema, "maximum", path, False)
        elif "exclusiveMaximum" in schema:
            node.maximum = self.bound(schema, "exclusiveMaximum", path, True) - 1
        return node

    def check_strict(self, schema: dict, path: str, type_name: str) -> None:
        if not self.strict:
            return
        for key in sorted(IGNORED_CONSTRAINTS & schema.keys()):
            raise SchemaError(f"'{key}' is not supported (strict mode)", path)
        if type_name == "number" and any(k in schema for k in NUMBER_BOUNDS):
            raise SchemaError("bounds on 'number' are not supported, only on 'integer' (strict mode)", path)

    def node(self, schema: Any, path: str) -> Node:
        if not isinstance(schema, dict):
            raise SchemaError("schema must be an object", path)
        if schema.get("nullable") is True:
            return self.nullable(schema, path)
        if "$ref" in schema:
            return self.ref(schema["$ref"], path)
        if "oneOf" in schema or "anyOf" in schema:
            key = "oneOf" if "oneOf" in schema else "anyOf"
            return AnyOfNode(self.alternatives(schema[key], f"{path}/{key}"))
        type_ = schema.get("type")
        if isinstance(type_, list):
            # {"type": ["a", "b"], ...} is {"anyOf": [{"type": "a", ...}, {"type": "b", ...}]}
            if not type_:
                raise SchemaError("type must not be empty", path)
            return AnyOfNode([self.node({**schema, "type": t}, f"{path}/type/{i}") for i, t in enumerate(type_)])
        if "const" in schema:
            return ConstNode(schema["const"])
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise SchemaError("enum must be a non-empty array", path)
            return EnumNode(list(values))
        if type_ is not None and not isinstance(type_, str):
            raise SchemaError("type must be a string or an array of strings", path)
        type_name = type_ or ""
        self.check_strict(schema, path, type_name)
        return self.typed(schema, path, type_name)

    def typed(self, schema: dict, path: str, type_name: str) -> Node:
        extra = schema.get("additionalProperties", True)
        has_properties = "properties" in schema or extra is not True
        if not type_name:
            # without a type the structural keywords decide, in the same order as llama.cpp
            if has_properties:
                return self.object(schema, path)
            if "allOf" in schema:
                return AllOfNode(self.alternatives(schema["allOf"], f"{path}/allOf"))
            if "items" in schema or "prefixItems" in schema:
                return self.array(schema, path)
            if any(k in schema for k in ("pattern", "minLength", "maxLength")) or self.format(schema, path):
                return self.string(schema, path)
            return AnyNode()
        if type_name == "object":
            if not has_properties and "allOf" in schema:
                return AllOfNode(self.alternatives(schema["allOf"], f"{path}/allOf"))
            return self.object(schema, path)
        if type_name == "string":
            if "allOf" in schema:
                return AllOfNode(self.alternatives(schema["allOf"], f"{path}/allOf"))
            return self.string(schema, path)
        simple = {"array": self.array, "integer": self.integer}
        if type_name in simple:
            return simple[type_name](schema, path)
        kinds = {"number": NumberNode, "boolean": BooleanNode, "null": NullNode}
        if type_name in kinds:
            return kinds[type_name]()
        raise SchemaError(f"unrecognized type {type_name}", path)

    def nullable(self, schema: dict, path: str) -> Node:
        """OpenAPI ``nullable``: the same schema, or null (an extension over llama.cpp)."""
        rest = {k: v for k, v in schema.items() if k != "nullable"}
        type_ = rest.get("type")
        if isinstance(type_, str):
            type_ = [type_]
        if isinstance(type_, list) and "$ref" not in rest and "anyOf" not in rest and "oneOf" not in rest:
            rest["type"] = type_ + ([] if "null" in type_ else ["null"])
            return self.node(rest, path)
        return AnyOfNode([self.node(rest, path), NullNode()])


def build_schema(schema: Any, document: Any = None, strict: bool = False, limits: Limits = DEFAULT_LIMITS) -> Node:
    """Read `schema` (a parsed JSON Schema); ``$ref`` pointers resolve inside `document`
    (by default the schema itself). Raises `SchemaError` for what cannot be expressed."""
    return _Builder(schema if document is None else document, strict, limits).build(schema)
