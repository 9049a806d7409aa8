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

__all__ = ["GenerateOptions", "Generation", "TokenStep", "Constraint", "ModelLock", "FINISH_REASONS"]

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


class TokenStep:
    """One sequence's choice of tokens after its prompt: sampler (seed, penalties), grammar
    constraint, stop strings and incremental UTF-8, with no context of its own.

    The single-sequence loop (`Generation`) and the engine's batched slots both drive it:
    give it the logits row that follows the last decoded token (`advance`), decode the token it
    chose (`token`) unless it `finished`. Owning nothing native, it is cheap and per request.
    """

    def __init__(self, *, prompt: Sequence[int], options: GenerateOptions, n_vocab: int,
                 pieces: Callable[[int], bytes], eog: Collection[int], budget: int,
                 constraint: Constraint | None = None) -> None:
        self.options = options
        self.budget = budget if options.max_tokens is None else min(options.max_tokens, budget)
        self.finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.tokens: list[int] = []
        self.text = ""
        self.token: int | None = None
        self._pieces = pieces
        self._eog = eog
        self._constraint = constraint
        self._sampler = Sampler(options.sampling, n_vocab, history=list(prompt))
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = _StopMatcher(options.stop)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def finish(self, reason: str) -> None:
        if self.finish_reason is None:
            self.finish_reason = reason

    def advance(self, logits: Any) -> str:
        """Choose the next token from `logits` (edited in place); returns the text now safe
        to emit. Afterwards either `finished` is set or `token` is the token to decode next."""
        self.token = None
        if self.finished:
            return ""
        if len(self.tokens) >= self.budget:
            return self._end("length")
        if self.options.ignore_eos and self._eog:
            logits[list(self._eog)] = float("-inf")
        sampler, constraint = self._sampler, self._constraint
        sampler.prepare(logits)
        try:
            token = sampler.sample(logits, constraint)
        except Sampler.NoCandidate:  # type: ignore[attr-defined]
            log.warning("no token is allowed here (grammar dead end); ending the generation")
            return self._end("stop")
        if token in self._eog:
            return self._end("stop")
        sampler.accept(token)
        if constraint is not None:
            constraint.accept(token)
        self.tokens.append(token)
        text = self._decoder.decode(self._pieces(token))
        out, matched = self._stops.feed(text) if text else ("", None)
        self.text += out
        if matched is not None:
            self.stop_sequence = matched
            self.finish("stop_sequence")
            return out
        if constraint is not None and constraint.is_dead_end():
            return out + self._end("stop")
        if len(self.tokens) >= self.budget:
            return out + self._end("length")
        self.token = token
        return out

    def _end(self, reason: str) -> str:
        """Finish with `reason` and flush what was held back (a partial stop string, UTF-8)."""
        self.finish(reason)
        rest = self._stops.feed(self._decoder.decode(b"", final=True))[0] + self._stops.flush()
        self.text += rest
        return rest


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
        self.n_cached = 0
        self._ctx = context
        self._prompt = list(prompt)
        self._lock = lock
        self._step = TokenStep(prompt=self._prompt, options=options, n_vocab=context.n_vocab, pieces=pieces,
                               eog=eog, budget=context.n_ctx, constraint=constraint)
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
    def finish_reason(self) -> str | None:
        return self._step.finish_reason

    @property
    def stop_sequence(self) -> str | None:
        return self._step.stop_sequence

    @property
    def tokens(self) -> list[int]:
        return self._step.tokens

    @property
    def text(self) -> str:
        return self._step.text

    @property
    def n_generated(self) -> int:
        return len(self._step.tokens)

    # ------------------------------------------------------------ the loop

    def _run(self) -> Iterator[str]:
        self._lock.acquire()
        try:
            yield from self._loop()
        except GeneratorExit:
            self._step.finish("cancelled")
            raise
        finally:
            self._lock.release()

    def _loop(self) -> Iterator[str]:
        ctx, step = self._ctx, self._step
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
            step.finish("cancelled")
            return
        step.budget = min(step.budget, ctx.n_ctx - len(ctx.tokens))
        while True:
            if self._cancel.is_set():
                step.finish("cancelled")
                return
            out = step.advance(ctx.logits())
            if out:
                yield out
            if step.token is None:
                return
            ctx.decode_one(step.token)
