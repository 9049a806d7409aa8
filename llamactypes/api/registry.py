"""ggml-backend.h: the backend registry (devices and backends by name) and llama.h's llama_supports_rpc.

Handles are opaque pointers (`ggml_backend_reg_t`, `ggml_backend_dev_t`) passed as `c_void_p`.
The RPC backend's own entry points are not linked symbols of libllama: they are reached through
`ggml_backend_reg_get_proc_address` (see `rpc.py`), as llama.cpp's own tools do.
"""

from __future__ import annotations

import ctypes

from ._base import ctypes_function

__all__ = [
    "GGML_BACKEND_DEVICE_TYPE_CPU", "GGML_BACKEND_DEVICE_TYPE_GPU", "GGML_BACKEND_DEVICE_TYPE_IGPU",
    "GGML_BACKEND_DEVICE_TYPE_ACCEL", "GGML_BACKEND_DEVICE_TYPE_META",
    "llama_supports_rpc", "ggml_backend_reg_by_name", "ggml_backend_reg_name", "ggml_backend_reg_dev_count",
    "ggml_backend_reg_dev_get", "ggml_backend_reg_get_proc_address", "ggml_backend_register",
    "ggml_backend_dev_get", "ggml_backend_dev_name", "ggml_backend_dev_description", "ggml_backend_dev_memory",
    "ggml_backend_dev_type", "ggml_backend_dev_backend_reg",
]

# enum ggml_backend_dev_type
GGML_BACKEND_DEVICE_TYPE_CPU = 0
GGML_BACKEND_DEVICE_TYPE_GPU = 1
GGML_BACKEND_DEVICE_TYPE_IGPU = 2
GGML_BACKEND_DEVICE_TYPE_ACCEL = 3
GGML_BACKEND_DEVICE_TYPE_META = 4


# LLAMA_API bool llama_supports_rpc        (void);
@ctypes_function("llama_supports_rpc", [], ctypes.c_bool)
def llama_supports_rpc() -> bool: ...


# GGML_API ggml_backend_reg_t ggml_backend_reg_by_name(const char * name);
@ctypes_function("ggml_backend_reg_by_name", [ctypes.c_char_p], ctypes.c_void_p)
def ggml_backend_reg_by_name(name: bytes, /) -> int | None: ...


# GGML_API const char *       ggml_backend_reg_name(ggml_backend_reg_t reg);
@ctypes_function("ggml_backend_reg_name", [ctypes.c_void_p], ctypes.c_char_p)
def ggml_backend_reg_name(reg: int, /) -> bytes: ...


# GGML_API size_t             ggml_backend_reg_dev_count(ggml_backend_reg_t reg);
@ctypes_function("ggml_backend_reg_dev_count", [ctypes.c_void_p], ctypes.c_size_t)
def ggml_backend_reg_dev_count(reg: int, /) -> int: ...


# GGML_API ggml_backend_dev_t ggml_backend_reg_dev_get(ggml_backend_reg_t reg, size_t index);
@ctypes_function("ggml_backend_reg_dev_get", [ctypes.c_void_p, ctypes.c_size_t], ctypes.c_void_p)
def ggml_backend_reg_dev_get(reg: int, index: int, /) -> int | None: ...


# GGML_API void *             ggml_backend_reg_get_proc_address(ggml_backend_reg_t reg, const char * name);
@ctypes_function("ggml_backend_reg_get_proc_address", [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_void_p)
def ggml_backend_reg_get_proc_address(reg: int, name: bytes, /) -> int | None: ...


# GGML_API void ggml_backend_register(ggml_backend_reg_t reg);
@ctypes_function("ggml_backend_register", [ctypes.c_void_p], None)
def ggml_backend_register(reg: int, /) -> None: ...


# GGML_API ggml_backend_dev_t ggml_backend_dev_get(size_t index);
@ctypes_function("ggml_backend_dev_get", [ctypes.c_size_t], ctypes.c_void_p)
def ggml_backend_dev_get(index: int, /) -> int | None: ...


# GGML_API const char *                  ggml_backend_dev_name(ggml_backend_dev_t device);
@ctypes_function("ggml_backend_dev_name", [ctypes.c_void_p], ctypes.c_char_p)
def ggml_backend_dev_name(device: int, /) -> bytes: ...


# GGML_API const char *                  ggml_backend_dev_description(ggml_backend_dev_t device);
@ctypes_function("ggml_backend_dev_description", [ctypes.c_void_p], ctypes.c_char_p)
def ggml_backend_dev_description(device: int, /) -> bytes: ...


# GGML_API void ggml_backend_dev_memory(ggml_backend_dev_t device, size_t * free, size_t * total);
@ctypes_function("ggml_backend_dev_memory",
                 [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)], None)
def ggml_backend_dev_memory(device: int, free: object, total: object, /) -> None: ...


# GGML_API enum ggml_backend_dev_type    ggml_backend_dev_type(ggml_backend_dev_t device);
@ctypes_function("ggml_backend_dev_type", [ctypes.c_void_p], ctypes.c_int)
def ggml_backend_dev_type(device: int, /) -> int: ...


# GGML_API ggml_backend_reg_t            ggml_backend_dev_backend_reg(ggml_backend_dev_t device);
@ctypes_function("ggml_backend_dev_backend_reg", [ctypes.c_void_p], ctypes.c_void_p)
def ggml_backend_dev_backend_reg(device: int, /) -> int | None: ...
