#!/usr/bin/env python3
"""Chat with a GGUF model in the terminal (replies stream as they are generated).

    python examples/chat.py model.gguf                       # spawn a server, interactive prompt
    python examples/chat.py model.gguf 8080 4096             # … on port 8080 (0: any) with a 4096-token context
    python examples/chat.py model.gguf "Why is the sky blue?"   # one reply, then exit
    python examples/chat.py --url http://127.0.0.1:11434/v1  # talk to a running server instead

A blank line or Ctrl-D quits; Ctrl-C stops the reply being written (not the program);
``/reset`` starts the conversation again. A spawned server is always stopped on exit.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from llamactypes import Chat, LlamaError, ServerError

try:  # line editing and history for input(), where the platform has it
    import readline  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options plus the positional ``MODEL [PORT] [N_CTX] [MESSAGE…]`` (exits 2 with usage when wrong)."""
    parser = argparse.ArgumentParser(
        usage="%(prog)s MODEL.gguf [PORT] [N_CTX] [MESSAGE ...] [options]\n"
              "       %(prog)s --url URL [MESSAGE ...] [options]",
        description=__doc__.split("\n\n")[0])
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
        if not rest:
            parser.error("give a model file (or --url to connect to a running server)")
        args.model = rest.pop(0)
        if not Path(args.model).is_file():
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
    print(f"Chatting with {chat.model}. A blank line or Ctrl-D quits, Ctrl-C stops a reply.", flush=True)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C stops a reply: install the handler explicitly, since a process started with SIGINT
    # ignored (a background job of a non-interactive shell) inherits that and never sees it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _terminate)  # the terminal went away
    options = {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}
    try:
        if args.url:
            chat = Chat(base_url=args.url, api_key=args.api_key, system_prompt=args.system)
        else:
            print(f"starting a server for {args.model} …", file=sys.stderr, flush=True)
            chat = Chat(args.model, port=args.port, n_ctx=args.n_ctx, timeout=args.timeout,
                        api_key=args.api_key, system_prompt=args.system, threads=args.threads)
    except (LlamaError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        if args.message:
            return 0 if reply(chat, args.message, options) else 1
        interactive(chat, options)
        return 0
    finally:
        chat.stop()


if __name__ == "__main__":
    sys.exit(main())
