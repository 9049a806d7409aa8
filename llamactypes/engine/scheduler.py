"""A bounded FIFO of jobs for one worker thread: requests are admitted in arrival order
(one at a time on a serial model, into free slots on a batched one); past the bound a
new request is refused with `BusyError`.

Pure Python (no model): the engine puts jobs in, its worker takes them out, and a
request thread may withdraw its job while it still waits (the client hung up).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

from ..errors import BusyError, ClosedError

__all__ = ["Scheduler"]

T = TypeVar("T")


class Scheduler(Generic[T]):
    """FIFO with at most `max_waiting` jobs waiting behind the running ones.

    `retry_after` (seconds) is what a refused client is told to wait.
    """

    def __init__(self, max_waiting: int = 16, retry_after: int = 2) -> None:
        if max_waiting < 0:
            raise ValueError("max_waiting must be >= 0")
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self._waiting: deque[T] = deque()
        self._running: list[T] = []
        self._closed = False
        self._cond = threading.Condition()

    def submit(self, job: T) -> int:
        """Queue `job`; returns its position (0: it runs next). Raises BusyError when full."""
        with self._cond:
            if self._closed:
                raise ClosedError("the server is shutting down")
            if len(self._waiting) >= self.max_waiting and (self._running or self._waiting):
                raise BusyError(f"{len(self._waiting)} requests are already waiting for the model; "
                                f"retry in {self.retry_after} s", retry_after=self.retry_after)
            self._waiting.append(job)
            self._cond.notify_all()
            return len(self._waiting) - (0 if self._running else 1)

    def position(self, job: T) -> int | None:
        """0 while `job` runs, n when n jobs are ahead of it, None when it is gone."""
        with self._cond:
            if any(job is running for running in self._running):
                return 0
            for i, waiting in enumerate(self._waiting):
                if waiting is job:
                    return i + (1 if self._running else 0)
            return None

    def withdraw(self, job: T) -> bool:
        """Remove a waiting job; False if it already started (or finished)."""
        with self._cond:
            try:
                self._waiting.remove(job)
            except ValueError:
                return False
            self._cond.notify_all()
            return True

    def take(self, timeout: float | None = None) -> T | None:
        """The worker's call: the next job (marked running), or None when closed or timed out."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._waiting or self._closed, timeout):
                return None
            if self._closed:
                return None
            job = self._waiting.popleft()
            self._running.append(job)
            return job

    def peek(self) -> T | None:
        """The job that would be taken next (None when none waits); the worker looks before
        it takes, so a request that cannot be admitted yet keeps its place at the head."""
        with self._cond:
            return self._waiting[0] if self._waiting else None

    def take_if(self, job: T) -> bool:
        """Take `job` if it is still at the head of the queue (it may have been withdrawn since `peek`)."""
        with self._cond:
            if self._closed or not self._waiting or self._waiting[0] is not job:
                return False
            self._running.append(self._waiting.popleft())
            return True

    def done(self, job: T) -> None:
        """The worker finished `job`."""
        with self._cond:
            self._running = [j for j in self._running if j is not job]
            self._cond.notify_all()

    def wait(self, timeout: float) -> None:
        """Sleep until a job arrives or leaves the queue, or `timeout` passes (the worker's idle wait)."""
        with self._cond:
            if not self._waiting and not self._closed:
                self._cond.wait(timeout)

    @property
    def running(self) -> int:
        """Jobs taken and not yet done."""
        with self._cond:
            return len(self._running)

    def close(self) -> list[T]:
        """Refuse new jobs, wake the worker; returns the jobs that were still waiting."""
        with self._cond:
            self._closed = True
            left = list(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()
            return left

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        """Jobs waiting (not counting the running one)."""
        with self._cond:
            return len(self._waiting)
