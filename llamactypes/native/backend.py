"""One-time backend setup: load the library, init llama.cpp, route its log to `logging`."""

from __future__ import annotations

import logging
import os
import threading

from .. import _lib
from ..api import backend as capi
from ..api.types import (
    GGML_LOG_LEVEL_CONT, GGML_LOG_LEVEL_DEBUG, GGML_LOG_LEVEL_ERROR, GGML_LOG_LEVEL_INFO, GGML_LOG_LEVEL_WARN,
    ggml_log_callback,
)

__all__ = ["ensure_backend", "default_threads", "native_logger"]

native_logger = logging.getLogger("llamactypes.native")

_LEVELS = {
    GGML_LOG_LEVEL_DEBUG: logging.DEBUG,
    GGML_LOG_LEVEL_INFO: logging.INFO,
    GGML_LOG_LEVEL_WARN: logging.WARNING,
    GGML_LOG_LEVEL_ERROR: logging.ERROR,
}
_lock = threading.Lock()
_ready = False
_pending: list[str] = []
_pending_level = logging.INFO


def _on_log(level: int, text: bytes | None, _user_data: object) -> None:
    """llama.cpp's log callback: assemble continued lines, emit whole lines to `logging`."""
    global _pending_level
    try:
        piece = (text or b"").decode("utf-8", errors="replace")
        if level != GGML_LOG_LEVEL_CONT:
            _pending_level = _LEVELS.get(level, logging.INFO)
        _pending.append(piece)
        if piece.endswith("\n"):
            line = "".join(_pending).rstrip("\n")
            _pending.clear()
            if native_logger.isEnabledFor(_pending_level):
                native_logger.log(_pending_level, "%s", line)
    except Exception:  # an exception must never cross back into C
        pass


# Kept alive for as long as the process: C holds this pointer forever.
_LOG_CALLBACK = ggml_log_callback(_on_log)


def ensure_backend() -> None:
    """Load libllama, initialize llama.cpp once, and install the log bridge."""
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        _lib.load()
        capi.llama_log_set(_LOG_CALLBACK, None)
        capi.llama_backend_init()
        if capi.ggml_backend_dev_count() == 0:
            # A build with dynamically loaded backends (official releases): load them.
            folder = _lib.lib_dir()
            if folder is not None:
                capi.ggml_backend_load_all_from_path(str(folder).encode())
        _ready = True


def default_threads() -> int:
    """Cores this process may use (not the machine's): llama.cpp's threads spin, so
    oversubscribing a core slows generation by orders of magnitude."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
