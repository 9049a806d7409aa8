"""A thread-safe LRU cache bounded in bytes, not entries.

Grammars and their token masks arrive with requests, so what the server keeps of them must
be bounded by the memory it costs: an entry count means nothing when one mask is 150 KB at a
150k vocabulary and one grammar may hold thousands of them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

__all__ = ["ByteLRU"]

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """Least recently used entries go first once their sizes add up past `max_bytes`.

    `max_bytes` is read through a callable so a cache built at import time follows the limits
    in force; an entry larger than the whole budget is simply not kept.
    """

    def __init__(self, max_bytes: Callable[[], int]) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0

    def get(self, key: Hashable) -> V | None:
        """The value under `key` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: V, nbytes: int) -> None:
        """Keep `value` (costing `nbytes`), dropping the least recently used past the budget."""
        budget = self._max_bytes()
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            if nbytes > budget:
                return
            self._entries[key] = (value, nbytes)
            self.nbytes += nbytes
            while self.nbytes > budget and self._entries:
                _, (_, size) = self._entries.popitem(last=False)
                self.nbytes -= size

    def discard(self, key: Hashable) -> None:
        """Forget `key` if present."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]

    def __len__(self) -> int:
        return len(self._entries)
