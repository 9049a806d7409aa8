"""Reading fields out of a decoded JSON body, with errors that name the field.

Every getter returns the default when the field is absent or null, and raises
`InvalidRequestError(param=<field>)` for a wrong type or range — so a client's
mistake is a 400 that says which field, never a 500.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sized

from ..errors import InvalidRequestError
from ..limits import DEFAULT_LIMITS, Limits, limit_message

__all__ = ["get_bool", "get_int", "get_number", "get_str", "get_stop", "get_object", "get_list", "require",
           "check_count", "check_schema_shape", "raise_how",
           "INT_LIMIT"]

_MISSING = object()


def _type_error(key: str, what: str, value: Any) -> InvalidRequestError:
    return InvalidRequestError(f"{key} must be {what}, got {type(value).__name__} {_short(value)}", param=key)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def require(body: Mapping[str, Any], key: str) -> Any:
    """The value of a required field (null counts as missing)."""
    value = body.get(key)
    if value is None:
        raise InvalidRequestError(f"{key} is required", param=key)
    return value


def get_bool(body: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type_error(key, "a boolean", value)
    return value


def get_number(body: Mapping[str, Any], key: str, default: float | None = None, *,
               lo: float | None = None, hi: float | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(key, "a number", value)
    number = _as_float(value)
    if number is None:
        raise InvalidRequestError(f"{key} must be a finite number, got {_short(value)}", param=key)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise InvalidRequestError(f"{key} must be between {lo} and {hi}, got {_short(value)}", param=key)
    return number


def _as_float(value: int | float) -> float | None:
    """`value` as a finite float, or None (an int too large for a float would raise OverflowError)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


#: ints beyond this are refused by every getter (they reach C as int32/int64 or numpy indices)
INT_LIMIT = 2**63 - 1


def get_int(body: Mapping[str, Any], key: str, default: int | None = None, *,
            lo: int | None = None, hi: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer() and abs(value) <= INT_LIMIT:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(key, "an integer", value)
    if abs(value) > INT_LIMIT:
        raise InvalidRequestError(f"{key} must fit in 64 bits, got {_short(value)}", param=key)
    if lo is not None and value < lo:
        raise InvalidRequestError(f"{key} must be >= {lo}, got {value}", param=key)
    if hi is not None and value > hi:
        raise InvalidRequestError(f"{key} must be <= {hi}, got {value}", param=key)
    return value


def get_str(body: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _type_error(key, "a string", value)
    return value


def get_object(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _type_error(key, "an object", value)
    return dict(value)


def get_list(body: Mapping[str, Any], key: str) -> list[Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _type_error(key, "an array", value)
    return value


def get_stop(body: Mapping[str, Any], key: str = "stop", limits: Limits = DEFAULT_LIMITS) -> tuple[str, ...]:
    """A stop field: one string or a list of strings (empty strings dropped), within the
    count and length limits (every stop string is searched after every token)."""
    value = body.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _type_error(key, "a string or an array of strings", value)
    check_count(key, value, limits.max_stop_strings, "max_stop_strings")
    for s in value:
        if len(s) > limits.max_stop_length:
            raise InvalidRequestError(limit_message("a stop string's length", len(s), limits.max_stop_length,
                                                    raise_how("max_stop_length")), param=key)
    return tuple(s for s in value if s)


def raise_how(name: str) -> str:
    """How to raise the `Limits` field `name` (there is no server flag for it)."""
    return f"raise Limits.{name}: ServerConfig(limits=dataclasses.replace(DEFAULT_LIMITS, {name}=...))"


def check_count(key: str, items: Sized, limit: int, name: str) -> None:
    """Refuse a list longer than `limit` (a `Limits` field called `name`) with a message that says so."""
    if len(items) > limit:
        raise InvalidRequestError(limit_message(f"the number of {key} entries", len(items), limit,
                                                raise_how(name)), param=key)


def check_schema_shape(schema: Any, param: str) -> None:
    """A tool's parameter schema must be an object whose `properties` (if any) is an object of
    schemas: the chat layer reads it to describe and constrain the tool call."""
    if not isinstance(schema, Mapping):
        raise InvalidRequestError("a tool's parameters must be a JSON Schema object", param=param)
    props = schema.get("properties")
    if props is None:
        return
    if not isinstance(props, Mapping) or not all(isinstance(v, (Mapping, bool)) for v in props.values()):
        raise InvalidRequestError("properties must be an object mapping names to JSON Schemas",
                                  param=f"{param}.properties")
