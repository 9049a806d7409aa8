"""`SeqMemory`: what one sequence of a context's memory holds, and how to reuse it without losing a token.

A plain KV cache can be cut at any position: a new prompt that shares a prefix with the
cached tokens keeps that prefix and decodes the rest. Other memories cannot:

- recurrent (Mamba, RWKV) keep one state per sequence, the sum of every token so far:
  `llama_memory_seq_rm` refuses to remove a tail;
- hybrid (Jamba, Granite-hybrid, LFM2, Qwen3-Next, ...) pair an attention cache with such a state:
  the removal is refused as a whole, nothing is changed;
- sliding-window (Gemma 2/3) caches smaller than the context forget tokens older than the
  window: the removal "succeeds" but the positions the window needs are gone, which
  `llama_memory_seq_pos_min` shows.

For those, `checkpoint()` saves the part that cannot be cut (`llama_state_seq_get_data_ext`
with `LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY`: the recurrent state, or the sliding window) at the
current end, and `prepare()` restores the longest checkpoint that is a prefix of the new
prompt, then cuts the rest of the memory there; with none, it clears the sequence. What it
returns is what the memory really holds, checked against `llama_memory_seq_pos_max`.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..api import context as capi
from ..errors import StateError
from ..limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .context import Context

__all__ = ["SeqMemory", "MemoryKind", "Checkpoint", "memory_kind"]

log = logging.getLogger("llamactypes")

_PARTIAL = capi.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY
_WHOLE = capi.LLAMA_STATE_SEQ_FLAGS_NONE


class MemoryKind:
    """How a model's memory can be cut (strings, so they print and compare plainly)."""

    FULL = "full"            # a KV cache: cut anywhere
    SWA = "swa"              # a KV cache with sliding-window layers (cut anywhere only with a full-size window)
    RECURRENT = "recurrent"  # one state per sequence: never cut
    HYBRID = "hybrid"        # attention cache + recurrent state: never cut


def memory_kind(model: object) -> str:
    """The `MemoryKind` of a `NativeModel` (from llama_model_is_recurrent/_is_hybrid/_n_swa)."""
    if model.is_recurrent:  # type: ignore[attr-defined]
        return MemoryKind.RECURRENT
    if model.is_hybrid:  # type: ignore[attr-defined]
        return MemoryKind.HYBRID
    if model.n_swa > 0:  # type: ignore[attr-defined]
        return MemoryKind.SWA
    return MemoryKind.FULL


@dataclass(frozen=True)
class Checkpoint:
    """The partial state of a sequence after its first `len(tokens)` tokens."""

    tokens: tuple[int, ...]
    data: bytes

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


