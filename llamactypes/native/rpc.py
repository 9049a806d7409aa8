"""llama.cpp's RPC backend from Python: probe endpoints, register them, list their devices, run a worker.

A main host registers each worker ("host:port") with the RPC backend, the way llama.cpp's own
`--rpc` does at b11434 (`ggml_backend_rpc_add_server` through the registry, then
`ggml_backend_register`), and loads a model with those devices. llama.cpp aborts the whole
process when an endpoint is unreachable or speaks another protocol version, and waits forever
on a port that accepts but never answers; so every endpoint is first probed here, over a plain
socket with a timeout: connect, send the protocol's HELLO, check the version in the answer.
Anything wrong becomes an `RpcEndpointError` naming the endpoint, and C never sees it.

A worker serves one main host connection at a time. A model in this process keeps its
connection open while it lives, so an endpoint already in use by a live model is not probed
again (the probe would wait behind our own connection); `acquire`/`release` count those uses.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading
from collections import Counter
from typing import Sequence

from ..api import registry as capi
from ..api.backend import ggml_backend_dev_count
from ..api.rpc import (
    RPC_CMD_HELLO, RPC_CONN_CAPS_SIZE, RPC_PROTO_MAJOR_VERSION, RPC_PROTO_MINOR_VERSION, RPC_PROTO_PATCH_VERSION,
    proc_type,
)
from ..errors import RpcEndpointError, RpcUnavailableError
from ..limits import DEFAULT_LIMITS, Limits, limit_message
from .backend import ensure_backend

__all__ = ["parse_endpoint", "probe", "rpc_registration", "model_devices", "local_devices", "acquire",
           "release", "worker_devices", "start_server", "device_memory", "device_name", "LIMITS"]

#: The bounds this module applies (tests may replace it with a shorter probe timeout).
LIMITS: Limits = DEFAULT_LIMITS

_PROTOCOL = f"{RPC_PROTO_MAJOR_VERSION}.{RPC_PROTO_MINOR_VERSION}.{RPC_PROTO_PATCH_VERSION}"
_HELLO_RSP_SIZE = 4 + RPC_CONN_CAPS_SIZE  # major, minor, patch, padding, conn_caps
_HUNG_UP = (f"closed the connection during the RPC handshake: not an RPC worker of protocol {_PROTOCOL} "
            "(another llama.cpp build? every host must run the same pinned build)")

_lock = threading.Lock()
_registered: dict[str, int] = {}  # endpoint -> its ggml_backend_reg_t (llama.cpp keeps one per endpoint forever)
_in_use: Counter[str] = Counter()  # endpoint -> live models in this process holding a connection to it


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """`"host:port"` -> (host, port), as llama.cpp splits it (at the last colon)."""
    if not isinstance(endpoint, str) or ":" not in endpoint:
        raise RpcEndpointError(str(endpoint), "expected 'host:port', e.g. '192.168.1.20:50052'")
    host, _, port_text = endpoint.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RpcEndpointError(endpoint, "expected 'host:port' with a port from 1 to 65535")
    return host, int(port_text)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe(endpoint: str, timeout: float | None = None) -> tuple[int, int, int]:
    """Connect to an RPC worker, do the protocol's HELLO, and return its version (major, minor, patch).

    Raises `RpcEndpointError` (naming the endpoint and what to do) instead of letting llama.cpp
    abort or hang. The connection is closed again, so the worker goes back to accepting.
    """
    host, port = parse_endpoint(endpoint)
    timeout = LIMITS.rpc_probe_timeout_s if timeout is None else timeout
    hint = f"limit rpc_probe_timeout_s={timeout:g} s"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise RpcEndpointError(endpoint, f"cannot resolve host {host!r}: {exc.strerror or exc}") from None
    except ConnectionRefusedError:
        raise RpcEndpointError(endpoint, "connection refused: no RPC worker listens there (start one with "
                                         f"`python -m llamactypes.rpc_worker --port {port}`)") from None
    except (socket.timeout, TimeoutError):
        raise RpcEndpointError(endpoint, f"no answer to the connection within {timeout:g} s ({hint})") from None
    except OSError as exc:
        raise RpcEndpointError(endpoint, f"cannot connect: {exc.strerror or exc}") from None
    with sock:
        try:
            # | rpc_cmd (1 byte) | request_size (8 bytes) | rpc_msg_hello_req (conn_caps, all zero: plain TCP) |
            sock.sendall(bytes([RPC_CMD_HELLO]) + struct.pack("<Q", RPC_CONN_CAPS_SIZE) + bytes(RPC_CONN_CAPS_SIZE))
            head = _recv_exact(sock, 8)
            if len(head) < 8:
                raise RpcEndpointError(endpoint, _HUNG_UP)
            (size,) = struct.unpack("<Q", head)
            if size != _HELLO_RSP_SIZE:
                raise RpcEndpointError(endpoint, f"answered the RPC handshake with {size} bytes, protocol "
                                                 f"{_PROTOCOL} sends {_HELLO_RSP_SIZE}: another protocol version "
                                                 "(every host must run the same pinned llama.cpp build)")
            body = _recv_exact(sock, size)
        except (socket.timeout, TimeoutError):
            raise RpcEndpointError(endpoint, f"accepted the connection but did not answer the RPC handshake within "
                                             f"{timeout:g} s: not an RPC worker, or a worker busy serving another "
                                             f"main host (a worker serves one at a time) ({hint})") from None
        except RpcEndpointError:  # ours (a ConnectionError too): as raised
            raise
        except ConnectionError:  # reset or broken pipe: it hung up on our HELLO
            raise RpcEndpointError(endpoint, _HUNG_UP) from None
        except OSError as exc:
            raise RpcEndpointError(endpoint, f"the RPC handshake failed: {exc.strerror or exc}") from None
    if len(body) < 3:
        raise RpcEndpointError(endpoint, "closed the connection in the middle of the RPC handshake")
    major, minor, patch = body[0], body[1], body[2]
    if major != RPC_PROTO_MAJOR_VERSION or minor > RPC_PROTO_MINOR_VERSION:
        raise RpcEndpointError(endpoint, f"speaks RPC protocol {major}.{minor}.{patch}, this build speaks "
                                         f"{_PROTOCOL}: run the same pinned llama.cpp build on every host")
    return major, minor, patch


def rpc_registration() -> int:
    """The RPC backend's `ggml_backend_reg_t`; raises `RpcUnavailableError` for a build without it."""
    ensure_backend()
    reg = capi.ggml_backend_reg_by_name(b"RPC") if capi.llama_supports_rpc() else None
    if not reg:
        raise RpcUnavailableError("this llama.cpp build has no RPC backend: rebuild it with "
                                  "`python build_scripts/fetch_lib.py --rpc` (on every host)")
    return reg


