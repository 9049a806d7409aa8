"""`Context`: owns one `llama_context *`, its batch, and what its KV cache holds."""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..api import context as capi
from ..api import model as mapi
from ..api.types import (
    LLAMA_FLASH_ATTN_TYPE_AUTO, LLAMA_FLASH_ATTN_TYPE_DISABLED, LLAMA_FLASH_ATTN_TYPE_ENABLED,
    LLAMA_POOLING_TYPE_UNSPECIFIED, llama_batch, llama_context_params,
)
from ..errors import ClosedError, ContextOverflowError, DecodeError, NativeError
from .backend import default_threads
from .memory import SeqMemory
from .model import NativeModel

__all__ = ["Context", "ContextParams", "Cancelled"]


class Cancelled(Exception):
    """Raised inside a decode loop when its `should_stop` callback says so."""


@dataclass(frozen=True)
class ContextParams:
    """What a context is created with. `None` means llama.cpp's default."""

    n_ctx: int = 4096
    n_batch: int = 512
    n_ubatch: int | None = None
    n_threads: int | None = None
    n_threads_batch: int | None = None
    embeddings: bool = False
    pooling: int = LLAMA_POOLING_TYPE_UNSPECIFIED
    flash_attn: bool | None = None
    n_seq_max: int = 1
    kv_unified: bool = False  # one KV buffer shared by all sequences (any one may fill it)
    swa_full: bool = True  # a full-size sliding-window cache; False saves memory, reuse then needs checkpoints
    kv_unified: bool = False  # one KV buffer for all sequences (states then move between any contexts)


