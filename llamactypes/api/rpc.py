"""ggml-rpc.h: the RPC backend's protocol version and the entry points we reach through the registry.

llama.cpp's tools never link these symbols: they ask the "RPC" backend registration for them with
`ggml_backend_reg_get_proc_address(reg, name)` (common/arg.cpp's --rpc, tools/rpc/rpc-server.cpp),
which also works when backends are loaded dynamically. `PROC_TYPES` holds each one's C prototype
as ctypes types (checked against the header by tests/native/test_layouts.py); `proc_type(name)`
gives the CFUNCTYPE to cast the returned address to.
"""

from __future__ import annotations

import ctypes
from typing import Any

__all__ = ["RPC_PROTO_MAJOR_VERSION", "RPC_PROTO_MINOR_VERSION", "RPC_PROTO_PATCH_VERSION",
           "GGML_RPC_MAX_SERVERS", "RPC_CMD_HELLO", "RPC_CONN_CAPS_SIZE", "PROC_TYPES", "proc_type"]

# #define RPC_PROTO_MAJOR_VERSION    7
RPC_PROTO_MAJOR_VERSION = 7
# #define RPC_PROTO_MINOR_VERSION    0
RPC_PROTO_MINOR_VERSION = 0
# #define RPC_PROTO_PATCH_VERSION    0
RPC_PROTO_PATCH_VERSION = 0
# #define GGML_RPC_MAX_SERVERS       16
GGML_RPC_MAX_SERVERS = 16

# From ggml/src/ggml-rpc/ (not the public header, but the wire format the probe speaks):
# enum rpc_cmd { ..., RPC_CMD_HELLO = 14 (static_assert'ed "must be always 14"), ... }
RPC_CMD_HELLO = 14
# static constexpr size_t RPC_CONN_CAPS_SIZE = 24;   (transport.h)
RPC_CONN_CAPS_SIZE = 24

#: name -> (argtypes, restype), each under its header line.
PROC_TYPES: dict[str, tuple[list[Any], Any]] = {
    # GGML_BACKEND_API ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint);
    "ggml_backend_rpc_add_server": ([ctypes.c_char_p], ctypes.c_void_p),
    # GGML_BACKEND_API void ggml_backend_rpc_start_server(const char * endpoint, const char * cache_dir,
    #                                     size_t n_threads, size_t n_devices, ggml_backend_dev_t * devices);
    "ggml_backend_rpc_start_server": (
        [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)],
        None),
}


def proc_type(name: str) -> Any:
    """The CFUNCTYPE for a proc address returned by the RPC registration."""
    argtypes, restype = PROC_TYPES[name]
    return ctypes.CFUNCTYPE(restype, *argtypes)
