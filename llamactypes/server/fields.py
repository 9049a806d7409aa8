"""Reading fields out of a decoded JSON body, with errors that name the field.

Every getter returns the default when the field is absent or null, and raises
`InvalidRequestError(param=<field>)` for a wrong type or range — so a client's
mistake is a 400 that says which field, never a 500.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ..errors import InvalidRequestError

__all__ = ["get_bool", "get_int", "get_number", "get_str", "get_stop", "get_object", "get_list", "require"]

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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _type_error(key, "a number", value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidRequestError(f"{key} must be between {lo} and {hi}, got {value}", param=key)
    return float(value)


def get_int(body: Mapping[str, Any], key: str, default: int | None = None, *,
            lo: int | None = None, hi: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(key, "an integer", value)
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


def get_stop(body: Mapping[str, Any], key: str = "stop") -> tuple[str, ...]:
    """A stop field: one string or a list of strings (empty strings dropped)."""
    value = body.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise _type_error(key, "a string or an array of strings", value)