class Context:
    """A llama.cpp context on one model, single sequence (seq 0) unless told otherwise.

    It remembers which tokens its KV cache holds for sequence 0 (`tokens`, kept by
    `self.seq0`, a `SeqMemory`), which is what lets a new prompt that extends the
    previous one decode only its suffix, whatever kind of memory the model has.
    """

    def __init__(self, model: NativeModel, params: ContextParams = ContextParams()) -> None:
        self.model = model
        cp: llama_context_params = mapi.llama_context_default_params()
        cp.n_ctx = params.n_ctx
        cp.n_batch = params.n_batch
        cp.n_ubatch = params.n_ubatch or min(params.n_batch, cp.n_ubatch or params.n_batch)
        threads = params.n_threads or default_threads()
        cp.n_threads = threads
        cp.n_threads_batch = params.n_threads_batch or threads
        cp.embeddings = params.embeddings
        cp.pooling_type = params.pooling
        cp.n_seq_max = params.n_seq_max
        cp.kv_unified = params.kv_unified
        cp.swa_full = params.swa_full
        cp.kv_unified = params.kv_unified
        cp.flash_attn_type = {None: LLAMA_FLASH_ATTN_TYPE_AUTO, True: LLAMA_FLASH_ATTN_TYPE_ENABLED,
                              False: LLAMA_FLASH_ATTN_TYPE_DISABLED}[params.flash_attn]
        handle = mapi.llama_init_from_model(model.handle, cp)
        if not handle:
            raise NativeError(f"llama.cpp could not create a context of {params.n_ctx} tokens "
                              f"(out of memory, or a parameter the model does not support)")
        self._handle: int | None = handle
        self._lock = threading.Lock()
        self.params = params
        self.n_ctx: int = capi.llama_n_ctx(handle)
        self.n_batch: int = capi.llama_n_batch(handle)
        self.n_vocab: int = model.vocab.n_tokens
        self.pooling: int = capi.llama_pooling_type(handle)
        self._memory = capi.llama_get_memory(handle)
        self.seq0 = SeqMemory(self, 0)
        self._batch = capi.llama_batch_init(self.n_batch, 0, params.n_seq_max)
        self._batch_views()

    def _batch_views(self) -> None:
        n = self.n_batch
        b = self._batch
        self._b_token = np.ctypeslib.as_array(b.token, shape=(n,))
        self._b_pos = np.ctypeslib.as_array(b.pos, shape=(n,))
        self._b_nseq = np.ctypeslib.as_array(b.n_seq_id, shape=(n,))
        self._b_logits = np.ctypeslib.as_array(b.logits, shape=(n,))
        self._b_nseq[:] = 1
        for i in range(n):
            b.seq_id[i][0] = 0

    @property
    def handle(self) -> int:
        if self._handle is None:
            raise ClosedError("the context has been closed")
        return self._handle

    def close(self) -> None:
        """Free the context and its batch (idempotent)."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle:
            capi.llama_batch_free(self._batch)
            capi.llama_free(handle)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------ KV cache

    @property
    def tokens(self) -> list[int]:
        """The tokens the memory holds for sequence 0."""
        return self.seq0.tokens

    @tokens.setter
    def tokens(self, value: list[int]) -> None:
        self.seq0.tokens = value

    def clear(self) -> None:
        """Forget everything in the memory (every sequence)."""
        capi.llama_memory_clear(self.memory_handle, True)
        self.seq0.clear()

    @property
    def memory_handle(self) -> int:
        """The context's `llama_memory_t`; raises `ClosedError` after `close()`."""
        self.handle
        return self._memory

    def truncate(self, n_keep: int) -> int:
        """Keep at most the first `n_keep` tokens of sequence 0; returns how many really stay
        (fewer where the memory cannot be cut there: see `SeqMemory.truncate`)."""
        return self.seq0.truncate(n_keep)

    def reuse_prefix(self, prompt: Sequence[int]) -> int:
        """Make sequence 0 hold the longest reusable prefix of `prompt`; returns how many tokens
        stay, truthfully (`SeqMemory.prepare`). At least one prompt token is always left to decode."""
        return self.seq0.prepare(prompt)

    def checkpoint(self) -> None:
        """Checkpoint sequence 0 at its current end when its memory cannot be cut (else nothing)."""
        self.seq0.checkpoint()

    # ------------------------------------------------------------ decoding

    def decode(self, tokens: Sequence[int], *, should_stop: Callable[[], bool] | None = None,
               all_logits: bool = False) -> None:
        """Append `tokens` to sequence 0; logits are kept for the last one (or all).

        Feeds at most n_batch tokens per llama_decode call; `should_stop` is checked
        between calls so a long prompt can be abandoned.
        """
        if len(self.tokens) + len(tokens) > self.n_ctx:
            raise ContextOverflowError(len(self.tokens) + len(tokens), self.n_ctx)
        handle = self.handle
        start = 0
        while start < len(tokens):
            if should_stop is not None and should_stop():
                raise Cancelled()
            chunk = tokens[start:start + self.n_batch]
            n = len(chunk)
            pos0 = len(self.tokens)
            self._b_token[:n] = chunk
            self._b_pos[:n] = np.arange(pos0, pos0 + n, dtype=np.int32)
            self._b_logits[:n] = 1 if all_logits else 0
            if not all_logits and start + n == len(tokens):
                self._b_logits[n - 1] = 1
            self._batch.n_tokens = n
            code = capi.llama_decode(handle, self._batch)
            if code != 0:
                if code < 0 or code == 2:
                    # memory may hold part of the batch: resynchronise our record with it
                    kept = capi.llama_memory_seq_pos_max(self._memory, 0) + 1
                    self.tokens = self.tokens[:kept] + list(chunk[:max(0, kept - pos0)])
                    self.truncate(pos0)
                raise DecodeError(f"llama_decode failed with code {code} "
                                  f"({ {1: 'no KV slot for the batch', 2: 'aborted', -1: 'invalid batch'}.get(code, 'fatal error')})",
                                  code=code)
            self.tokens.extend(chunk)
            start += n

    def decode_one(self, token: int) -> None:
        """Append one token (the generation step), with its logits."""
        if len(self.tokens) + 1 > self.n_ctx:
            raise ContextOverflowError(len(self.tokens) + 1, self.n_ctx)
        self._b_token[0] = token
        self._b_pos[0] = len(self.tokens)
        self._b_logits[0] = 1
        self._batch.n_tokens = 1
        code = capi.llama_decode(self.handle, self._batch)
        if code != 0:
            raise DecodeError(f"llama_decode failed with code {code}", code=code)
        self.tokens.append(token)

    def logits(self, i: int = -1) -> np.ndarray:
        """The logits of output `i` of the last decode, as a writable numpy view (no copy)."""
        ptr = capi.llama_get_logits_ith(self.handle, i)
        if not ptr:
            raise NativeError(f"no logits for output {i} (was it requested in the batch?)")
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def embedding_seq(self, seq_id: int = 0) -> np.ndarray | None:
        """The pooled embedding of a sequence (a copy), or None without pooling."""
        ptr = capi.llama_get_embeddings_seq(self.handle, seq_id)
        if not ptr:
            return None
        n = self.model.n_embd
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n,)).copy()

    def embedding_ith(self, i: int) -> np.ndarray:
        """The embedding of output `i` of the last decode (a copy)."""
        ptr = capi.llama_get_embeddings_ith(self.handle, i)
        if not ptr:
            raise NativeError(f"no embedding for output {i}")
        n = self.model.n_embd
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n,)).copy()

    def set_threads(self, n_threads: int, n_threads_batch: int | None = None) -> None:
        capi.llama_set_n_threads(self.handle, n_threads, n_threads_batch or n_threads)
