"""`ChatPool`: one `Chat` per single-sequence server, handed out to parallel workers.

Each llamactypes server answers one request at a time (one KV cache, one
sequence). For parallel work, run N servers — `python -m llamactypes.serve
--pool N --port P` serves ports P … P+N-1 — and give every worker its own
`Chat`:

    with ChatPool.connect(port=11434, n=4) as pool:
        answers = pool.map(lambda chat, q: chat.chat(q, max_tokens=64), questions)

`ChatPool.spawn(model, n)` starts the N servers itself (each `Chat` owns one).
See docs/pool.md for the design and when a reverse proxy suits better.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ..errors import ClosedError
from ._chat import Chat

__all__ = ["ChatPool", "threads_per_server"]

T = TypeVar("T")
R = TypeVar("R")


def threads_per_server(n: int, cpus: int | None = None) -> int:
    """Split the cores between `n` servers (llama.cpp's threads spin: oversubscribing is slow)."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, n))


class ChatPool:
    """A fixed set of `Chat` objects; `session()` lends one, `map()` runs work on all of them."""

    def __init__(self, chats: Sequence[Chat]) -> None:
        if not chats:
            raise ValueError("a ChatPool needs at least one Chat")
        self.chats = list(chats)
        self._free: queue.Queue[Chat] = queue.Queue()
        for chat in self.chats:
            self._free.put(chat)
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def connect(cls, port: int = 11434, n: int = 1, host: str = "127.0.0.1", *,
                urls: Sequence[str] | None = None, **chat_kwargs: Any) -> ChatPool:
        """Chats for servers on consecutive ports ``port … port+n-1`` (or the given `urls`)."""
        urls = list(urls) if urls is not None else [f"http://{host}:{port + i}/v1" for i in range(n)]
        return cls([Chat(base_url=url, **chat_kwargs) for url in urls])

    @classmethod
    def spawn(cls, model_path: str | os.PathLike[str], n: int, *, threads: int | None = None,
              **chat_kwargs: Any) -> ChatPool:
        """Start `n` servers for `model_path` (free ports; the cores split between them)."""
        threads = threads or threads_per_server(n)
        chats: list[Chat] = []
        try:
            for _ in range(n):
                chats.append(Chat(model_path, threads=threads, **chat_kwargs))
        except BaseException:
            for chat in chats:
                chat.stop()
            raise
        return cls(chats)

    def __len__(self) -> int:
        return len(self.chats)

    def __iter__(self) -> Iterator[Chat]:
        return iter(self.chats)

    @contextlib.contextmanager
    def session(self, reset: bool = True, timeout: float | None = None) -> Iterator[Chat]:
        """Borrow a free `Chat` (waiting for one), its history cleared unless `reset` is False."""
        if self._closed:
            raise ClosedError("this ChatPool is closed")
        try:
            chat = self._free.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no Chat became free within {timeout} s") from None
        try:
            if reset:
                chat.reset()
            yield chat
        finally:
            self._free.put(chat)

    def map(self, fn: Callable[[Chat, T], R], items: Iterable[T]) -> list[R]:
        """``[fn(chat, item) for item in items]``, run on all the Chats at once (results in order).

        Each call gets a Chat with a fresh history; an exception in one call is raised here
        after the others finish.
        """
        def run(item: T) -> R:
            with self.session() as chat:
                return fn(chat, item)

        with ThreadPoolExecutor(max_workers=len(self.chats), thread_name_prefix="chatpool") as executor:
            futures = [executor.submit(run, item) for item in items]
        return [f.result() for f in futures]

    def stop(self) -> None:
        """Stop every Chat (and the servers spawned for them)."""
        with self._lock:
            self._closed = True
            for chat in self.chats:
                chat.stop()

    close = stop

    def __enter__(self) -> ChatPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
