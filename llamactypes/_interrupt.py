"""Raise an exception in another thread: the one use of CPython's own C API (not llama.cpp's).

`ChatTemplate.render` runs untrusted template code; its watchdog uses this to stop a
rendering past its time budget (`chat/_budget.py`). ``PyThreadState_SetAsyncExc`` delivers
the exception at the target thread's next bytecode boundary. Layer 1, so that the pure
layers (grammar, chat) never import ctypes themselves.
"""

from __future__ import annotations

import ctypes

__all__ = ["raise_in_thread"]


def raise_in_thread(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule `exc` (a class) in thread `thread_id`; None cancels one not delivered yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc is not None else None)