def _proc(name: str) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    address = capi.ggml_backend_reg_get_proc_address(rpc_registration(), name.encode())
    if not address:
        raise RpcUnavailableError(f"the RPC backend of this build does not offer {name}")
    return proc_type(name)(address)


def _devices_of(reg: int) -> list[int]:
    return [capi.ggml_backend_reg_dev_get(reg, i) for i in range(capi.ggml_backend_reg_dev_count(reg))]


def model_devices(endpoints: Sequence[str], timeout: float | None = None) -> list[int]:
    """The devices a model split across `endpoints` uses: theirs (in order), then this machine's GPUs.

    Probes every endpoint not already in use by a live model of this process, then registers the
    new ones with llama.cpp. The list goes into `llama_model_params.devices`, so a model uses exactly
    the endpoints it was given, whatever else this process registered before.
    """
    if not endpoints:
        raise RpcEndpointError("", "rpc_servers is empty: give at least one 'host:port'")
    if len(endpoints) > LIMITS.rpc_max_servers:
        raise RpcEndpointError(",".join(endpoints), limit_message(
            "the number of RPC endpoints", len(endpoints), LIMITS.rpc_max_servers,
            "llama.cpp's GGML_RPC_MAX_SERVERS; limit rpc_max_servers"))
    if len(set(endpoints)) != len(endpoints):
        raise RpcEndpointError(",".join(endpoints), "an endpoint is listed twice")
    rpc_registration()
    with _lock:
        for endpoint in endpoints:
            if not _in_use[endpoint]:
                probe(endpoint, timeout)
        devices: list[int] = []
        for endpoint in endpoints:
            reg = _registered.get(endpoint)
            if reg is None:
                reg = _proc("ggml_backend_rpc_add_server")(endpoint.encode())
                if not reg:
                    raise RpcEndpointError(endpoint, "the worker reports no devices")
                capi.ggml_backend_register(reg)
                _registered[endpoint] = reg
            devices += _devices_of(reg)
    return devices + local_devices()


