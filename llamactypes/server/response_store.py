"""A bounded in-memory store of responses, so `previous_response_id` works within a server's life.

As the real API does: a request without `store` is stored (the official SDK sends
none), `store: false` is not. The oldest entries go first once `max_items` is
reached (`Limits.max_stored_responses`); nothing survives a restart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["StoredResponse", "ResponseStore"]


@dataclass(frozen=True)
class StoredResponse:
    """A finished response object and the conversation it ended (input messages + output)."""

    response: dict[str, Any]
    conversation: list[dict[str, Any]]


class ResponseStore:
    """Thread-safe, least-recently-used, at most `max_items` responses."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, stored: StoredResponse) -> None:
        if self.max_items <= 0:
            return
        with self._lock:
            self._items[response_id] = stored
            self._items.move_to_end(response_id)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            stored = self._items.get(response_id)
            if stored is not None:
                self._items.move_to_end(response_id)
            return stored

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._items.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._items)
