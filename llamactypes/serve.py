"""`python -m llamactypes.serve [MODEL.gguf]`: the OpenAI and Anthropic APIs for one local model.

    python -m llamactypes.serve                      # the demo model fetched by fetch_lib.py
    python -m llamactypes.serve model.gguf --port 8080 --n-ctx 32768 --alias qwen3 --api-key secret

The composition root: load the model once, put an `Engine` on it, serve
`create_app(engine)` on werkzeug's threaded server (every SSE event flushed as
it is produced), print the URL, and on Ctrl-C / SIGTERM stop accepting, end the
streams in flight, and free the model. `--pool N` runs N such servers
(`llamactypes.pool`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Sequence

from .errors import LlamaError

__all__ = ["main", "build_parser", "DEFAULT_PORT"]

DEFAULT_PORT = 11434
FETCH_HINT = "python build_scripts/fetch_lib.py --model smollm2"

log = logging.getLogger("llamactypes.serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llamactypes.serve",
        description="Serve a GGUF model with the OpenAI (/v1/chat/completions, ...) and Anthropic (/v1/messages) "
                    "APIs. Without MODEL, the demo model fetched by fetch_lib.py.")
    parser.add_argument("model", nargs="?", help="a .gguf file (default: the demo model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s; 0: any free port)")
    parser.add_argument("--n-ctx", type=int, default=8192, help="context length in tokens (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all usable cores)")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload to a GPU build (-1: all)")
    parser.add_argument("--alias", default=None, help="model id clients see (default: the file name stem)")
    parser.add_argument("--api-key", default=os.environ.get("LLAMACTYPES_API_KEY"),
                        help="require this key (Authorization: Bearer or x-api-key); env LLAMACTYPES_API_KEY")
    parser.add_argument("--enable-thinking", action="store_true",
                        help="let hybrid thinking models think unless a request says otherwise")
    parser.add_argument("--max-queue", type=int, default=16,
                        help="requests that may wait for the model; more get 503 (default %(default)s)")
    parser.add_argument("--parallel", type=int, default=None, metavar="N",
                        help="requests decoded together, each in its own slot of one context whose whole length "
                             "any one of them may still use (default 4: an agent's title request, subagents and "
                             "main turn at once; docs/engine.md)")
    parser.add_argument("--cache-ram", type=int, default=2048, metavar="MiB",
                        help="host memory for the states of conversations whose slot was reused, restored when "
                             "they come back (0: off; default %(default)s)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="keep those states on disk too (evicted ones, and every live slot's at a clean "
                             "shutdown): a restarted server picks long conversations up without re-reading them")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (a parent process that spawned us went away)")
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _model_path(arg: str | None) -> Path | None:
    from .paths import demo_model_path

    if arg:
        return Path(arg).expanduser()
    path = demo_model_path()
    if not path.is_file():
        print(f"llamactypes.serve: no model given and the demo model is not at {path}.\n"
              f"Fetch it with:  {FETCH_HINT}\nor pass a GGUF file:  python -m llamactypes.serve MODEL.gguf",
              file=sys.stderr, flush=True)
        return None
    return path


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if level != "debug":  # llama.cpp's own log is loud at info level
        logging.getLogger("llamactypes.native").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until Ctrl-C / SIGTERM; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--pool" or a.startswith("--pool=") for a in args_list):
        from .pool import main as pool_main

        return pool_main(args_list)
    args = build_parser().parse_args(args_list)
    _configure_logging(args.log_level)
    path = _model_path(args.model)
    if path is None:
        return 2
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    if args.exit_on_stdin_eof:
        from .client import exit_on_stdin_eof

        exit_on_stdin_eof()
    code = 0
    try:
        code = _serve(args, path)
    except KeyboardInterrupt:
        code = 0
    except (LlamaError, OSError) as exc:
        print(f"llamactypes.serve: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.exit_on_stdin_eof:
        # The stdin watcher thread sits in a buffered read; letting the interpreter finalize
        # under it aborts the process ("could not acquire lock for <stdin>"). Everything is
        # already closed and freed: leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _prompt_cache(args: argparse.Namespace, model: object) -> object | None:
    """The prompt cache `--cache-ram` / `--cache-dir` ask for (`engine.prompt_cache`), or None."""
    if args.cache_ram <= 0 and not args.cache_dir:
        return None
    from .engine import prompt_cache
    identity = prompt_cache.ModelIdentity.of_file(model.path)  # type: ignore[attr-defined]
    return prompt_cache.PromptCache(max(args.cache_ram, 0) * 1024 * 1024, cache_dir=args.cache_dir,
                                    identity=identity)


def _serve(args: argparse.Namespace, path: Path) -> int:
    from .engine import DEFAULT_PARALLEL, Engine
    from .model import Model
    from .server import ServerConfig, create_app, make_http_server

    started = time.monotonic()
    model = Model(path, n_ctx=args.n_ctx, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers)
    engine = app = server = None
    try:
        engine = Engine(model, model_id=args.alias, max_waiting=args.max_queue,
                        enable_thinking=args.enable_thinking, parallel=args.parallel or DEFAULT_PARALLEL,
                        cache=_prompt_cache(args, model))
        app = create_app(engine, ServerConfig(api_key=args.api_key))
        server = make_http_server(app, args.host, args.port)
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        url = f"http://{shown}:{server.port}"
        print(f"llamactypes: serving {engine.model_id} (context {engine.n_ctx} tokens, {engine.parallel} slots, "
              f"loaded in "
              f"{time.monotonic() - started:.1f} s)\n"
              f"  OpenAI:    {url}/v1   (e.g. OPENAI_BASE_URL={url}/v1)\n"
              f"  Anthropic: {url}      (e.g. ANTHROPIC_BASE_URL={url})\n"
              f"llamactypes: ready at {url}", flush=True)
        try:
            server.serve_forever(poll_interval=0.2)  # returns on KeyboardInterrupt (Ctrl-C or SIGTERM)
        except KeyboardInterrupt:
            pass
        print("llamactypes: stopping", flush=True)
        return 0
    finally:
        _shutdown(model, engine, app, server)


def _shutdown(model: object, engine: object, app: object, server: object, grace: float = 5.0) -> None:
    """Stop accepting, cancel the queue and the running generation (its stream ends with an error
    event), give the streams in flight `grace` seconds to finish writing, free the model."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if server is not None:
            server.server_close()  # type: ignore[attr-defined]
        if engine is not None:
            engine.close()  # type: ignore[attr-defined]
        deadline = time.monotonic() + grace
        while app is not None and app.active and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
    finally:
        model.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
