"""Owners of llama.cpp's native handles: model, vocabulary, context.

Every C result is checked here, once, and turned into a typed error; every
handle has one owner with an idempotent `close()`.
"""

from __future__ import annotations

from .backend import default_threads, ensure_backend
from .context import Context, ContextParams
from .memory import MemoryKind, SeqMemory
from .model import NativeModel
from .vocab import Vocab

__all__ = ["Context", "ContextParams", "NativeModel", "Vocab", "default_threads", "ensure_backend", "SeqMemory",
           "MemoryKind"]
