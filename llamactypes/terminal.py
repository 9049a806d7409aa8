"""`llamactypes chat`: chat with a model in the terminal (replies stream as they are generated).

    llamactypes chat                                   # the demo model, interactive
    llamactypes chat model.gguf "Why is the sky blue?" # one reply, then exit
    llamactypes chat owner/repo:Q4_K_M                 # a model from the Hugging Face Hub (pulled once)
    llamactypes chat model.gguf 8080 4096              # the spawned server on port 8080 with a 4096-token context
    llamactypes chat --url http://127.0.0.1:11434/v1   # talk to a running server instead

A blank line or Ctrl-D quits; Ctrl-C stops the reply being written (not the program);
``/reset`` starts the conversation again. A spawned server is always stopped on exit;
while it loads the model, a terminal shows the load progress.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import requests

from .client import Chat, ServerProcess, free_port, serve_command
from .client._process import server_env
from .errors import LlamaError, ServerError, ServerStartError

__all__ = ["main", "parse_args", "reply", "interactive"]

PROGRESS_PREFIX = "llamactypes: loading "


def parse_args(argv: list[str] | None = None, prog: str | None = None,
               require_model: bool = False) -> argparse.Namespace:
    """Options plus the positional ``[MODEL] [PORT] [N_CTX] [MESSAGE…]`` (exits 2 with usage when wrong).

    The first positional is the model when it is a file, ends in `.gguf` or reads `owner/repo[:QUANT]`;
    otherwise (unless `require_model`) the demo model is used and every positional is the message."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s [MODEL] [PORT] [N_CTX] [MESSAGE ...] [options]\n"
              "       %(prog)s --url URL [MESSAGE ...] [options]",
        description="Chat with a GGUF model in the terminal. MODEL is a .gguf file or owner/repo[:QUANT] on the "
                    "Hugging Face Hub (default: the demo model); with a MESSAGE, one reply and exit.")
    parser.add_argument("args", nargs="*", metavar="MODEL [PORT] [N_CTX] [MESSAGE]", help=argparse.SUPPRESS)
    parser.add_argument("--url", help="connect to a running server (e.g. http://127.0.0.1:11434/v1)")
    parser.add_argument("--api-key", help="API key for --url, or to protect the spawned server")
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for a spawned server")
    parser.add_argument("--threads", type=int, help="threads for a spawned server")
    parser.add_argument("--max-tokens", type=int, default=512, help="longest reply (default %(default)s)")
    parser.add_argument("--temperature", type=float, help="sampling temperature")
    parser.add_argument("--seed", type=int, help="sampling seed")
    args = parser.parse_args(argv)
    rest = list(args.args)
    args.model = args.port = args.n_ctx = None
    if args.url is None:
        names_model = bool(rest) and (rest[0].lower().endswith(".gguf") or _model_exists(rest[0]))
        if require_model and not rest:
            parser.error("give a model file (or --url to connect to a running server)")
        if names_model or require_model:
            args.model = rest.pop(0)
            if not _model_exists(args.model):
                parser.error(f"no model file at {args.model}")
        for name in ("port", "n_ctx"):
            if rest and rest[0].isdigit():
                setattr(args, name, int(rest.pop(0)))
        if args.port is not None and not 0 <= args.port < 65536:  # 0: any free port
            parser.error(f"port {args.port} is out of range")
    elif rest and rest[0].endswith(".gguf"):
        parser.error("give a model file or --url, not both")
    args.message = " ".join(rest).strip() or None
    return args


def _model_exists(arg: str) -> bool:
    from .hub import looks_like_hub_ref

    return Path(arg).expanduser().is_file() or looks_like_hub_ref(arg)


def reply(chat: Chat, message: str, options: dict[str, Any]) -> bool:
    """Stream one reply to stdout; Ctrl-C ends it early (the server stops generating).
    A server error is printed and gives False."""
    try:
        for piece in chat.stream(message, **options):
            sys.stdout.write(piece)
            sys.stdout.flush()
        print()
    except KeyboardInterrupt:
        print("\n[stopped]", flush=True)
    except ServerError as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        return False
    return True


