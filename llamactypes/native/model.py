"""`NativeModel`: owns one `llama_model *` and the vocabulary that lives inside it."""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

from ..api import backend as backend_capi
from ..api import model as capi
from ..api.types import llama_model_params, llama_progress_callback
from ..errors import ClosedError, InvalidRequestError, ModelLoadError
from ..gguf import check_gguf
from . import rpc
from .backend import ensure_backend
from .vocab import Vocab

__all__ = ["NativeModel"]


class NativeModel:
    """A loaded GGUF model: weights, hyperparameters, metadata and vocabulary."""

    def __init__(self, path: str | os.PathLike[str], *, n_gpu_layers: int = 0, vocab_only: bool = False,
                 use_mmap: bool = True, rpc_servers: Sequence[str] = (),
                 tensor_split: Sequence[float] | None = None,
                 progress: Callable[[float], object] | None = None) -> None:
        self.path = check_gguf(path)  # never hand C something that is not GGUF
        ensure_backend()
        self._handle: int | None = None
        self._lock = threading.Lock()
        self.rpc_servers = tuple(rpc_servers)
        params: llama_model_params = capi.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.vocab_only = vocab_only
        if not use_mmap:
            params.load_mode = 0  # LLAMA_LOAD_MODE_NONE
        if self.rpc_servers:
            devices = rpc.model_devices(self.rpc_servers)  # probes first: raises RpcEndpointError, never aborts
        else:
            # once this process registered RPC endpoints, llama.cpp's default would use them too
            devices = rpc.local_devices() if rpc.any_registered() else None
        # kept on self: C reads them during the load
        self.devices = devices or []
        self._devices = (ctypes.c_void_p * (len(self.devices) + 1))(*self.devices, None)
        if devices is not None:
            params.devices = ctypes.cast(self._devices, ctypes.c_void_p)
        self._tensor_split = _tensor_split(tensor_split, len(self.devices))
        if self._tensor_split is not None:
            params.tensor_split = self._tensor_split
        failure: list[BaseException] = []
        # the ctypes callback must outlive the C call that may invoke it: it is a local held to the end
        callback = _progress_callback(progress, failure) if progress is not None else None
        if callback is not None:
            params.progress_callback = callback
        rpc.acquire(self.rpc_servers)  # before the load: a probe must not wait behind our own connection
        try:
            handle = capi.llama_model_load_from_file(str(self.path).encode(), params)
        except BaseException:
            rpc.release(self.rpc_servers)
            raise
        del callback
        if failure:  # the callback raised (e.g. Ctrl-C while loading): loading was aborted
            if handle:
                capi.llama_model_free(handle)
            rpc.release(self.rpc_servers)
            raise failure[0]
        if not handle:
            rpc.release(self.rpc_servers)
            raise ModelLoadError(f"llama.cpp could not load {self.path} (enable verbose=True for its log)")
        self._handle = handle
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
            rpc.release(self.rpc_servers)

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


def _tensor_split(split: Sequence[float] | None, n_devices: int) -> ctypes.Array | None:
    """`tensor_split` as the float array llama.cpp reads (llama_max_devices() entries), checked first."""
    if split is None:
        return None
    values = [float(x) for x in split]
    size = backend_capi.llama_max_devices()
    if not values or len(values) > max(n_devices, 1) or len(values) > size:
        raise InvalidRequestError(f"tensor_split has {len(values)} entries for {n_devices} devices "
                                  "(one proportion per device, in the order of rpc_servers)", param="tensor_split")
    if any(not x >= 0 for x in values) or sum(values) <= 0:
        raise InvalidRequestError("tensor_split needs proportions >= 0 with a positive sum", param="tensor_split")
    return (ctypes.c_float * size)(*values)


def _progress_callback(progress: Callable[[float], object], failure: list[BaseException]) -> object:
    """llama.cpp's progress callback around `progress(fraction)`: returning False cancels the load
    (ModelLoadError); an exception (KeyboardInterrupt included) cancels it and is re-raised after
    the C call, since it cannot cross the C frames."""

    def call(fraction: float, user_data: object) -> bool:
        try:
            if progress(float(fraction)) is not False:
                return True
            failure.append(ModelLoadError("loading the model was cancelled (the progress callback returned False)"))
            return False
        except BaseException as exc:  # noqa: B036 - re-raised by the caller once C has returned
            failure.append(exc)
            return False

    return llama_progress_callback(call)
