"""llama.h: backend setup, system info, logging, ggml backend loading."""

from __future__ import annotations

import ctypes

from ._base import ctypes_function
from .types import ggml_log_callback

__all__ = [
    "llama_backend_init", "llama_backend_free", "llama_version", "llama_print_system_info",
    "llama_log_set", "llama_supports_gpu_offload", "llama_supports_mmap", "llama_max_devices",
    "llama_time_us", "ggml_backend_load_all_from_path", "ggml_backend_dev_count",
]


# LLAMA_API void llama_backend_init(void);
@ctypes_function("llama_backend_init", [], None)
def llama_backend_init() -> None: ...


# LLAMA_API void llama_backend_free(void);
@ctypes_function("llama_backend_free", [], None)
def llama_backend_free() -> None: ...


# LLAMA_API const char * llama_version(void);
@ctypes_function("llama_version", [], ctypes.c_char_p)
def llama_version() -> bytes: ...


# LLAMA_API const char * llama_print_system_info(void);
@ctypes_function("llama_print_system_info", [], ctypes.c_char_p)
def llama_print_system_info() -> bytes: ...


# LLAMA_API void llama_log_set(ggml_log_callback log_callback, void * user_data);
@ctypes_function("llama_log_set", [ggml_log_callback, ctypes.c_void_p], None)
def llama_log_set(log_callback, user_data, /) -> None: ...  # type: ignore[no-untyped-def]


# LLAMA_API bool llama_supports_gpu_offload(void);
@ctypes_function("llama_supports_gpu_offload", [], ctypes.c_bool)
def llama_supports_gpu_offload() -> bool: ...


# LLAMA_API bool llama_supports_mmap(void);
@ctypes_function("llama_supports_mmap", [], ctypes.c_bool)
def llama_supports_mmap() -> bool: ...


# LLAMA_API size_t llama_max_devices(void);
@ctypes_function("llama_max_devices", [], ctypes.c_size_t)
def llama_max_devices() -> int: ...


# LLAMA_API int64_t llama_time_us(void);
@ctypes_function("llama_time_us", [], ctypes.c_int64)
def llama_time_us() -> int: ...


# GGML_API void ggml_backend_load_all_from_path(const char * dir_path);   (ggml-backend.h)
@ctypes_function("ggml_backend_load_all_from_path", [ctypes.c_char_p], None)
def ggml_backend_load_all_from_path(dir_path: bytes, /) -> None: ...


# GGML_API size_t ggml_backend_dev_count(void);   (ggml-backend.h)
@ctypes_function("ggml_backend_dev_count", [], ctypes.c_size_t)
def ggml_backend_dev_count() -> int: ...
