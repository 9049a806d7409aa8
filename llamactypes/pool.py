"""A pool of single-sequence servers on consecutive ports, for parallel sessions.

    python -m llamactypes.serve model.gguf --pool 4 --port 11434    # ports 11434 … 11437
    python -m llamactypes.pool model.gguf --pool 4 --port 11434     # the same

Each child is an ordinary ``python -m llamactypes.serve … --port P+i``; the pool
splits the cores between them (``--threads`` defaults to cores // N), starts them
in parallel, prints their URLs when all answer ``/health``, and stops them all on
Ctrl-C / SIGTERM, when one of them dies, or (``--exit-on-stdin-eof``) when its own
parent goes away. Children watch the pool through their stdin pipe, so even a
SIGKILL of the pool leaves no server behind.

From Python:

    with ServerPool.spawn("model.gguf", 4) as servers:
        with servers.chat_pool() as chats:                 # one Chat per server
            answers = chats.map(lambda chat, q: chat.chat(q), questions)

See docs/pool.md for the design and when a reverse proxy is the better tool.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType
from typing import Any, Sequence

from .errors import ServerStartError
from .client import ChatPool, ServerProcess, exit_on_stdin_eof, free_port, serve_command, threads_per_server
from .client._process import server_env

__all__ = ["ServerPool", "main"]

DEFAULT_PORT = 11434
START_TIMEOUT = float(os.environ.get("LLAMACTYPES_POOL_TIMEOUT", "600"))


class ServerPool:
    """N server processes started together; `urls` are their ``…/v1`` base URLs."""

    def __init__(self, commands: Sequence[tuple[list[str], str]], timeout: float = 180.0,
                 echo: bool = False, env: dict[str, str] | None = None) -> None:
        self.servers: list[ServerProcess] = []
        try:
            for i, (argv, url) in enumerate(commands):
                prefix = f"[{url.rsplit(':', 1)[-1]}] " if echo else False
                self.servers.append(ServerProcess(argv, url, timeout=timeout, echo=prefix, wait=False, env=env))
            for server in self.servers:  # they load their models in parallel
                server.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    @classmethod
    def spawn(cls, model_path: str | os.PathLike[str] | None, n: int, *, port: int | None = None,
              host: str = "127.0.0.1", n_ctx: int | None = None, threads: int | None = None,
              timeout: float = 180.0, echo: bool = False, **server_opts: Any) -> ServerPool:
        """Start `n` servers for `model_path` on ``port … port+n-1`` (free ports when `port` is None)."""
        if n < 1:
            raise ValueError("a pool needs at least one server")
        threads = threads or threads_per_server(n)
        connect = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        ports = [port + i for i in range(n)] if port is not None else [free_port(connect) for _ in range(n)]
        env = server_env(server_opts.pop("api_key", None))  # the key goes in the environment, never argv
        commands = [(serve_command(model_path, p, host=host, n_ctx=n_ctx, threads=threads, **server_opts),
                     f"http://{connect}:{p}") for p in ports]
        return cls(commands, timeout=timeout, echo=echo, env=env)

    @property
    def urls(self) -> list[str]:
        return [f"{server.url}/v1" for server in self.servers]

    def chat_pool(self, **chat_kwargs: Any) -> ChatPool:
        """A `ChatPool` connected to these servers (stopping it leaves the servers running)."""
        return ChatPool.connect(urls=self.urls, **chat_kwargs)

    def running(self) -> bool:
        return all(server.running for server in self.servers)

    def stop(self) -> None:
        """Stop every server: all get SIGTERM first, then each is waited for."""
        for server in self.servers:
            if server.running:
                try:
                    server.proc.terminate()
                except OSError:
                    pass
        for server in self.servers:
            server.stop()

    close = stop

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llamactypes.serve --pool N",
        description="Run N single-sequence llamactypes servers on consecutive ports. "
                    "Every other option is passed to each server unchanged.")
    parser.add_argument("--pool", type=int, required=True, metavar="N", help="number of servers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="first port (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="threads per server (default: cores // N)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop the pool when stdin closes")
    parser.add_argument("--api-key", default=None, help="passed to every server through its environment")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``--pool N`` command line: start, print the URLs, wait, stop everything."""
    parser = _parser()
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.pool < 1:
        parser.error("--pool needs N >= 1")
    if args.api_key is not None and not args.api_key.strip():
        parser.error("--api-key is empty: give a key, or leave the option out to serve without one")
    threads = args.threads or threads_per_server(args.pool)
    connect = "127.0.0.1" if args.host in ("0.0.0.0", "", "::") else args.host
    commands = []
    for i in range(args.pool):
        port = args.port + i
        argv_i = [sys.executable, "-m", "llamactypes.serve", *rest, "--host", args.host, "--port", str(port),
                  "--threads", str(threads), "--exit-on-stdin-eof"]
        commands.append((argv_i, f"http://{connect}:{port}"))

    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM and Ctrl-C: the same clean stop
    if args.exit_on_stdin_eof:
        exit_on_stdin_eof(grace=60.0)  # sends us SIGTERM when our parent goes away
    pool: ServerPool | None = None
    try:
        pool = ServerPool(commands, timeout=START_TIMEOUT, echo=True, env=server_env(args.api_key))
        print(f"llamactypes pool: {args.pool} servers with {threads} thread(s) each, ready at:", flush=True)
        for url in pool.urls:
            print(f"  {url}", flush=True)
        return _watch(pool)
    except KeyboardInterrupt:
        return 0
    except ServerStartError as exc:
        print(f"llamactypes pool: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if pool is not None:
            pool.stop()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _watch(pool: ServerPool) -> int:
    """Sleep until interrupted (0) or until a server dies (1: the pool is incomplete, stop it all)."""
    while True:
        time.sleep(0.5)
        dead = [s for s in pool.servers if not s.running]
        for server in dead:
            print(f"llamactypes pool: the server at {server.url} exited with code {server.proc.returncode}; "
                  f"stopping the pool\n{server.log(20)}", file=sys.stderr, flush=True)
        if dead:
            return 1


if __name__ == "__main__":
    sys.exit(main())
