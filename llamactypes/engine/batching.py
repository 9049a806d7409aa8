"""`BatchWorker`: the engine's worker thread. Continuous batching over the slots of one context.

Every step is one decode (`Backend.decode`, the native `BatchDecoder` in production, a
scripted fake in the unit tests): the next token of every generating slot plus, within a
time budget, a chunk of a waiting prompt (`slots.plan_step`, `slots.ChunkSizer`).
Sampling stays per slot (each request's own `TokenStep`: seed, penalties, grammar, stop
strings), reading its row of logits as a numpy view. Between steps the worker admits
queued requests in arrival order into idle slots (the slot sharing the longest prefix
with the prompt, or the prompt cache's state), drops the slots whose client hung up, and
runs exclusive jobs (embeddings; every job of a model that cannot batch).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..errors import DecodeError
from .job import Job
from .scheduler import Scheduler
from .slots import ChunkSizer, Entry, Slot, cells, choose_donor, choose_slot, plan_step
from .types import Started

__all__ = ["Backend", "BatchWorker", "SlotRequest", "PromptCacheLike", "MIN_SAVE_TOKENS", "MIN_SHARE_TOKENS"]

log = logging.getLogger("llamactypes.engine")

#: a slot's state goes to the prompt cache only when it holds at least this many tokens
MIN_SAVE_TOKENS = 64
#: a new request borrows another slot's cells for a shared prefix when that saves at least this many tokens
MIN_SHARE_TOKENS = 16


class Backend(Protocol):
    """What the worker needs from a multi-sequence context (`native.batch.BatchDecoder`)."""

    n_ctx: int
    n_batch: int

    def decode(self, tokens: Sequence[int], pos: Sequence[int], seq: Sequence[int],
               logits: Sequence[bool]) -> None: ...

    def logits(self, row: int) -> np.ndarray: ...

    def prepare(self, seq: int, prompt: Sequence[int]) -> int: ...

    def checkpoint(self, seq: int) -> None: ...

    def truncate(self, seq: int, n_keep: int) -> int: ...

    def clear(self, seq: int) -> None: ...

    def seq_pos_max(self, seq: int) -> int: ...

    @property
    def can_save(self) -> bool: ...

    def save(self, seq: int) -> bytes: ...

    def restore(self, seq: int, tokens: Sequence[int], data: bytes) -> bool: ...

    def share(self, dst: int, src: int, n: int) -> int: ...


class PromptCacheLike(Protocol):
    """The part of `engine.prompt_cache.PromptCache` the worker uses."""

    def put(self, tokens: Sequence[int], state: bytes) -> None: ...

    def lookup(self, tokens: Sequence[int]) -> tuple[int, bytes] | None: ...

    def __contains__(self, tokens: Sequence[int]) -> bool: ...


@dataclass(eq=False)
class SlotRequest:
    """One request's side of a slot: its prompt, its sampling state, where its text and end go.

    `step` is a `generation.TokenStep` (or anything with `advance(logits) -> str`, `token`,
    `finished`, `finish(reason)`, `budget`); `on_text` gets each piece of text, `on_end(n_cached)`
    is called once when the step finished (not when the request failed).
    """

    job: Job
    tokens: list[int]
    step: Any
    on_text: Callable[[str], None]
    on_end: Callable[[int], None]
    generating: bool = False


class BatchWorker:
    """Runs on the engine's worker thread: admission, steps, cancellation, shutdown.

    Args:
        backend: the multi-sequence decoder (None: a model that cannot batch; every job is exclusive).
        scheduler: the FIFO the engine submits jobs to.
        n_slots: sequences of the context (the backend's n_seq_max).
        cache: a prompt cache for slot states (None: live slots only).
        max_step: seconds a step carrying a prompt chunk should last while others stream.
    """

    def __init__(self, backend: Backend | None, scheduler: Scheduler[Job], n_slots: int = 1, *,
                 cache: PromptCacheLike | None = None, max_step: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.scheduler = scheduler
        self.slots = [Slot(i) for i in range(n_slots if backend is not None else 0)]
        self.cache = cache
        self.sizer = ChunkSizer(target=max_step, n_max=backend.n_batch if backend is not None else 512)
        self.clock = clock
        self.exclusive: Job | None = None
        self._closing = threading.Event()
        self._order = itertools.count()
        self._inflight: list[Slot] = []

    # ------------------------------------------------------------ thread body and stop

    def run(self) -> None:
        """The worker loop; returns after `stop()` once every job it held has ended."""
        try:
            while not self._closing.is_set():
                self.admit()
                if self.active():
                    self.step()
                elif self.scheduler.peek() is None:
                    self.scheduler.wait(0.25)
                else:  # the head cannot start yet (it should not happen with every slot idle): do not spin
                    time.sleep(0.005)
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask the loop to end: the decode in flight aborts, every job held is cancelled."""
        self._closing.set()
        exclusive = self.exclusive
        if exclusive is not None:
            exclusive.cancel()
        for slot in self.slots:
            work = slot.work
            if work is not None:
                work.job.cancel()
        self.scheduler.close()  # wakes an idle wait

    def should_abort(self) -> bool:
        """Called from C during a prompt chunk: stop when shutting down or when every slot in
        the batch was cancelled (other streams must not lose their step)."""
        if self._closing.is_set():
            return True
        inflight = self._inflight
        return bool(inflight) and all(s.work is None or s.work.job.cancelled for s in inflight)

    def _shutdown(self) -> None:
        for slot in self.slots:
            if slot.work is not None:
                self._release(slot, "cancelled")
        for slot in self.slots:
            self._save(slot)
        close = getattr(self.cache, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("could not write the prompt cache at shutdown")

    # ------------------------------------------------------------ admission

    def active(self) -> list[Slot]:
        return [s for s in self.slots if s.work is not None]

    def admit(self) -> None:
        """Take queued jobs in arrival order while the head can start now."""
        while not self._closing.is_set():
            job = self.scheduler.peek()
            if job is None:
                return
            if job.work is None or self.backend is None:
                if self.scheduler.take_if(job):
                    self._run_exclusive(job)
                continue
            choice = choose_slot(self.slots, job.work.tokens)
            if choice is None or not self._room_for(choice[0], choice[1], len(job.work.tokens)):
                return  # FIFO: nobody overtakes the head
            if self.scheduler.take_if(job):
                self._start(choice[0], job.work, choice[1])

    def _run_exclusive(self, job: Job) -> None:
        self.exclusive = job
        if self._closing.is_set():  # stop() came between take and here: it could not see this job
            job.cancel()
        try:
            job.execute()
        finally:
            self.exclusive = None
            self.scheduler.done(job)

    def _used(self) -> int:
        """KV cells in use (a prefix slots share counts once)."""
        return cells(self.slots)

    def _room_for(self, slot: Slot, n_reuse: int, n_prompt: int) -> bool:
        """Whether the prompt fits once idle slots give their memory back (it is then freed)."""
        assert self.backend is not None
        need = n_prompt - n_reuse + 1
        n_ctx, keep = self.backend.n_ctx, {slot: n_reuse}
        idle = sorted((s for s in self.slots if s.work is None and s is not slot and s.cached),
                      key=lambda s: s.last_used)
        if n_ctx - cells(self.slots, idle, keep) < need:
            return False
        for k, other in enumerate(idle):
            if n_ctx - cells(self.slots, idle[:k], keep) >= need:
                break
            self._evict(other)
        return True

    def _evict(self, slot: Slot) -> None:
        """Give an idle slot's memory back (its state goes to the prompt cache first)."""
        assert self.backend is not None
        self._save(slot)
        self.backend.clear(slot.id)
        slot.reset()

    def _save(self, slot: Slot, keep: int = 0) -> None:
        """Put the slot's state into the prompt cache before its memory is overwritten or freed.

        What is saved ends just before the last token of the slot's last prompt (or at `keep`, when
        the next user of the slot keeps more): a client sends the answer back re-rendered, whose
        tokens need not be the ones sampled, but the prompt before it comes back unchanged, so the
        entry is a proper prefix of the next turn, or of the same prompt sent again; a memory that
        cannot be cut has its checkpoint exactly there.
        """
        backend, cache = self.backend, self.cache
        if cache is None or backend is None or len(slot.cached) < MIN_SAVE_TOKENS or not backend.can_save:
            return
        end = max(slot.n_prompt - 1, keep)  # a proper prefix even of the same prompt sent again
        if 0 < end < len(slot.cached):
            slot.keep(backend.truncate(slot.id, end))
            if len(slot.cached) < MIN_SAVE_TOKENS:
                return
        if slot.cached in cache:  # type: ignore[operator]  # saved before and not changed since
            return
        try:
            cache.put(list(slot.cached), backend.save(slot.id))
        except Exception:
            log.exception("could not save slot %d to the prompt cache", slot.id)

    def _start(self, slot: Slot, work: SlotRequest, n_reuse: int) -> None:
        assert self.backend is not None
        backend, prompt = self.backend, work.tokens
        if n_reuse < len(slot.cached):
            self._save(slot, keep=n_reuse)
        # truthful: fewer where the memory cannot be cut there (a checkpoint, or nothing)
        n_reuse = backend.prepare(slot.id, prompt)
        slot.keep(n_reuse)
        n_reuse = self._borrow(slot, prompt, n_reuse)
        n_reuse = self._from_cache(slot, prompt, n_reuse)
        slot.work = work
        slot.pending = list(prompt[n_reuse:])
        slot.n_cached = n_reuse
        slot.n_prompt = len(prompt)
        slot.admitted = next(self._order)
        slot.last_used = time.time()
        work.step.budget = min(work.step.budget, backend.n_ctx - len(prompt))
        work.job.emit(Started(len(prompt)))

    def _borrow(self, slot: Slot, prompt: Sequence[int], n_reuse: int) -> int:
        """Share another slot's cells for a longer prefix of `prompt` (a system prompt that subagents
        or parallel clients have in common is then read once); where the memory cannot share
        cells (recurrent, hybrid, a small sliding window) the backend says 0 and nothing changes."""
        backend = self.backend
        assert backend is not None
        donor = choose_donor(self.slots, slot, prompt, n_reuse + MIN_SHARE_TOKENS - 1)
        if donor is None:
            return n_reuse
        n = backend.share(slot.id, donor[0].id, donor[1])
        if n <= 0:  # refused: the sequence is as it was (`share` only clears it when it can share)
            return n_reuse
        slot.borrow(donor[0], n)
        return n

    def _from_cache(self, slot: Slot, prompt: Sequence[int], n_reuse: int) -> int:
        """Restore the prompt cache's longest prefix of `prompt` into `slot` when it beats the live one."""
        backend, cache = self.backend, self.cache
        if cache is None or backend is None or not backend.can_save:
            return n_reuse
        hit = cache.lookup(prompt)
        if hit is None or hit[0] <= n_reuse:
            return n_reuse
        n, state = hit
        if not backend.restore(slot.id, prompt[:n], state):
            log.warning("llama.cpp refused a prompt-cache state of %d tokens; reading the prompt again", n)
            slot.reset()
            return 0
        slot.reset(prompt[:n])
        keep = backend.prepare(slot.id, prompt) if n >= len(prompt) else n  # the last token is decoded
        slot.keep(keep)
        return keep

    # ------------------------------------------------------------ one step

    def step(self) -> None:
        """One decode over the active slots, then sampling for every row that has logits."""
        assert self.backend is not None
        active: list[Slot] = []
        for slot in self.slots:
            work = slot.work
            if work is None:
                continue
            if work.job.cancelled:
                self._release(slot, "cancelled")
            else:
                active.append(slot)
        if not active:
            return
        entries = self._plan(active)
        if not entries:
            return
        self._inflight = [e.slot for e in entries]
        tokens: list[int] = []
        pos: list[int] = []
        seq: list[int] = []
        logits: list[bool] = []
        for e in entries:  # the batch's rows, in one pass (this runs once per generated token)
            n = len(e.tokens)
            tokens.extend(e.tokens)
            pos.extend(range(e.pos, e.pos + n))
            seq.extend([e.slot.id] * n)
            logits.extend([False] * (n - 1))
            logits.append(e.logits)
        started = self.clock()
        try:
            self.backend.decode(tokens, pos, seq, logits)
        except DecodeError as exc:
            self._decode_failed(entries, exc)
            return
        finally:
            self._inflight = []
        self._observe(entries, self.clock() - started)
        row = 0
        for entry in entries:
            slot = entry.slot
            slot.extend(entry.tokens)
            del slot.pending[:len(entry.tokens)]
            row += len(entry.tokens)
            if entry.logits:
                self._sample(slot, row - 1)
            elif len(slot.pending) == 1:  # the prompt is read but its last token: a checkpoint here
                self.backend.checkpoint(slot.id)

    def _plan(self, active: list[Slot]) -> list[Entry]:
        assert self.backend is not None
        n_batch = self.backend.n_batch
        streaming = any(len(s.pending) == 1 for s in active)
        prompts = sorted((s for s in active if len(s.pending) > 1), key=lambda s: s.admitted)
        budget = self.sizer.tokens(len(prompts[0].cached)) if streaming and prompts else n_batch
        while True:
            entries = plan_step(active, n_batch, budget)
            adding = sum(len(e.tokens) for e in entries)
            if sum(len(s.cached) for s in self.slots) + adding <= self.backend.n_ctx:
                return entries  # fits even counting shared cells twice: no need to count them exactly
            over = self._used() + adding - self.backend.n_ctx
            if over <= 0:
                return entries
            idle = sorted((s for s in self.slots if s.work is None and s.cached), key=lambda s: s.last_used)
            if idle:
                self._evict(idle[0])
            elif budget > 0 and any(not e.logits for e in entries):
                budget = max(0, budget - over)  # prompts wait for room
            else:  # the context is full: the stream holding most of it ends, as a single one would
                longest = max((e.slot for e in entries), key=lambda s: len(s.cached))
                self._release(longest, "length")
                active = self.active()

    def _observe(self, entries: list[Entry], seconds: float) -> None:
        chunks = [e for e in entries if not e.logits]
        if not chunks:  # a generation step (the common case): only the one-token base is learnt
            self.sizer.observe(len(entries), 0, 0.0, seconds)
            return
        singles = len(entries) - len(chunks)
        n_prefill = sum(len(e.tokens) for e in chunks)
        depth = (sum((e.pos + len(e.tokens) / 2) * len(e.tokens) for e in chunks) / n_prefill) if n_prefill else 0.0
        self.sizer.observe(singles, n_prefill, depth, seconds)

    def _decode_failed(self, entries: list[Entry], exc: DecodeError) -> None:
        """Resynchronise each slot with what its memory kept; fail the requests unless it was an abort."""
        assert self.backend is not None
        for entry in entries:
            slot = entry.slot
            kept = self.backend.seq_pos_max(slot.id) + 1
            done = max(0, min(kept - entry.pos, len(entry.tokens)))
            slot.extend(entry.tokens[:done])
            del slot.pending[:done]
            if len(slot.cached) > kept:  # should not happen; never trust a record the memory disagrees with
                self.backend.clear(slot.id)
                slot.reset()
        if exc.code == 2 or self._closing.is_set():
            return  # aborted for cancelled slots or shutdown: the next step releases them
        for entry in entries:
            if entry.slot.work is not None:
                self._release(entry.slot, error=exc)

    def _sample(self, slot: Slot, row: int) -> None:
        assert self.backend is not None
        work = slot.work
        if work.job.cancelled:
            self._release(slot, "cancelled")
            return
        work.generating = True
        try:
            out = work.step.advance(self.backend.logits(row))
            if out:
                work.on_text(out)
        except Exception as exc:  # this request's fault (a grammar, a parser): the others go on
            self._release(slot, error=exc)
            return
        if work.step.token is None:
            self._release(slot)
        else:
            slot.pending = [work.step.token]

    def _release(self, slot: Slot, reason: str | None = None, error: Exception | None = None) -> None:
        """The slot's request ended (finished, cancelled, failed): its events end, the slot is idle."""
        work = slot.work
        slot.work = None
        slot.pending = []
        slot.last_used = time.time()
        if work is None:
            return
        if reason is not None:
            work.step.finish(reason)
        if error is None:
            try:
                work.on_end(slot.n_cached)
            except Exception as exc:
                error = exc
        work.job.complete(error)
        self.scheduler.done(work.job)
