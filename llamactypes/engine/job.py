"""`Job`: one request's trip through the engine, seen from both of its threads.

The worker thread runs the job and `emit`s events into it; the request thread
iterates `events()`. Closing that iterator (the client hung up) cancels the
job: a waiting job leaves the queue, a running one stops its token loop within
a token (or between prompt batches). Errors raised in the worker are re-raised
in the request thread, where the server turns them into an HTTP status or an
error event.
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any, Callable, Iterator, Protocol

from .types import Event, Heartbeat

__all__ = ["Job", "Cancellable"]

_END = object()
_ids = itertools.count(1)


class Cancellable(Protocol):
    """What a job can cancel while it runs (a `Generation`)."""

    def cancel(self) -> None: ...


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Queue(Protocol):
    def position(self, job: Any) -> int | None: ...

    def withdraw(self, job: Any) -> bool: ...


class Job:
    """A queued or running request. `n_prompt` is known before it runs (the prompt was
    tokenized up front, so clients can be told the input size before the first token)."""

    def __init__(self, kind: str, run: Callable[[Job], None] | None, scheduler: _Queue, n_prompt: int = 0,
                 work: Any = None) -> None:
        self.id = next(_ids)
        self.kind = kind
        self.n_prompt = n_prompt
        self.work = work  # a slot request (batched engine); None: `run` does it all on the worker
        self._run = run
        self._scheduler = scheduler
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._running: Cancellable | None = None
        self._consumed = False
        self.finished = threading.Event()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind}>"

    # ------------------------------------------------------------ request thread

    def events(self, heartbeat: float | None = None) -> Iterator[Event]:
        """The job's events as they happen; `Heartbeat` after `heartbeat` seconds of silence.

        Re-raises the worker's exception. Closing the iterator early cancels the job.
        """
        try:
            while True:
                try:
                    item = self._queue.get(timeout=heartbeat)
                except queue.Empty:
                    position = self._scheduler.position(self)
                    yield Heartbeat(position if position is not None else 0)
                    continue
                if item is _END:
                    self._consumed = True
                    return
                if isinstance(item, _Failure):
                    self._consumed = True
                    raise item.error
                yield item
        finally:
            if not self._consumed:
                self.cancel()

    def cancel(self) -> None:
        """Stop the job wherever it is (thread-safe, idempotent, never blocks)."""
        self._cancel.set()
        if self._scheduler.withdraw(self):
            self._queue.put(_END)  # it never ran
            self.finished.set()
        running = self._running
        if running is not None:
            running.cancel()

    def discard(self, error: BaseException) -> None:
        """The queue dropped this job before it ran (shutdown): its events end with `error`."""
        self._cancel.set()
        self._queue.put(_Failure(error))
        self.finished.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ------------------------------------------------------------ worker thread

    def execute(self) -> None:
        """Run the job to its end (the worker's call); never raises."""
        error: Exception | None = None
        try:
            if not self.cancelled and self._run is not None:
                self._run(self)
        except Exception as exc:  # handed to the request thread (KeyboardInterrupt & co. are not ours)
            error = exc
        finally:
            self.complete(error)

    def complete(self, error: Exception | None = None) -> None:
        """End the job's events (with `error` re-raised in the request thread, if given)."""
        if self.finished.is_set():
            return
        self._running = None
        if error is not None:
            self._queue.put(_Failure(error))
        self._queue.put(_END)
        self.finished.set()

    def emit(self, event: Event) -> None:
        self._queue.put(event)

    def attach(self, running: Cancellable) -> None:
        """Make `running` the thing `cancel()` stops (set before it starts)."""
        self._running = running
        if self.cancelled:
            running.cancel()
