"""Python functions as OpenAI tools: a JSON Schema from type hints, descriptions from the docstring.

    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''Current weather for a city.

        Args:
            city: the city name, e.g. "Paris".
            unit: temperature unit.
        '''

    Tool.from_function(get_weather).spec()
    # {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
    #  "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": ...},
    #                 "unit": {"type": "string", "enum": ["C", "F"], "default": "C", ...}},
    #                 "required": ["city"], "additionalProperties": false}}}

Supported hints: str, int, float, bool, None, list/tuple/set[...], dict[str, ...], Literal, Enum,
Optional/Union (``X | None``), TypedDict, dataclasses, Annotated[X, "description"], Any.
Docstrings in Google (``Args:``), NumPy (``Parameters`` + dashes) and Sphinx (``:param x:``) style.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Tool", "type_schema", "parse_docstring"]

_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    bytes: {"type": "string"},
    dict: {"type": "object"},
    list: {"type": "array"},
    tuple: {"type": "array"},
    set: {"type": "array"},
    frozenset: {"type": "array"},
}


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema for one Python type hint (unknown types give ``{}``: anything)."""
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return {}
    if hint in _SIMPLE:
        return dict(_SIMPLE[hint])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        schema = type_schema(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            schema["description"] = " ".join(notes)
        return schema
    if origin is typing.Literal:
        values = list(args)
        kinds = {type(v) for v in values}
        schema: dict[str, Any] = {"enum": values}
        if len(kinds) == 1 and next(iter(kinds)) in _SIMPLE:
            schema = {**_SIMPLE[next(iter(kinds))], **schema}
        return schema
    if origin in (typing.Union, types.UnionType):
        return _union_schema(args)
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return {"type": "array", "items": type_schema(args[0])} if args else {"type": "array"}
    if origin is tuple:
        items = [type_schema(a) for a in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1])} if args else {"type": "object"}
    if origin is not None and isinstance(origin, type):
        return type_schema(origin)  # collections.abc.Sequence[int] and the like: their base
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [member.value for member in hint]
        return {**type_schema(type(values[0])), "enum": values} if values else {"enum": []}
    if _is_typeddict(hint):
        return _typeddict_schema(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass_schema(hint)
    return {}


def _union_schema(args: tuple[Any, ...]) -> dict[str, Any]:
    options = [type_schema(a) for a in args]
    simple = [o.get("type") for o in options]
    if all(isinstance(t, str) and len(o) == 1 for t, o in zip(simple, options)):
        return {"type": list(dict.fromkeys(simple))}  # ["string", "null"]
    return {"anyOf": options}


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__required_keys__")


def _typeddict_schema(hint: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(hint, include_extras=True)
    required = [k for k in hints if k in hint.__required_keys__]
    return {"type": "object", "properties": {k: type_schema(v) for k, v in hints.items()},
            "required": required, "additionalProperties": False}


def _dataclass_schema(hint: type) -> dict[str, Any]:
    hints = typing.get_type_hints(hint, include_extras=True)
    properties: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(hint):
        properties[f.name] = type_schema(hints.get(f.name, Any))
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


# ---------------------------------------------------------------- docstrings

_GOOGLE_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:\s*$")
_OTHER_SECTION = re.compile(r"^(Returns?|Yields?|Raises|Examples?|Notes?|See Also|Attributes|Warnings?)\s*:?\s*$")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_ITEM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(:.*)?$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(summary, {parameter: description}) from a Google, NumPy or Sphinx style docstring.

    The summary is the text before the first section or ``:param`` line, its lines joined.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    base: int | None = None  # indentation of a Google-style item line
    mode = "summary"
    i = 0
    while i < len(lines):
        raw = lines[i]
        line = raw.strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if _GOOGLE_SECTION.match(line):
            mode, current, base = "google", None, None
        elif line in ("Parameters", "Other Parameters") and nxt and set(nxt) == {"-"}:
            mode, current = "numpy", None
            i += 1
        elif _OTHER_SECTION.match(line) and (line.endswith(":") or (nxt and set(nxt) == {"-"})):
            mode, current = "other", None
        elif (m := _SPHINX_ITEM.match(line)) is not None:
            mode, current = "sphinx", m.group(1)
            params[current] = m.group(2).strip()
        elif line.startswith(":"):
            mode, current = "other", None  # :returns:, :raises ...:
        elif mode == "summary":
            summary.append(line)
        elif mode == "google" and line:
            m = _GOOGLE_ITEM.match(line)
            if m and (base is None or _indent(raw) <= base):
                base = _indent(raw)
                current = m.group(1).lstrip("*")
                params[current] = m.group(3).strip()
            elif current:
                params[current] = f"{params[current]} {line}".strip()
        elif mode == "numpy" and line:
            m = _NUMPY_ITEM.match(line)
            if m and not raw.startswith((" ", "\t")):
                current = m.group(1)
                params[current] = ""
            elif current:
                params[current] = f"{params[current]} {line}".strip()
        elif mode == "sphinx" and line and current:
            params[current] = f"{params[current]} {line}".strip()
        i += 1
    text = " ".join(" ".join(summary).split())
    return text, {k: " ".join(v.split()) for k, v in params.items()}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# ---------------------------------------------------------------- tools

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class Tool:
    """A callable the model may ask for: its name, description, JSON Schema and the function."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] = field(repr=False)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], name: str | None = None,
                      description: str | None = None) -> Tool:
        """Build the schema from `fn`'s signature, type hints and docstring."""
        name = name or getattr(fn, "__name__", "")
        if not _NAME.match(name):
            raise ValueError(f"tool name {name!r} must match [A-Za-z0-9_-]{{1,64}}")
        summary, notes = parse_docstring(inspect.getdoc(fn))
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception:  # unresolvable forward references: fall back to the raw annotations
            hints = dict(getattr(fn, "__annotations__", {}))
        properties: dict[str, Any] = {}
        required: list[str] = []
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.kind is param.POSITIONAL_ONLY:
                raise ValueError(f"tool {name!r}: positional-only parameter {param.name!r} cannot be named in JSON")
            schema = type_schema(hints.get(param.name, Any))
            if param.name in notes and "description" not in schema:
                schema["description"] = notes[param.name]
            if param.default is param.empty:
                required.append(param.name)
            elif _json_safe(param.default):
                schema["default"] = _plain(param.default)
            properties[param.name] = schema
        parameters = {"type": "object", "properties": properties, "required": required,
                      "additionalProperties": False}
        return cls(name=name, description=description if description is not None else summary,
                   parameters=parameters, fn=fn)

    def spec(self) -> dict[str, Any]:
        """The entry for the ``tools`` list of a chat completion request."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    def invoke(self, arguments: str | dict[str, Any] | None) -> str:
        """Call the function with the model's arguments and return the result as text for the model.

        Bad JSON, wrong arguments and exceptions raised by the function come back as an
        ``{"error": ...}`` text so the model can see what went wrong and try again.
        """
        try:
            args = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else (arguments or {})
        except json.JSONDecodeError as exc:
            return json.dumps({"error": f"arguments are not valid JSON: {exc}"})
        if not isinstance(args, dict):
            return json.dumps({"error": "arguments must be a JSON object"})
        try:
            inspect.signature(self.fn).bind(**args)
        except TypeError as exc:
            return json.dumps({"error": f"bad arguments for {self.name}: {exc}"})
        try:
            result = self.fn(**args)
        except Exception as exc:  # the model gets the error and may recover
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        return result if isinstance(result, str) else json.dumps(_plain(result), ensure_ascii=False, default=str)


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(_plain(value))
    except (TypeError, ValueError):
        return False
    return True


def _plain(value: Any) -> Any:
    """Enums, dataclasses, tuples and sets as JSON-friendly values."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