def local_devices() -> list[int]:
    """This machine's GPUs as llama.cpp picks them by default (discrete GPUs, else integrated ones).

    Once RPC endpoints are registered, llama.cpp's default device choice would include every one
    of them; a model that names its devices explicitly with this list stays local.
    """
    ensure_backend()
    gpus, igpus = [], []
    for i in range(ggml_backend_dev_count()):
        dev = capi.ggml_backend_dev_get(i)
        kind = capi.ggml_backend_dev_type(dev)
        if kind == capi.GGML_BACKEND_DEVICE_TYPE_GPU:
            if capi.ggml_backend_reg_name(capi.ggml_backend_dev_backend_reg(dev)) != b"RPC":
                gpus.append(dev)
        elif kind == capi.GGML_BACKEND_DEVICE_TYPE_IGPU:
            igpus.append(dev)
    return gpus or igpus


def any_registered() -> bool:
    """Whether this process registered any RPC endpoint (then plain models list their devices)."""
    return bool(_registered)


def acquire(endpoints: Sequence[str]) -> None:
    """A model now holds connections to these endpoints (do not probe them while it lives)."""
    with _lock:
        _in_use.update(endpoints)


def release(endpoints: Sequence[str]) -> None:
    """A model holding these endpoints was freed."""
    with _lock:
        _in_use.subtract(endpoints)
        for endpoint in endpoints:
            if _in_use[endpoint] <= 0:
                del _in_use[endpoint]


def device_name(dev: int) -> str:
    return f"{capi.ggml_backend_dev_name(dev).decode()} ({capi.ggml_backend_dev_description(dev).decode()})"


def device_memory(dev: int) -> tuple[int, int]:
    """(free, total) bytes of a device; for an RPC device, as its worker reports them."""
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    capi.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
    return free.value, total.value


def worker_devices() -> list[int]:
    """The devices a worker serves, chosen like llama.cpp's rpc-server: every GPU/iGPU, else the CPU."""
    ensure_backend()
    found, cpu = [], None
    for i in range(ggml_backend_dev_count()):
        dev = capi.ggml_backend_dev_get(i)
        kind = capi.ggml_backend_dev_type(dev)
        if kind == capi.GGML_BACKEND_DEVICE_TYPE_CPU:
            cpu = cpu or dev
        elif kind not in (capi.GGML_BACKEND_DEVICE_TYPE_ACCEL, capi.GGML_BACKEND_DEVICE_TYPE_META):
            if capi.ggml_backend_reg_name(capi.ggml_backend_dev_backend_reg(dev)) != b"RPC":
                found.append(dev)
    if not found and cpu:
        found.append(cpu)
    return found


def start_server(endpoint: str, cache_dir: str | None, n_threads: int, devices: Sequence[int]) -> None:
    """Run llama.cpp's RPC server on `endpoint` (blocks for as long as it serves; returns when it cannot
    listen). The GIL is released while it runs."""
    parse_endpoint(endpoint)
    start = _proc("ggml_backend_rpc_start_server")
    array = (ctypes.c_void_p * len(devices))(*devices)
    start(endpoint.encode(), cache_dir.encode() if cache_dir else None, n_threads, len(devices), array)
