"""Python functions become JSON-Schema tools; invoking them never raises into the chat loop."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, TypedDict

import jsonschema
import pytest

from llamactypes.client import Tool, parse_docstring, type_schema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: float
    y: float


@dataclass
class Box:
    w: int
    label: str = "box"


def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> str:
    """Current weather for a city.

    Looks it up in a table.

    Args:
        city: the city name,
            e.g. "Paris".
        unit (str): temperature unit.
        days: how many days.

    Returns:
        A sentence.
    """
    return f"{city}: 20 {unit}"


def test_schema_from_hints_and_google_docstring() -> None:
    tool = Tool.from_function(get_weather)
    assert tool.spec() == {"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather for a city. Looks it up in a table.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": 'the city name, e.g. "Paris".'},
                "unit": {"type": "string", "enum": ["C", "F"], "description": "temperature unit.", "default": "C"},
                "days": {"type": "integer", "description": "how many days.", "default": 1},
            },
            "required": ["city"],
            "additionalProperties": False,
        }}}
    jsonschema.Draft202012Validator.check_schema(tool.parameters)


def test_numpy_and_sphinx_docstrings() -> None:
    numpy_doc = """Add numbers.

    Parameters
    ----------
    a : int
        The first
        number.
    b : int
        The second.

    Returns
    -------
    int
    """
    assert parse_docstring(numpy_doc) == ("Add numbers.", {"a": "The first number.", "b": "The second."})
    sphinx = """Add numbers.

    :param a: the first
        number
    :param int b: the second
    :returns: the sum
    """
    assert parse_docstring(sphinx) == ("Add numbers.", {"a": "the first number", "b": "the second"})
    assert parse_docstring(None) == ("", {})


@pytest.mark.parametrize("hint, schema", [
    (bool, {"type": "boolean"}),
    (float, {"type": "number"}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (tuple[str, ...], {"type": "array", "items": {"type": "string"}}),
    (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (Optional[int], {"type": ["integer", "null"]}),
    (int | str, {"type": ["integer", "string"]}),
    (list[int] | None, {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]}),
    (Color, {"type": "string", "enum": ["red", "blue"]}),
    (Annotated[int, "a count"], {"type": "integer", "description": "a count"}),
    (Any, {}),
    (Point, {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
             "required": ["x", "y"], "additionalProperties": False}),
    (Box, {"type": "object", "properties": {"w": {"type": "integer"}, "label": {"type": "string"}},
           "required": ["w"], "additionalProperties": False}),
])
def test_type_schema(hint: Any, schema: dict[str, Any]) -> None:
    assert type_schema(hint) == schema


def test_invoke_turns_every_failure_into_an_error_result() -> None:
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    tool = Tool.from_function(divide)
    assert tool.invoke('{"a": 1, "b": 4}') == "0.25"
    assert tool.invoke({"a": 1, "b": 2}) == "0.5"
    assert "ZeroDivisionError" in json.loads(tool.invoke('{"a": 1, "b": 0}'))["error"]
    assert "not valid JSON" in json.loads(tool.invoke('{"a": 1,'))["error"]
    assert "bad arguments" in json.loads(tool.invoke('{"a": 1, "c": 2}'))["error"]
    assert "JSON object" in json.loads(tool.invoke("[1, 2]"))["error"]
    assert Tool.from_function(lambda: {"k": (1, 2)}, name="f").invoke("") == '{"k": [1, 2]}'


def test_names_and_overrides() -> None:
    tool = Tool.from_function(get_weather, name="weather", description="Weather.")
    assert (tool.name, tool.description) == ("weather", "Weather.")
    with pytest.raises(ValueError, match="tool name"):
        Tool.from_function(lambda x: x)  # "<lambda>" is no valid name
    with pytest.raises(ValueError, match="positional-only"):
        Tool.from_function(lambda x, /: x, name="f")
