"""`NativeModel`: owns one `llama_model *` and the vocabulary that lives inside it."""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

from ..api import model as capi
from ..api.types import llama_model_params
from ..errors import ClosedError, ModelLoadError
from ..gguf import check_gguf
from .backend import ensure_backend
from .vocab import Vocab

__all__ = ["NativeModel"]


class NativeModel:
    """A loaded GGUF model: weights, hyperparameters, metadata and vocabulary."""

    def __init__(self, path: str | os.PathLike[str], *, n_gpu_layers: int = 0, vocab_only: bool = False,
                 use_mmap: bool = True) -> None:
        self.path = check_gguf(path)  # never hand C something that is not GGUF
        ensure_backend()
        params: llama_model_params = capi.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.vocab_only = vocab_only
        if not use_mmap:
            params.load_mode = 0  # LLAMA_LOAD_MODE_NONE
        handle = capi.llama_model_load_from_file(str(self.path).encode(), params)
        if not handle:
            raise ModelLoadError(f"llama.cpp could not load {self.path} (enable verbose=True for its log)")
        self._handle: int | None = handle
        self._lock = threading.Lock()
        self.vocab = Vocab(capi.llama_model_get_vocab(handle), owner=self)

    @property
    def handle(self) -> int:
        """The raw `llama_model *`; raises `ClosedError` after `close()`."""
        if self._handle is None:
            raise ClosedError("the model has been closed")
        return self._handle

    def close(self) -> None:
        """Free the model (idempotent)."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle:
            capi.llama_model_free(handle)

    def __del__(self) -> None:  # safety net only; close() is the contract
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def n_ctx_train(self) -> int:
        return capi.llama_model_n_ctx_train(self.handle)

    @property
    def n_embd(self) -> int:
        return capi.llama_model_n_embd(self.handle)

    @property
    def n_layer(self) -> int:
        return capi.llama_model_n_layer(self.handle)

    @property
    def size(self) -> int:
        return capi.llama_model_size(self.handle)

    @property
    def n_params(self) -> int:
        return capi.llama_model_n_params(self.handle)

    @property
    def is_recurrent(self) -> bool:
        """A recurrent model (Mamba, RWKV): its memory cannot be cut at a position."""
        return capi.llama_model_is_recurrent(self.handle)

    @property
    def is_hybrid(self) -> bool:
        """Attention plus recurrent layers (Jamba, Granite-hybrid, LFM2, ...): cannot be cut either."""
        return capi.llama_model_is_hybrid(self.handle)

    @property
    def n_swa(self) -> int:
        """The sliding-window size of its SWA layers, 0 without any."""
        return capi.llama_model_n_swa(self.handle)

    @property
    def has_encoder(self) -> bool:
        return capi.llama_model_has_encoder(self.handle)

    def description(self) -> str:
        buf = ctypes.create_string_buffer(256)
        capi.llama_model_desc(self.handle, buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def meta_str(self, key: str) -> str | None:
        """A scalar metadata value as llama.cpp prints it, or None when absent."""
        size = 256
        while True:
            buf = ctypes.create_string_buffer(size)
            n = capi.llama_model_meta_val_str(self.handle, key.encode(), buf, size)
            if n < 0:
                return None
            if n < size:
                return buf.raw[:n].decode("utf-8", errors="replace")
            size = n + 1

    def chat_template(self, name: str | None = None) -> str | None:
        """The template stored in the GGUF (`tokenizer.chat_template[.name]`), or None."""
        raw = capi.llama_model_chat_template(self.handle, name.encode() if name else None)
        return raw.decode("utf-8", errors="replace") if raw else None

    @staticmethod
    def resolve(path: str | os.PathLike[str]) -> Path:
        return check_gguf(path)
