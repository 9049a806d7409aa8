"""The declaration machinery of `llamactypes.api`: C functions bound lazily, on first call.

Each C function is declared once, with its header line above it::

    # LLAMA_API int32_t llama_decode(struct llama_context * ctx, struct llama_batch batch);
    @ctypes_function("llama_decode", [llama_context_p, llama_batch], ctypes.c_int32)
    def llama_decode(ctx, batch, /) -> int: ...

Nothing is loaded at import time; the first call loads the library (`_lib.load`)
and binds argtypes/restype, later calls go straight to the C function.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any, Callable, TypeVar

from .. import _lib

__all__ = ["ctypes_function", "DECLARED", "bind_all"]

F = TypeVar("F", bound=Callable[..., Any])

#: Every declared C function: name -> (argtypes, restype).
DECLARED: dict[str, tuple[list[Any], Any]] = {}


def _bind(name: str, argtypes: list[Any], restype: Any) -> Any:
    cfunc = getattr(_lib.load(), name)
    cfunc.argtypes = argtypes
    cfunc.restype = restype
    return cfunc


def ctypes_function(name: str, argtypes: list[Any], restype: Any) -> Callable[[F], F]:
    """Declare the C function `name`; the decorated stub documents its Python signature."""

    def decorator(stub: F) -> F:
        DECLARED[name] = (argtypes, restype)
        cfunc: Any = None

        @functools.wraps(stub)
        def call(*args: Any) -> Any:
            nonlocal cfunc
            if cfunc is None:
                cfunc = _bind(name, argtypes, restype)
            return cfunc(*args)

        call.c_name = name  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return decorator


def bind_all() -> list[str]:
    """Bind every declaration now; returns the names the library lacks (should be none)."""
    lib = _lib.load()
    return [name for name in DECLARED if not hasattr(lib, name)]
