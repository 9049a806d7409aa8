"""`BatchDecoder`: the one place that fills a `llama_batch` with tokens of many sequences,
runs `llama_decode` and hands out each requested row of logits as a numpy view.

The engine's scheduler (pure Python, `engine/slots.py`) decides which tokens of
which sequence go into a step; this module only writes them into C memory and
checks the result. It also owns the context's abort callback: a prompt chunk in
flight stops within one ubatch when `should_abort()` turns true (a hang-up of
every sequence in the batch, or shutdown). The callback is installed only for
batches that carry a prompt chunk: ggml calls it once per graph node, which a
one-token-per-slot generation step should not pay for.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Callable, Sequence

import numpy as np

from ..api import context as capi
from ..api.types import ggml_abort_callback
from ..errors import DecodeError, NativeError, StateError
from .context import Context
from .memory import SeqMemory

__all__ = ["BatchDecoder", "Aborted", "ABORT_MIN_TOKENS"]

#: batches with at least this many tokens get the abort callback (see the module docstring)
ABORT_MIN_TOKENS = 32

log = logging.getLogger("llamactypes")

_DECODE_CODES = {1: "no KV slot for the batch", 2: "aborted", -1: "invalid batch"}


class Aborted(DecodeError):
    """`llama_decode` stopped early because `should_abort()` said so (code 2)."""


class BatchDecoder:
    """Decodes one batch per call for the sequences of a multi-sequence `Context`.

    The context is borrowed: its owner closes it after this decoder is closed.
    """

    def __init__(self, context: Context, should_abort: Callable[[], bool] | None = None) -> None:
        self.context = context
        self.n_ctx = context.n_ctx
        self.n_batch = context.n_batch
        self.n_vocab = context.n_vocab
        self.n_seq_max = int(capi.llama_n_seq_max(context.handle))
        self._handle = context.handle
        self._memory = capi.llama_get_memory(self._handle)
        self._batch = capi.llama_batch_init(self.n_batch, 0, 1)
        n = self.n_batch
        b = self._batch
        self._token = np.ctypeslib.as_array(b.token, shape=(n,))
        self._pos = np.ctypeslib.as_array(b.pos, shape=(n,))
        self._n_seq = np.ctypeslib.as_array(b.n_seq_id, shape=(n,))
        self._want = np.ctypeslib.as_array(b.logits, shape=(n,))
        self._n_seq[:] = 1
        self._seq_ptrs = [b.seq_id[i] for i in range(n)]
        #: what each sequence's memory holds, kept true by `decode` and the methods below
        self.memories = [SeqMemory(context, i) for i in range(self.n_seq_max)]
        self._should_abort = should_abort
        # kept alive as long as C may call it; exceptions inside count as "abort"
        self._abort_cb = ggml_abort_callback(self._abort_check)
        self._no_cb = ggml_abort_callback()  # NULL: no callback
        self._closed = False

    def _abort_check(self, _data: object) -> bool:
        try:
            return bool(self._should_abort is not None and self._should_abort())
        except Exception:
            return True

    def close(self) -> None:
        """Free the batch (idempotent); the context stays with its owner."""
        if not self._closed:
            self._closed = True
            if self.context._handle is not None:
                capi.llama_set_abort_callback(self._handle, self._no_cb, None)
            capi.llama_batch_free(self._batch)

    # ------------------------------------------------------------ decoding

    def decode(self, tokens: Sequence[int], pos: Sequence[int], seq: Sequence[int], logits: Sequence[bool]) -> None:
        """Decode one batch: token `i` at position `pos[i]` of sequence `seq[i]`, its logits kept
        when `logits[i]`. Raises `Aborted` (code 2) or `DecodeError` (carrying the code) on failure;
        the memory may then hold part of the batch: ask `seq_pos_max` what each sequence kept."""
        if self._closed:
            raise NativeError("the batch decoder has been closed")
        n = len(tokens)
        if not 0 < n <= self.n_batch:
            raise DecodeError(f"a batch holds 1..{self.n_batch} tokens, got {n}", code=-1)
        if n == 1:  # a generation step: scalar stores cost a fraction of slice assignments
            self._token[0] = tokens[0]
            self._pos[0] = pos[0]
            self._want[0] = logits[0]
            self._seq_ptrs[0][0] = seq[0]
        else:
            self._token[:n] = tokens
            self._pos[:n] = pos
            self._want[:n] = logits
            ptrs = self._seq_ptrs
            for i, s in enumerate(seq):
                ptrs[i][0] = s
        self._batch.n_tokens = n
        abortable = n >= ABORT_MIN_TOKENS and self._should_abort is not None
        if abortable:
            capi.llama_set_abort_callback(self._handle, self._abort_cb, None)
        try:
            code = capi.llama_decode(self._handle, self._batch)
        finally:
            if abortable:
                capi.llama_set_abort_callback(self._handle, self._no_cb, None)
        if code != 0:
            self._resync(tokens, seq)
            if code == 2:
                raise Aborted("llama_decode was aborted", code=2)
            raise DecodeError(f"llama_decode failed with code {code} ({_DECODE_CODES.get(code, 'fatal error')})",
                              code=code)
        memories = self.memories
        for t, s in zip(tokens, seq):
            memories[s].tokens.append(int(t))

    def _resync(self, tokens: Sequence[int], seq: Sequence[int]) -> None:
        """After a failed decode the memory may hold part of the batch: record what it holds."""
        for s in set(seq):
            memory = self.memories[s]
            mine = [int(t) for t, q in zip(tokens, seq) if q == s]
            kept = self.seq_pos_max(s) + 1
            had = len(memory.tokens)
            if had <= kept <= had + len(mine):
                memory.tokens.extend(mine[:kept - had])
            else:  # never trust a record the memory disagrees with
                memory.clear()

    def logits(self, row: int) -> np.ndarray:
        """The logits of batch row `row` of the last decode, as a writable numpy view (no copy)."""
        ptr = capi.llama_get_logits_ith(self._handle, row)
        if not ptr:
            raise NativeError(f"no logits for batch row {row} (was it requested?)")
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    # ------------------------------------------------------------ per-sequence memory

    def prepare(self, seq: int, prompt: Sequence[int]) -> int:
        """Make `seq` hold the longest reusable prefix of `prompt` (at most all but its last token);
        returns its length, truthfully: where the memory cannot be cut (recurrent, hybrid, a small
        sliding window) a checkpoint is restored or the sequence cleared (`SeqMemory.prepare`)."""
        return self.memories[seq].prepare(prompt)

    def checkpoint(self, seq: int) -> None:
        """Keep a checkpoint of `seq` at its current end when its memory cannot be cut (else nothing)."""
        self.memories[seq].checkpoint()

    def truncate(self, seq: int, n_keep: int) -> int:
        """Keep at most the first `n_keep` tokens of `seq`; returns how many it really keeps
        (a checkpoint at or before it, or none, where the memory cannot be cut there)."""
        return self.memories[seq].truncate(n_keep)

    def clear(self, seq: int) -> None:
        """Forget everything `seq` holds (always possible)."""
        self.memories[seq].clear()

    def share(self, dst: int, src: int, n: int) -> int:
        """Make `dst` hold the first `n` tokens of `src` in `src`'s cells (shared, not copied); returns
        how many it holds, 0 (and `dst` unchanged) where the memory cannot share (`SeqMemory.share_from`)."""
        return self.memories[dst].share_from(self.memories[src], n)

    def seq_pos_max(self, seq: int) -> int:
        """The last position `seq` holds, -1 when empty."""
        return int(capi.llama_memory_seq_pos_max(self._memory, seq))

    # ------------------------------------------------------------ per-sequence state (the prompt cache)

    can_save = True

    def save(self, seq: int) -> bytes:
        """The whole state of `seq` (KV cells or recurrent state) as bytes."""
        return self.memories[seq].save()

    def restore(self, seq: int, tokens: Sequence[int], data: bytes) -> bool:
        """Load a state saved by `save` that holds `tokens` into `seq`; False (and `seq` empty)
        when llama.cpp refuses it."""
        try:
            self.memories[seq].restore(tokens, data)
        except StateError as exc:
            log.warning("%s", exc)
            return False
        return True
