"""A faithful, boring ctypes mirror of llama.h at the pinned tag, split by header section.

Nothing here has logic or loads the library at import; see `_base.ctypes_function`.
Upgrading llama.cpp means diffing the header against these modules (the tests do).
"""

from __future__ import annotations

from . import backend, context, model, registry, rpc, sampler, types
from ._base import DECLARED, bind_all

__all__ = ["backend", "context", "model", "registry", "rpc", "sampler", "types", "DECLARED", "bind_all"]
