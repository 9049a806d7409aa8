"""A server in a child process whose life is tied to a Python object.

`ServerProcess` starts a command (normally ``python -m llamactypes.serve …``),
waits until ``GET /health`` answers 200, and stops it again on `stop()`, when
the object is garbage-collected (`weakref.finalize`), and at interpreter exit.

No orphan survives a crash of the parent, without signals or ctypes: the child's
stdin is a pipe whose only writer is the parent. When the parent dies — even by
SIGKILL — the kernel closes that pipe, the child reads EOF on stdin and exits
(``serve --exit-on-stdin-eof``, see `exit_on_stdin_eof`). The child also gets
its own session, so a Ctrl-C in the parent's terminal does not reach it: the
parent decides when it stops.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Sequence

import requests

from ..errors import ServerStartError

__all__ = ["ServerProcess", "spawn_server", "serve_command", "server_env", "free_port", "exit_on_stdin_eof"]

log = logging.getLogger("llamactypes.client")

LOG_LINES = 200  # lines of server output kept for error messages


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_command(model_path: str | os.PathLike[str] | None, port: int, host: str = "127.0.0.1",
                  n_ctx: int | None = None, python: str | None = None, **server_opts: Any) -> list[str]:
    """The ``python -m llamactypes.serve`` command line for these options.

    ``server_opts`` become flags: ``threads=2`` → ``--threads 2``, ``enable_thinking=True`` →
    ``--enable-thinking``; False and None are left out; lists repeat the flag. ``api_key`` is
    refused (a command line is visible to every user in ``ps``; dropping it silently would start a
    server without a key): start the process with ``env=server_env(api_key)``, as `spawn_server`
    and `ServerPool.spawn` do.
    """
    if server_opts.get("api_key") is not None:
        raise ValueError("serve_command() puts no API key on a command line: pass it to the process as "
                         "env=server_env(api_key) (LLAMACTYPES_API_KEY)")
    argv = [python or sys.executable, "-m", "llamactypes.serve"]
    if model_path is not None:
        argv.append(os.fspath(model_path))
    argv += ["--host", host, "--port", str(port)]
    if n_ctx is not None:
        argv += ["--n-ctx", str(n_ctx)]
    for key, value in server_opts.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    argv.append("--exit-on-stdin-eof")
    return argv


def server_env(api_key: str | None, base: dict[str, str] | None = None) -> dict[str, str] | None:
    """The environment for a spawned server: `base` (default: ours) with ``LLAMACTYPES_API_KEY``
    set to `api_key`; None (inherit ours unchanged) when there is no key. An empty key is an error,
    as it is for ``serve --api-key ''``."""
    if api_key is None:
        return None if base is None else dict(base)
    if not api_key.strip():
        raise ValueError("api_key is empty: give a key, or None to serve without one")
    return {**(os.environ if base is None else base), "LLAMACTYPES_API_KEY": api_key}


def _stop(proc: subprocess.Popen[bytes], grace: float) -> int | None:
    """Close the lifeline, then SIGTERM, then SIGKILL; reap the child. Safe to call twice."""
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
        except OSError:
            pass
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot end
        return None


def _read_output(proc: subprocess.Popen[bytes], lines: collections.deque[str], echo: bool | str) -> None:
    """Keep the server's last output lines (and echo them to stderr or the debug log)."""
    assert proc.stdout is not None
    prefix = echo if isinstance(echo, str) else ""
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        lines.append(line)
        if echo is not False:
            print(prefix + line, file=sys.stderr, flush=True)
        else:
            log.debug("server %d: %s", proc.pid, line)
    proc.stdout.close()