class SeqMemory:
    """The bookkeeping for one sequence (`seq_id`) of a context's memory.

    `tokens` is exactly what the memory holds for the sequence; every method keeps it
    true (a removal the memory refuses is never reported as done). Whoever decodes tokens
    into the sequence (`Context.decode` for seq 0, the engine's batch for its slots) appends
    them to `tokens`, and calls `checkpoint()` where a later prompt is likely to diverge
    (`Generation` does it before the last prompt token).
    """

    def __init__(self, ctx: Context, seq_id: int = 0, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.ctx = ctx
        self.seq_id = seq_id
        self.tokens: list[int] = []
        self.kind = memory_kind(ctx.model)
        self.n_swa = ctx.model.n_swa if self.kind == MemoryKind.SWA else 0
        self.max_checkpoints = limits.seq_checkpoints
        self.max_checkpoint_bytes = limits.seq_checkpoint_bytes
        self.checkpoints: list[Checkpoint] = []
        #: how many times prepare() fell back to a checkpoint / to an empty sequence (for tests and metrics)
        self.n_restored = 0
        self.n_cleared = 0

    @property
    def needs_checkpoints(self) -> bool:
        """Whether this memory may be unable to go back to an earlier position."""
        if self.kind in (MemoryKind.RECURRENT, MemoryKind.HYBRID):
            return True
        return self.kind == MemoryKind.SWA and not self.ctx.params.swa_full

    @property
    def checkpoint_bytes(self) -> int:
        return sum(len(c.data) for c in self.checkpoints)

    # ------------------------------------------------------------ reuse

    def prepare(self, prompt: Sequence[int]) -> int:
        """Make the memory hold the longest reusable prefix of `prompt`; returns its length.

        At least one prompt token is always left to decode (its logits are needed). The
        number returned is what the memory truly holds: the common prefix where the memory
        can be cut there, else the longest checkpoint that is a prefix, else 0.
        """
        limit = min(len(self.tokens), len(prompt) - 1)
        n = 0
        cached = self.tokens
        while n < limit and cached[n] == prompt[n]:
            n += 1
        return self.truncate(n, prompt)

    def truncate(self, n_keep: int, prompt: Sequence[int] | None = None) -> int:
        """Keep at most the first `n_keep` tokens; returns how many the memory really keeps.

        Where the memory cannot be cut at `n_keep`, a checkpoint at or before it (whose
        tokens are also a prefix of `prompt`, when given) is restored, else the sequence
        is cleared: fewer tokens are kept, never wrong ones.
        """
        n_keep = max(0, n_keep)
        if n_keep >= len(self.tokens):
            return len(self.tokens)
        if n_keep > 0 and self._remove_from(n_keep) and self._window_intact(n_keep):
            self._keep(n_keep)
            return n_keep
        checkpoint = self._best_checkpoint(n_keep, prompt)
        if checkpoint is not None and self._restore_checkpoint(checkpoint):
            self.n_restored += 1
            return len(self.tokens)
        self.clear()
        self.n_cleared += 1
        return 0

    def share_from(self, other: SeqMemory, n: int) -> int:
        """Hold `other`'s first `n` tokens in `other`'s own cells (no copy: the cells then belong to
        both sequences, as in a unified KV cache); returns how many it holds. 0, and nothing
        changed, where a memory cannot share a prefix (recurrent, hybrid, a small sliding window)."""
        n = min(n, len(other.tokens))
        if n <= 0 or self.needs_checkpoints or other.ctx is not self.ctx:
            return 0
        memory = self.ctx.memory_handle
        capi.llama_memory_seq_rm(memory, self.seq_id, -1, -1)
        capi.llama_memory_seq_cp(memory, other.seq_id, self.seq_id, 0, n)
        self.tokens = list(other.tokens[:n])
        self.checkpoints = []
        if self._pos_max() != n - 1:  # never trust a record the memory disagrees with
            log.warning("sharing %d tokens of sequence %d with %d left position %d; reading the prompt again",
                        n, other.seq_id, self.seq_id, self._pos_max())
            self.clear()
        return len(self.tokens)

    def clear(self) -> None:
        """Forget the sequence entirely (its checkpoints too)."""
        capi.llama_memory_seq_rm(self.ctx.memory_handle, self.seq_id, -1, -1)
        self.tokens = []
        self.checkpoints = []

    def _remove_from(self, n: int) -> bool:
        return bool(capi.llama_memory_seq_rm(self.ctx.memory_handle, self.seq_id, n, -1))

    def _window_intact(self, n: int) -> bool:
        """After a cut at `n`, does a sliding-window cache still hold the window the next token needs?"""
        if self.n_swa <= 0:
            return True
        pos_min = capi.llama_memory_seq_pos_min(self.ctx.memory_handle, self.seq_id)
        return 0 <= pos_min <= max(0, n - self.n_swa)

    def _keep(self, n: int) -> None:
        del self.tokens[n:]
        self.checkpoints = [c for c in self.checkpoints if c.n_tokens <= n]

    def _best_checkpoint(self, n_keep: int, prompt: Sequence[int] | None) -> Checkpoint | None:
        best = None
        for c in self.checkpoints:
            k = c.n_tokens
            if k == 0 or k > n_keep or (best is not None and k <= best.n_tokens):
                continue
            if tuple(self.tokens[:k]) != c.tokens:
                continue
            if prompt is not None and tuple(prompt[:k]) != c.tokens:
                continue
            best = c
        return best

    def _restore_checkpoint(self, checkpoint: Checkpoint) -> bool:
        k = checkpoint.n_tokens
        buf = (ctypes.c_uint8 * len(checkpoint.data)).from_buffer_copy(checkpoint.data)
        n = capi.llama_state_seq_set_data_ext(self.ctx.handle, buf, len(buf), self.seq_id, _PARTIAL)
        if n == 0:
            log.warning("llama.cpp refused a checkpoint of %d tokens for sequence %d; reading the prompt again",
                        k, self.seq_id)
            return False
        # the part that can be cut still holds everything: cut it where the checkpoint is
        if not self._remove_from(k) or self._pos_max() != k - 1:
            log.warning("restoring a checkpoint of %d tokens left the memory at position %d; reading the "
                        "prompt again", k, self._pos_max() + 1)
            return False
        self._keep(k)
        return True

    def _pos_max(self) -> int:
        return int(capi.llama_memory_seq_pos_max(self.ctx.memory_handle, self.seq_id))

    def consistent(self) -> bool:
        """Whether the memory's last position agrees with `tokens` (a cheap self-check)."""
        return self._pos_max() + 1 == len(self.tokens)

    # ------------------------------------------------------------ checkpoints

    def checkpoint(self) -> Checkpoint | None:
        """Save a checkpoint at the current end, if this memory needs them (else None).

        Kept in creation order; past `seq_checkpoints` or `seq_checkpoint_bytes`
        (limits.py) the oldest are dropped.
        """
        if not self.needs_checkpoints or not self.tokens:
            return None
        key = tuple(self.tokens)
        for c in self.checkpoints:
            if c.tokens == key:
                return c
        data = self._state(_PARTIAL)
        if len(data) > self.max_checkpoint_bytes:
            log.info("a checkpoint of %d bytes is over seq_checkpoint_bytes (%d); not kept",
                     len(data), self.max_checkpoint_bytes)
            return None
        checkpoint = Checkpoint(key, data)
        self.checkpoints.append(checkpoint)
        while (len(self.checkpoints) > self.max_checkpoints
               or self.checkpoint_bytes > self.max_checkpoint_bytes):
            self.checkpoints.pop(0)
        return checkpoint

    # ------------------------------------------------------------ whole-sequence state

    def _state(self, flags: int) -> bytes:
        handle = self.ctx.handle
        size = capi.llama_state_seq_get_size_ext(handle, self.seq_id, flags)
        buf = (ctypes.c_uint8 * max(1, size))()
        n = capi.llama_state_seq_get_data_ext(handle, buf, size, self.seq_id, flags)
        if n != size:
            raise StateError(f"llama_state_seq_get_data_ext wrote {n} bytes, expected {size}", code=n)
        return bytes(buf)[:n]

    def save(self) -> bytes:
        """The whole state of the sequence (`llama_state_seq_get_data`), to `restore()` later,
        into this context or another one on the same model file and llama.cpp build."""
        return self._state(_WHOLE)

    def restore(self, tokens: Sequence[int], data: bytes) -> None:
        """Replace the sequence with a state from `save()` that holds `tokens`.

        Raises `StateError` (and leaves the sequence empty) when llama.cpp refuses the data
        or the restored memory does not end where `tokens` says.
        """
        self.clear()
        if not tokens:
            return
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        n = capi.llama_state_seq_set_data_ext(self.ctx.handle, buf, len(buf), self.seq_id, _WHOLE)
        if n == 0:
            self.clear()
            raise StateError(f"llama.cpp refused a state of {len(data)} bytes for sequence {self.seq_id} "
                             f"(saved from another model, build or context size?)")
        if self._pos_max() != len(tokens) - 1:
            held = self._pos_max() + 1
            self.clear()
            raise StateError(f"the restored state holds {held} tokens, but {len(tokens)} were given with it")
        self.tokens = list(tokens)
