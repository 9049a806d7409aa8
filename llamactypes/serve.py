"""`python -m llamactypes.serve [MODEL.gguf]`: the OpenAI and Anthropic APIs for one local model.

    python -m llamactypes.serve                      # the demo model fetched by fetch_lib.py
    python -m llamactypes.serve model.gguf --port 8080 --n-ctx 32768 --alias qwen3 --api-key secret
    python -m llamactypes.serve --models ~/models --max-loaded 2 --idle-unload 600   # many models, by id
    python -m llamactypes.serve big.gguf --rpc 192.168.1.20:50052,192.168.1.21:50052  # layers on RPC workers
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

__all__ = ["main", "build_parser", "check_args", "server_config", "DEFAULT_PORT", "LoadProgress", "ready_settings"]

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
    parser.add_argument("--n-gpu-layers", type=int, default=None,
                        help="layers to offload to a GPU build (-1: all; default 0, all with --rpc)")
    parser.add_argument("--alias", default=None, help="model id clients see (default: the file name stem)")
    parser.add_argument("--api-key", default=os.environ.get("LLAMACTYPES_API_KEY"),
                        help="require this key (Authorization: Bearer or x-api-key); env LLAMACTYPES_API_KEY")
    parser.add_argument("--enable-thinking", action="store_true",
                        help="let hybrid thinking models think unless a request says otherwise")
    parser.add_argument("--max-queue", type=int, default=16,
                        help="requests that may wait for the model; more get 503 (default %(default)s)")
    parser.add_argument("--max-body", type=_byte_size, default=None, metavar="BYTES",
                        help="largest request body, e.g. 64M (default 32M); larger ones get 413 unread")
    parser.add_argument("--max-connections", type=int, default=None, metavar="N",
                        help="connections open at once (each holds a thread); more get 503 at once "
                             "(default 512)")
    parser.add_argument("--allowed-hosts", action="append", default=[], metavar="NAMES",
                        help="also accept these Host names (comma-separated, repeatable; '*' any; '.example.com' "
                             "a domain). Default: the bound address and localhost names (DNS-rebinding guard)")
    parser.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                        help="let web pages of ORIGIN (e.g. http://localhost:3000; '*' any) call the server from "
                             "a browser (repeatable). Default: cross-origin browser requests are refused")
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
    parser.add_argument("--rpc", default=None, metavar="HOST:PORT,...",
                        help="RPC workers (python -m llamactypes.rpc_worker) that hold the layers (docs/rpc.md)")
    parser.add_argument("--tensor-split", default=None, metavar="P,P,...",
                        help="proportion of the layers per --rpc worker, in order (default: by free memory)")
    parser.add_argument("--models", nargs="+", default=None, metavar="PATH",
                        help="serve every .gguf in these folders/files by id (the file stem), each loaded on "
                             "the first request that names it (docs/router.md)")
    parser.add_argument("--max-loaded", type=int, default=None,
                        help="with --models: at most this many in memory; loading another unloads the least "
                             "recently used (default: no limit)")
    parser.add_argument("--idle-unload", type=float, default=None, metavar="SECONDS",
                        help="with --models: unload a model unused for this long (default: never)")
    parser.add_argument("--progress", choices=["auto", "bar", "lines", "off"], default="auto",
                        help="model load progress on stderr: auto (a bar on a terminal, nothing otherwise), "
                             "bar, lines (one line per 10%%), off")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (a parent process that spawned us went away)")
    return parser


def _byte_size(text: str) -> int:
    """`33554432`, `32M`, `1G`, `512K` (powers of 1024) -> bytes, for `--max-body`."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = units.get(value[-1:], 1)
    try:
        size = int(float(value[:-1] if scale > 1 else value) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r} (e.g. 64M)") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"the size must be positive, got {text!r}")
    return size


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse option values that would silently weaken the server (exits with usage, code 2)."""
    if args.api_key is not None and not args.api_key.strip():
        parser.error("--api-key (or LLAMACTYPES_API_KEY) is empty: give a key, or leave the option out "
                     "to serve without one")
    if getattr(args, "max_connections", None) is not None and args.max_connections < 1:
        parser.error(f"--max-connections must be at least 1, got {args.max_connections}")


def server_config(args: argparse.Namespace) -> object:
    """The `ServerConfig` for parsed options (key, body size, Host allow-list, CORS origins)."""
    import dataclasses

    from .limits import DEFAULT_LIMITS
    from .server import ServerConfig
    from .server.origin import OriginPolicy, is_loopback_bind

    limits = DEFAULT_LIMITS if args.max_body is None else dataclasses.replace(DEFAULT_LIMITS,
                                                                              max_body_bytes=args.max_body)
    if getattr(args, "max_connections", None) is not None:
        limits = dataclasses.replace(limits, http_max_connections=args.max_connections)
    hosts = [h for item in args.allowed_hosts for h in item.split(",")]
    origin = OriginPolicy.build(args.host, hosts, args.cors)
    if not args.api_key and not is_loopback_bind(args.host):
        log.warning("serving on %s without --api-key: anyone who can reach this address can use the model "
                    "(set LLAMACTYPES_API_KEY or pass --api-key)", args.host)
    return ServerConfig(api_key=args.api_key, max_body_bytes=limits.max_body_bytes, origin=origin, limits=limits)


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
    parser = build_parser(prog or "python -m llamactypes.serve")
    args = parser.parse_args(args_list)
    check_args(parser, args)
    _configure_logging(args.log_level)
    problem = _check_multi_args(args)
    if problem:
        print(f"llamactypes.serve: {problem}", file=sys.stderr, flush=True)
        return 2
    try:
        path = _model_path(args.model) if not args.models else Path()
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
        code = _serve(args, path) if not args.models else _serve_router(args)
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
    from .server import create_app, make_http_server

    started = time.monotonic()
    with LoadProgress(path.name, args.progress) as progress:
        model = Model(path, n_ctx=args.n_ctx, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers,
                      progress=progress, **_rpc_options(args))
    engine = app = server = None
    try:
        args.parallel = args.parallel or DEFAULT_PARALLEL  # shown in the ready line
        engine = Engine(model, model_id=args.alias, max_waiting=args.max_queue,
                        enable_thinking=args.enable_thinking, parallel=args.parallel,
                        cache=_prompt_cache(args, model))
        app = create_app(engine, server_config(args))  # type: ignore[arg-type]
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
             "KV cache f16"]
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


# ---------------------------------------------------------------- RPC and several models (issue 14)


def _check_multi_args(args: argparse.Namespace) -> str | None:
    """One line for a bad combination of --rpc / --models / --max-loaded / --idle-unload, else None."""
    if args.models and args.model:
        return "give a MODEL or --models, not both"
    if not args.models and (args.max_loaded is not None or args.idle_unload is not None):
        return "--max-loaded and --idle-unload need --models"
    if args.max_loaded is not None and args.max_loaded < 1:
        return f"--max-loaded must be >= 1, got {args.max_loaded}"
    if args.idle_unload is not None and not args.idle_unload > 0:
        return f"--idle-unload must be > 0 seconds, got {args.idle_unload}"
    if args.tensor_split and not args.rpc:
        return "--tensor-split needs --rpc"
    try:
        _rpc_options(args)
    except ValueError:
        return f"--tensor-split must be numbers separated by commas, got {args.tensor_split!r}"
    return None


def _rpc_options(args: argparse.Namespace) -> dict:
    """Model keyword arguments for --rpc / --tensor-split."""
    if not args.rpc:
        return {}
    split = [float(x) for x in args.tensor_split.split(",")] if args.tensor_split else None
    return {"rpc_servers": [e.strip() for e in args.rpc.split(",") if e.strip()], "tensor_split": split}


def _serve_router(args: argparse.Namespace) -> int:
    """`--models`: one server, many models, each loaded on first use (server/router.py)."""
    from .engine import DEFAULT_PARALLEL, Engine
    from .model import Model
    from .server import ModelRouter, create_app, discover_models, make_http_server

    models = discover_models(args.models)

    def load(model_id: str, path: Path) -> Engine:
        model = Model(path, n_ctx=args.n_ctx, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers,
                      **_rpc_options(args))
        try:
            return Engine(model, model_id=model_id, max_waiting=args.max_queue, enable_thinking=args.enable_thinking,
                          parallel=args.parallel or DEFAULT_PARALLEL, cache=_prompt_cache(args, model))
        except BaseException:
            model.close()
            raise

    router = ModelRouter(models, load, max_loaded=args.max_loaded, idle_unload=args.idle_unload)
    app = server = None
    try:
        app = create_app(router, server_config(args))
        server = make_http_server(app, args.host, args.port)
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        url = f"http://{shown}:{server.port}"
        limits = "".join([f", at most {args.max_loaded} loaded" if args.max_loaded else "",
                          f", unloaded after {args.idle_unload:g} s idle" if args.idle_unload else ""])
        print(f"llamactypes: serving {len(models)} models by id, each loaded on first use{limits}: "
              f"{', '.join(models)}\n"
              f"  OpenAI:    {url}/v1   (e.g. OPENAI_BASE_URL={url}/v1)\n"
              f"  Anthropic: {url}      (e.g. ANTHROPIC_BASE_URL={url})\n"
              f"llamactypes: ready at {url}", flush=True)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        print("llamactypes: stopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            server.server_close()
        router.close()
        deadline = time.monotonic() + 5.0
        while app is not None and app.active and time.monotonic() < deadline:
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
