"""`python -m llamactypes.rpc_worker`: serve this machine's devices to a main host over llama.cpp's RPC protocol.

    python -m llamactypes.rpc_worker                          # 127.0.0.1:50052, every core
    python -m llamactypes.rpc_worker --host 0.0.0.0 --port 50052 --threads 8 --cache-dir ~/.cache/rpc

The server is llama.cpp's own (`ggml_backend_rpc_start_server`, looked up through the backend
registry as tools/rpc/rpc-server.cpp does), not a binary of ours; this is the composition root
around it (layer 10). It prints `llamactypes rpc_worker: ready at HOST:PORT` once it answers the
protocol's handshake, and stops on Ctrl-C / SIGTERM. `--port 0` picks a free port (printed).

The protocol has no authentication and no encryption: anyone who reaches the port can run
computations and read memory on this machine's devices. It binds 127.0.0.1 unless told otherwise
and warns when told otherwise. Every host must run the same pinned llama.cpp build (docs/rpc.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Sequence, TextIO

from .errors import LlamaError

__all__ = ["main", "build_parser", "DEFAULT_PORT"]

DEFAULT_PORT = 50052
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WARNING = ("WARNING: the RPC worker listens on {host}, not only this machine. llama.cpp's RPC protocol has no "
           "authentication and no encryption: whoever reaches {host}:{port} can use this machine's devices and "
           "read their memory. Only do this on a network you trust (or behind a firewall / SSH tunnel).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llamactypes.rpc_worker",
        description="Serve this machine's llama.cpp devices to a main host (Model(rpc_servers=...), "
                    "serve --rpc) over llama.cpp's RPC protocol. Needs a build with --rpc.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default %(default)s; anything else is reachable from the network: "
                             "no authentication, no encryption)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s; 0: a free one)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the usable cores)")
    parser.add_argument("--cache-dir", default=None,
                        help="keep received tensors here, so a main host that loads the same model again "
                             "sends only their hashes (llama.cpp's rpc-server -c)")
    return parser


def _bindable_port(host: str, port: int) -> int:
    """`port` (a free one for 0) after checking it can be bound: the readiness probe must not
    mistake another process already listening there for our server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as llama.cpp's server socket does
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        return sock.getsockname()[1]


def _say(line: str, stream: TextIO | None = None) -> None:
    """One whole line in one write: llama.cpp's server thread prints to the same stdout."""
    out = stream or sys.stdout
    out.write(line + "\n")
    out.flush()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _check(args: argparse.Namespace) -> str | None:
    """The first problem with the arguments, as one line, or None."""
    if not 0 <= args.port < 65536:
        return f"--port must be from 0 to 65535, got {args.port}"
    if args.threads is not None and args.threads < 1:
        return f"--threads must be >= 1, got {args.threads}"
    if args.cache_dir:
        try:
            Path(args.cache_dir).expanduser().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"--cache-dir {args.cache_dir}: {exc.strerror or exc}"
    return None


def _wait_until_ready(endpoint: str, server: threading.Thread, timeout: float = 30.0) -> bool:
    """Poll the worker with our own handshake probe until it answers (False if it stopped first)."""
    from .errors import RpcEndpointError
    from .native import rpc

    deadline = time.monotonic() + timeout
    while server.is_alive() and time.monotonic() < deadline:
        try:
            rpc.probe(endpoint, timeout=2.0)
            return True
        except RpcEndpointError:
            time.sleep(0.05)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker until Ctrl-C / SIGTERM.

    Returns an exit code when it cannot start (2: bad arguments, 1: no RPC backend, port in use);
    once it served, it ends the process itself (`os._exit`): llama.cpp's server thread cannot be
    stopped, and finalizing the interpreter under it is not safe.
    """
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    problem = _check(args)
    if problem:
        _say(f"rpc_worker: error: {problem}", sys.stderr)
        return 2
    if args.host not in LOOPBACK:
        _say(WARNING.format(host=args.host, port=args.port), sys.stderr)
    try:
        from .native import default_threads, rpc

        devices = rpc.worker_devices()
        rpc.rpc_registration()  # RpcUnavailableError before anything starts
        port = _bindable_port(args.host, args.port)
        endpoint = f"{args.host}:{port}"  # as rpc-server builds it (llama.cpp splits at the last colon)
        threads = args.threads or default_threads()
        cache = str(Path(args.cache_dir).expanduser()) if args.cache_dir else None
        names = ", ".join(rpc.device_name(d) for d in devices)
        _say(f"llamactypes rpc_worker: serving {names} on {endpoint} ({threads} threads"
             f"{', cache ' + cache if cache else ''})")
    except (LlamaError, OSError) as exc:
        _say(f"rpc_worker: error: {exc}", sys.stderr)
        return 1
    # llama.cpp's server loop never returns while it serves and cannot be interrupted from Python:
    # it runs in a daemon thread, the main thread waits for a signal and then leaves the process.
    server = threading.Thread(target=rpc.start_server, args=(endpoint, cache, threads, devices),
                              name="rpc-server", daemon=True)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        server.start()
        if not _wait_until_ready(endpoint, server):
            _say(f"rpc_worker: error: llama.cpp's RPC server did not start on {endpoint} "
                 "(port in use? see its message above)", sys.stderr)
            code = 1
        else:
            _say(f"llamactypes rpc_worker: ready at {endpoint}")
            while server.is_alive():
                server.join(0.5)
            code = 1  # the server loop only returns when it cannot accept any more
    except KeyboardInterrupt:
        _say("llamactypes rpc_worker: stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stdout.flush()
    sys.stderr.flush()
    # The C server thread cannot be joined or stopped; finalizing the interpreter under it may hang.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
