"""The token loop: decode with llama.cpp, choose with our sampler, stream text out.

A `Generation` is an iterator of text pieces. Text is decoded incrementally
(UTF-8 split across tokens is held until complete) and stop strings are held
back while they might still match, so no partial stop string ever reaches the
caller. After the iterator ends, the object tells why (`finish_reason`) and
how many tokens were read, reused from the KV cache, and produced.
"""

from __future__ import annotations

import codecs
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterator, Protocol, Sequence

from .errors import ContextOverflowError, InvalidRequestError
from .native.context import Cancelled, Context
from .sampling import Sampler, SamplingParams

__all__ = ["GenerateOptions", "Generation", "Constraint", "ModelLock", "FINISH_REASONS"]

log = logging.getLogger("llamactypes")

FINISH_REASONS = ("stop", "length", "stop_sequence", "cancelled")


class Constraint(Protocol):
    """A per-generation grammar state the loop consults (see `sampling.constrained`)."""

    def allows(self, token: int) -> bool: ...

    def mask(self) -> Any: ...

    def accept(self, token: int) -> None: ...

    def is_dead_end(self) -> bool: ...


@dataclass(frozen=True)
class GenerateOptions:
    """Everything about one generation except the prompt and the sampler settings."""

    max_tokens: int | None = 256
    stop: Sequence[str] = ()
    ignore_eos: bool = False
    preserved_tokens: Collection[int] = ()
    sampling: SamplingParams = field(default_factory=SamplingParams)

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 0:
            raise InvalidRequestError(f"max_tokens must be >= 0, got {self.max_tokens}", param="max_tokens")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        if any(not isinstance(s, str) for s in self.stop):
            raise InvalidRequestError("stop must be a string or a list of strings", param="stop")
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))


class ModelLock:
    """The one lock of a model's context: one generation at a time, and a clear error
    (not a deadlock) when one thread opens a second generation before finishing the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.owner: int | None = None

    def acquire(self) -> None:
        if not self._lock.acquire(blocking=False):
            if self.owner == threading.get_ident():
                raise InvalidRequestError("another generation on this model is still open in this thread; "
                                          "finish or close() it first")
            self._lock.acquire()
        self.owner = threading.get_ident()

    def release(self) -> None:
        self.owner = None
        self._lock.release()

    def __enter__(self) -> ModelLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _StopMatcher:
    """Finds stop strings in streamed text, holding back what might be the start of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Add text; returns (text safe to emit, matched stop string or None)."""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out, None
        best: tuple[int, str] | None = None
        for stop in self.stops:
            i = self.pending.find(stop)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, stop)
        if best is not None:
            out = self.pending[: best[0]]
            self.pending = ""
            return out, best[1]
        hold = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.pending)), hold, -1):
                if self.pending.endswith(stop[:n]):
                    hold = n
                    break
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, None

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class Generation(Iterator[str]):
    """One running generation; iterate it for text pieces, `close()` to cancel."""

    def __init__(self, *, context: Context, prompt: Sequence[int], options: GenerateOptions,
                 pieces: Callable[[int], bytes], eog: Collection[int], lock: ModelLock,
                 constraint: Constraint | None = None) -> None:
        self.n_prompt = len(prompt)
        if self.n_prompt == 0:
            raise InvalidRequestError("the prompt is empty", param="prompt")
        if self.n_prompt >= context.n_ctx:
            raise ContextOverflowError(self.n_prompt, context.n_ctx)
        self.finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.n_cached = 0
        self.tokens: list[int] = []
        self.text = ""
        self._ctx = context
        self._prompt = list(prompt)
        self._options = options
        self._pieces = pieces
        self._eog = eog
        self._lock = lock
        self._constraint = constraint
        self._cancel = threading.Event()
        self._gen = self._run()

    # ------------------------------------------------------------ iterator protocol

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        """Stop generating (safe from another thread: the loop stops within a token)."""
        self._cancel.set()
        try:
            self._gen.close()
        except ValueError:  # running in another thread right now: it sees the flag within a token
            pass

    def cancel(self) -> None:
        """Ask the loop to stop, from any thread, without touching the iterator: the thread
        iterating sees it end within a token (or between prompt batches) with
        finish_reason "cancelled". Unlike `close()`, never races with a running `next()`."""
        self._cancel.set()

    def read(self) -> str:
        """Run to the end and return the whole text."""
        for _ in self:
            pass
        return self.text

    @property
    def n_generated(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------ the loop

    def _finish(self, reason: str) -> None:
        if self.finish_reason is None:
            self.finish_reason = reason

    def _run(self) -> Iterator[str]:
        self._lock.acquire()
        try:
            yield from self._loop()
        except GeneratorExit:
            self._finish("cancelled")
            raise
        finally:
            self._lock.release()

    def _loop(self) -> Iterator[str]:
        ctx, opts = self._ctx, self._options
        self.n_cached = ctx.reuse_prefix(self._prompt)
        try:
            # The last prompt token is always decoded on its own: its logits then come from
            # the same single-token path whether or not the rest was cached, so the same
            # prompt and seed give the same output whatever the cache held.
            ctx.decode(self._prompt[self.n_cached:-1], should_stop=self._cancel.is_set)
            # a memory that cannot be cut (recurrent, hybrid, small sliding window) keeps a
            # checkpoint here, so the next turn that shares this prompt need not re-read it
            ctx.checkpoint()
            ctx.decode(self._prompt[-1:], should_stop=self._cancel.is_set)
        except Cancelled:
            self._finish("cancelled")
            return
        room = ctx.n_ctx - len(ctx.tokens)
        budget = room if opts.max_tokens is None else min(opts.max_tokens, room)
        sampler = Sampler(opts.sampling, ctx.n_vocab, history=self._prompt)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = _StopMatcher(opts.stop)
        constraint = self._constraint
        eog = self._eog
        while True:
            if self._cancel.is_set():
                self._finish("cancelled")
                return
            if len(self.tokens) >= budget:
                self._finish("length")
                break
            logits = ctx.logits()
            if opts.ignore_eos and eog:
                logits[list(eog)] = float("-inf")
            sampler.prepare(logits)
            try:
                token = sampler.sample(logits, constraint)
            except Sampler.NoCandidate:  # type: ignore[attr-defined]
                log.warning("no token is allowed here (grammar dead end); ending the generation")
                self._finish("stop")
                break
            if token in eog:
                self._finish("stop")
                break
            sampler.accept(token)
            if constraint is not None:
                constraint.accept(token)
            self.tokens.append(token)
            text = decoder.decode(self._pieces(token))
            out, matched = stops.feed(text) if text else ("", None)
            if out:
                self.text += out
                yield out
            if matched is not None:
                self.stop_sequence = matched
                self._finish("stop_sequence")
                return
            if constraint is not None and constraint.is_dead_end():
                self._finish("stop")
                break
            if len(self.tokens) >= budget:
                self._finish("length")
                break
            ctx.decode_one(token)
        rest = stops.feed(decoder.decode(b"", final=True))[0] + stops.flush()
        if rest:
            self.text += rest
            yield rest
