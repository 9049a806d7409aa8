"""Compose format grammars (GBNF) around the JSON Schema converter.

Each dialect writes the text around its calls (``"<tool_call>" ... "</tool_call>"``)
as GBNF and gets the JSON parts from `SchemaConverter`, which turns a tool's
``parameters`` schema into rules. Helper rules here are prefixed ``fmt-`` so they
cannot collide with the converter's (which are named after the schemas we add).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["GrammarBuilder", "call_schema", "literal"]

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    return '"' + "".join(_ESCAPES.get(c, c) for c in text) + '"'


def call_schema(
    name: str,
    parameters: dict[str, Any],
    *,
    name_key: str = "name",
    args_key: str = "arguments",
    extra: dict[str, Any] | None = None,
    leading: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """JSON Schema of one call object ``{"name": <const>, "arguments": <parameters>}``.

    `leading` properties come before the name, `extra` ones after the arguments
    (the converter keeps this order, and models expect their dialect's order).
    """
    properties: dict[str, Any] = dict(leading or {})
    properties.update({name_key: {"const": name}, args_key: parameters})
    properties.update(extra or {})
    return {"type": "object", "properties": properties, "required": list(properties)}


class GrammarBuilder:
    """Collects converter rules and hand-written rules into one grammar.

    The converter is imported on first use so that parsing (which needs no
    grammar) works even where the grammar engine is unavailable.
    """

    #: Whitespace between JSON tokens in compact grammars: a space, or a line break and at most four
    #: spaces (small models like one; deeper indentation is what they loop on).
    COMPACT_SPACE = '( " " | "\\n" [ ]{0,4} )?'

    def __init__(self, *, compact: bool = False) -> None:
        from llamactypes.grammar.json_schema import SchemaConverter

        self._converter = SchemaConverter()
        self._rules: dict[str, str] = {}
        #: JSON parts allow only one space between tokens (tool-call arguments: a small model
        #: otherwise fills its budget with indentation); False keeps the converter's line breaks.
        self.compact = compact

    def schema(self, schema: dict[str, Any], name: str) -> str:
        """Add a JSON Schema; returns the name of the rule that matches it."""
        return self._converter.add(schema, name)

    def rule(self, name: str, body: str) -> str:
        """Add (or replace) a hand-written rule; returns its name."""
        self._rules[name] = body
        return name

    def ws(self) -> str:
        """Optional short whitespace between markers (never unbounded: models loop on it)."""
        return self.rule("fmt-ws", '[ \\t\\n]? [ \\t\\n]? [ \\t\\n]?')

    def until(self, name: str, stop: str) -> str:
        """A rule for any text that does not contain `stop` (e.g. a raw XML value)."""
        alternatives = []
        for k in range(len(stop)):
            prefix = literal(stop[:k]) + " " if k else ""
            alternatives.append(f"{prefix}[^{_class_escape(stop[k])}]")
        return self.rule(name, "(" + " | ".join(alternatives) + ")*")

    def alternatives(self, name: str, options: Sequence[str]) -> str:
        """A rule that is one of `options` (GBNF bodies)."""
        return self.rule(name, " | ".join(f"( {o} )" for o in options))

    def build(self, root: str) -> str:
        """The full grammar text with `root` as the start rule's body."""
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self._rules.items()]
        converted = self._converter.gbnf().strip()
        if converted and self.compact:
            converted = "\n".join(
                f"space ::= {self.COMPACT_SPACE}" if line.startswith("space ::=") else line
                for line in converted.splitlines()
            )
        if converted:
            lines.append(converted)
        return "\n".join(lines) + "\n"


def _class_escape(c: str) -> str:
    return {"\\": "\\\\", "]": "\\]", "^": "\\^", "-": "\\-", "\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, c)
