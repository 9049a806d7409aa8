"""`DirectStream`: a streamed response whose tokens the engine's worker thread writes itself.

On the usual path every token wakes the request thread, which formats the event and
writes it: a thread switch per token, on a machine whose cores are busy running the
model's threads (measured on 2 cores: ~0.2 ms of CPU per token taken from the decode,
docs/benchmarks.md). Once a stream is flowing, the request thread diverts the job's
deltas (`Job.divert`) to this sink instead: the worker formats each delta with the
API's own encoder and writes it to the socket without blocking (`http.DirectChunks`),
while the request thread stays parked on the job's queue for everything else (the
finish, errors, heartbeats).

Nothing changes on the wire, and nothing can be lost or reordered:
- the diversion starts only when the job's queue is empty and the request thread has
  written everything before it;
- what the socket cannot take at once (a slow client) comes back through the queue
  as a `Spill`, which the request thread writes, waiting as usual; the diversion ends
  there and starts again after the next delta;
- a heartbeat does not interrupt a stream that flows; otherwise the request thread
  ends the diversion and writes it itself;
- a broken connection hands the frame back too: the request thread's write fails as
  it would have, and the job is cancelled.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..chat.types import Delta

__all__ = ["DirectStream", "Spill"]


class Spill:
    """Bytes of a frame the worker could not write: the request thread writes them, in order."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class DirectStream:
    """The sink a streaming response diverts its job's deltas to (see the module docstring).

    `encode(delta)` returns the bytes of the events the API writes for that delta (b"" for
    none); it runs on the worker thread, and on the request thread only while the job is
    not diverted, so the API's stream state is never touched by both at once.
    """

    def __init__(self, job: Any, out: Any, encode: Callable[[Delta], bytes]) -> None:
        self.job = job
        self.out = out
        self.encode = encode
        self.sent = 0
        self.last_sent = 0.0
        self._seen = 0

    @classmethod
    def open(cls, job: Any, environ: dict, encode: Callable[[Delta], bytes]) -> DirectStream | None:
        """The direct path for this response, or None where the server cannot offer it (another
        WSGI server, a blocking socket, a job that cannot divert)."""
        out = environ.get("llamactypes.direct")
        if out is None or not hasattr(job, "divert") or not out.usable():
            return None
        return cls(job, out, encode)

    @property
    def diverted(self) -> bool:
        return bool(self.job.diverted)

    def start(self) -> None:
        """Divert the job's deltas here (the request thread, after it wrote everything so far)."""
        if not self.job.diverted:
            self.job.divert(self._sink)

    def stop(self) -> None:
        """Take the stream back (the request thread is about to write)."""
        self.job.divert(None)

    def flowed(self) -> bool:
        """Whether deltas went out directly since the last call."""
        flowed = self.sent != self._seen
        self._seen = self.sent
        return flowed

    def write_spill(self, spill: Spill) -> None:
        """The request thread writes what the worker could not (OSError: the client is gone)."""
        self.out.sendall(spill.data)

    def _sink(self, event: Any) -> Any:
        """On the worker thread, under the job's emit lock: None when the event went out."""
        if not isinstance(event, Delta):
            return event
        try:
            data = self.encode(event)
        except Exception:  # the request thread meets the same error and reports it
            return event
        if not data:
            return None
        frame = self.out.frame(data)
        try:
            rest = self.out.send_nowait(frame)
        except OSError:
            return Spill(frame)  # the request thread's write fails the same way and cancels
        self.sent += 1
        self.last_sent = time.monotonic()
        return Spill(rest) if rest else None