def interactive(chat: Chat, options: dict[str, Any]) -> None:
    """Read messages until a blank line or Ctrl-D; `/reset` clears the conversation."""
    print(f"Chatting with {chat.model}. A blank line or Ctrl-D quits, Ctrl-C stops a reply.", flush=True)
    try:  # line editing and history for input(), where the platform has it
        import readline  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    while True:
        try:
            line = input("> ")
        except EOFError:
            print()
            return
        except KeyboardInterrupt:  # at the prompt: drop the line, keep going
            print()
            continue
        message = line.strip()
        if not message:
            return
        if message == "/reset":
            chat.reset()
            print("[conversation cleared]", flush=True)
            continue
        reply(chat, message, options)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the server


def _model_path(arg: str | None) -> Path:
    """The local file for MODEL: as given, pulled from the Hub, or the demo model."""
    from .hub import resolve_model
    from .paths import demo_model_path

    if arg is None:
        path = demo_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"the demo model is not at {path}: fetch it with "
                                    f"python build_scripts/fetch_lib.py --model smollm2, or give a model")
        return path
    return resolve_model(arg)


def start_server(args: argparse.Namespace, path: Path) -> ServerProcess:
    """`llamactypes.serve` for `path` in a child process; on a terminal its load progress is shown
    (the server writes progress lines, we redraw them on one line) until it answers."""
    show = sys.stderr.isatty()
    opts: dict[str, Any] = {"threads": args.threads, "log_level": "warning", "progress": "lines" if show else "off"}
    port = args.port or free_port()
    argv = serve_command(path, port, n_ctx=args.n_ctx, **opts)
    server = ServerProcess(argv, f"http://127.0.0.1:{port}", timeout=args.timeout, wait=False,
                           env=server_env(args.api_key))  # the key in the environment, never argv
    if show:
        _show_progress(server, args.timeout)
    server.wait_ready(args.timeout)
    return server


def _show_progress(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline and server.running:
        lines = [line for line in server.log(20).splitlines() if line.startswith(PROGRESS_PREFIX)]
        if lines and lines[-1] != last:
            last = lines[-1]
            sys.stderr.write("\r" + last[len("llamactypes: "):])
            sys.stderr.flush()
        if last.endswith(" 100%"):
            break
        time.sleep(0.1)
    if last:
        sys.stderr.write("\n")
        sys.stderr.flush()


def main(argv: list[str] | None = None, prog: str | None = None, require_model: bool = False) -> int:
    """One reply (with a MESSAGE) or an interactive chat; returns the exit code."""
    args = parse_args(argv, prog, require_model)
    # Ctrl-C stops a reply: install the handler explicitly, since a process started with SIGINT
    # ignored (a background job of a non-interactive shell) inherits that and never sees it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _terminate)  # the terminal went away
    options = {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}
    server = None
    try:
        if args.url:
            chat = Chat(base_url=args.url, api_key=args.api_key, system_prompt=args.system)
        else:
            path = _model_path(args.model)
            print(f"starting a server for {path} …", file=sys.stderr, flush=True)
            server = start_server(args, path)
            session = requests.Session()
            session.trust_env = False  # our own loopback server: never through an HTTP proxy
            chat = Chat(base_url=server.url + "/v1", api_key=args.api_key, system_prompt=args.system,
                        session=session)
    except (LlamaError, OSError, ServerStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if server is not None:
            server.stop()
        return 1
    except KeyboardInterrupt:
        if server is not None:
            server.stop()
        return 130
    try:
        if args.message:
            return 0 if reply(chat, args.message, options) else 1
        interactive(chat, options)
        return 0
    finally:
        chat.stop()
        if server is not None:
            server.stop()
