"""`python -m llamactypes.serve [MODEL.gguf]`: the OpenAI and Anthropic APIs for one local model.

    python -m llamactypes.serve                      # the demo model fetched by fetch_lib.py
    python -m llamactypes.serve model.gguf --port 8080 --n-ctx 32768 --alias qwen3 --api-key secret
    llamactypes serve bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M   # downloaded from the Hub once

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
from typing import Sequence, TextIO

from .errors import LlamaError

__all__ = ["main", "build_parser", "DEFAULT_PORT", "LoadProgress", "ready_settings"]

DEFAULT_PORT = 11434
FETCH_HINT = "python build_scripts/fetch_lib.py --model smollm2"

log = logging.getLogger("llamactypes.serve")


def build_parser(prog: str = "python -m llamactypes.serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a GGUF model with the OpenAI (/v1/chat/completions, ...) and Anthropic (/v1/messages) "
                    "APIs, and a chat page at / for browsers. Without MODEL, the demo model fetched by fetch_lib.py.")
    parser.add_argument("model", nargs="?", help="a .gguf file, or owner/repo[:QUANT] on the Hugging Face Hub "
                                                 "(downloaded once into its cache; default: the demo model)")
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
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--progress", choices=["auto", "bar", "lines", "off"], default="auto",
                        help="model load progress on stderr: auto (a bar on a terminal, nothing otherwise), "
                             "bar, lines (one line per 10%%), off")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (a parent process that spawned us went away)")
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _model_path(arg: str | None) -> Path | None:
    from .hub import resolve_model
    from .paths import demo_model_path

    if arg:
        return resolve_model(arg)  # a local path, or owner/repo[:QUANT] pulled from the Hub
    path = demo_model_path()
    if not path.is_file():
        print(f"llamactypes.serve: no model given and the demo model is not at {path}.\n"
              f"Fetch it with:  {FETCH_HINT}\nor pass a GGUF file:  python -m llamactypes.serve MODEL.gguf",
              file=sys.stderr, flush=True)
        return None
    return path


def _pull_for_pool(args_list: list[str]) -> list[str]:
    """`--pool N owner/repo:QUANT`: download once here, then give every server the local file."""
    from .hub import looks_like_hub_ref, pull_model

    rest, skip = [], False
    for i, arg in enumerate(args_list):  # the pool's own option, so serve's parser can read the rest
        if skip or arg.startswith("--pool="):
            skip = False
            continue
        if arg == "--pool":
            skip = True
            continue
        rest.append(arg)
    model = build_parser().parse_known_args(rest)[0].model
    if not model or not looks_like_hub_ref(model):
        return args_list
    path = str(pull_model(model))
    return [path if arg == model else arg for arg in args_list]


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if level != "debug":  # llama.cpp's own log is loud at info level
        logging.getLogger("llamactypes.native").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the server until Ctrl-C / SIGTERM; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--pool" or a.startswith("--pool=") for a in args_list):
        from .pool import main as pool_main

        try:
            args_list = _pull_for_pool(args_list)
        except (LlamaError, OSError) as exc:
            print(f"llamactypes.serve: {exc}", file=sys.stderr, flush=True)
            return 1
        return pool_main(args_list)
    args = build_parser(prog or "python -m llamactypes.serve").parse_args(args_list)
    _configure_logging(args.log_level)
    try:
        path = _model_path(args.model)
    except (LlamaError, OSError) as exc:
        print(f"llamactypes.serve: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
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


def _serve(args: argparse.Namespace, path: Path) -> int:
    from .engine import Engine
    from .model import Model
    from .server import ServerConfig, create_app, make_http_server

    started = time.monotonic()
    with LoadProgress(path.name, args.progress) as progress:
        model = Model(path, n_ctx=args.n_ctx, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers,
                      progress=progress)
    engine = app = server = None
    try:
        engine = Engine(model, model_id=args.alias, max_waiting=args.max_queue,
                        enable_thinking=args.enable_thinking)
        app = create_app(engine, ServerConfig(api_key=args.api_key))
        server = make_http_server(app, args.host, args.port)
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        url = f"http://{shown}:{server.port}"
        print(f"llamactypes: serving {engine.model_id} from {path} (loaded in {time.monotonic() - started:.1f} s)\n"
              f"  settings:  {ready_settings(args, engine.n_ctx)}\n"
              f"  chat page: {url}/   (open it in a browser)\n"
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


def ready_settings(args: argparse.Namespace, n_ctx: int) -> str:
    """What the server runs with, in one line: context, threads, backend, caches, queue."""
    from .api.backend import llama_supports_gpu_offload
    from .native.backend import default_threads

    threads = args.threads or default_threads()
    if args.n_gpu_layers and llama_supports_gpu_offload():
        backend = f"GPU ({'all' if args.n_gpu_layers < 0 else args.n_gpu_layers} layers offloaded)"
    else:
        backend = "CPU" + (" (this build cannot offload: --n-gpu-layers ignored)" if args.n_gpu_layers else "")
    parts = [f"context {n_ctx} tokens", f"{threads} threads", f"backend {backend}",
             "KV cache f16, the previous prompt's prefix reused"]
    for name, label in (("parallel", "slots"), ("cache_ram", "prompt cache RAM MiB"), ("cache_dir", "cache dir")):
        value = getattr(args, name, None)  # options other parts of the server may add
        if value not in (None, False):
            parts.append(f"{label} {value}")
    parts.append(f"queue {args.max_queue}")
    if args.api_key:
        parts.append("API key required")
    return ", ".join(parts)


class LoadProgress:
    """Model load progress on stderr: a redrawn bar (`bar`), a line per 10 % (`lines`), or nothing.
    `auto` is a bar when stderr is a terminal and nothing otherwise. Call it with the loaded fraction."""

    def __init__(self, name: str, mode: str = "auto", stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "off"
        self.name, self.mode, self._shown = name, mode, -1

    def __call__(self, fraction: float) -> bool:
        percent = int(max(0.0, min(1.0, fraction)) * 100)
        if self.mode == "bar" and percent != self._shown:
            filled = percent * 30 // 100
            self.stream.write(f"\rloading {self.name} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%")
            self.stream.flush()
        elif self.mode == "lines" and percent // 10 != self._shown // 10:
            print(f"llamactypes: loading {self.name} {percent}%", file=self.stream, flush=True)
        self._shown = percent
        return True

    def __enter__(self) -> "LoadProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mode == "bar" and self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


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