class ServerProcess:
    """Runs `argv`, serving on `url`; ready once ``{url}/health`` answers 200.

    Raises `ServerStartError` (with the last lines of the server's output) when the
    process exits before it is ready or `timeout` seconds pass. With ``wait=False`` the
    constructor returns at once and `wait_ready` does the waiting (to start several in
    parallel). `echo` copies the server's output to stderr (a str: with that prefix).
    """

    def __init__(self, argv: Sequence[str], url: str, timeout: float = 180.0, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, echo: bool | str = False, grace: float = 10.0,
                 wait: bool = True) -> None:
        self.argv = list(argv)
        self.url = url.rstrip("/")
        self.grace = grace
        self._log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True, close_fds=True,
        )
        self._finalizer = weakref.finalize(self, _stop, self.proc, grace)
        # the reader gets no reference to self: a running thread must not keep this object alive
        self._reader = threading.Thread(target=_read_output, args=(self.proc, self._log, echo),
                                        name=f"server-log-{self.proc.pid}", daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready(timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def log(self, lines: int = LOG_LINES) -> str:
        """The last `lines` lines the server printed (stdout and stderr together)."""
        return "\n".join(list(self._log)[-lines:])

    def stop(self) -> int | None:
        """Stop the server (idempotent) and return its exit code."""
        self._finalizer()
        self._reader.join(timeout=2)
        return self.proc.returncode

    close = stop

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.proc.returncode}"
        return f"<ServerProcess pid={self.pid} {self.url} {state}>"

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Poll ``/health`` until it answers 200; on failure stop the server and raise `ServerStartError`."""
        try:
            self._poll_health(timeout)
        except BaseException:
            self.stop()
            raise

    def _poll_health(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        health = f"{self.url}/health"
        with requests.Session() as session:
            session.trust_env = False  # never send a loopback health check through a proxy
            while True:
                code = self.proc.poll()
                if code is not None:
                    self._reader.join(timeout=2)
                    raise ServerStartError(f"the server exited with code {code} before it was ready "
                                           f"({' '.join(self.argv)})", log=self.log(40))
                try:
                    if session.get(health, timeout=2).status_code == 200:
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise ServerStartError(f"the server did not answer {health} within {timeout:g} s",
                                           log=self.log(40))
                time.sleep(0.1)


def spawn_server(model_path: str | os.PathLike[str] | None, *, host: str = "127.0.0.1", port: int | None = None,
                 n_ctx: int | None = None, timeout: float = 180.0, echo: bool | str = False,
                 **server_opts: Any) -> ServerProcess:
    """Start ``python -m llamactypes.serve`` for `model_path` on `port` (a free one if None or 0)."""
    if model_path is not None and not Path(model_path).is_file():
        raise FileNotFoundError(f"no model file at {model_path}")
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    port = port or None  # 0 means "any free port", as for the server itself
    env = server_env(server_opts.pop("api_key", None))  # the key goes in the environment, never argv
    for attempt in range(3):
        chosen = port if port is not None else free_port(connect_host)
        argv = serve_command(model_path, chosen, host=host, n_ctx=n_ctx, **server_opts)
        try:
            return ServerProcess(argv, f"http://{connect_host}:{chosen}", timeout=timeout, echo=echo, env=env)
        except ServerStartError as exc:
            # another process took the free port between our check and the server's bind
            if port is not None or attempt == 2 or "address already in use" not in exc.log.lower():
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def exit_on_stdin_eof(on_eof: Callable[[], None] | None = None, grace: float = 10.0) -> threading.Thread:
    """The child's side of the lifeline: when stdin reaches EOF (the parent closed it or died),
    send ourselves SIGTERM — or call `on_eof` — and force an exit if still alive after `grace` s.

    Used by ``serve --exit-on-stdin-eof``; returns the (daemon) watcher thread.
    """
    def watch() -> None:
        stdin = sys.stdin.buffer if sys.stdin is not None else None
        try:
            while stdin is not None and stdin.read(4096):
                pass  # the parent never writes; anything that comes is ignored
        except (OSError, ValueError):
            pass
        log.info("stdin closed: the parent is gone, shutting down")
        if on_eof is not None:
            on_eof()
        else:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-on-stdin-eof", daemon=True)
    thread.start()
    return thread
