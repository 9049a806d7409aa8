"""`llamactypes`: one command with subcommands (the console script; `python -m llamactypes` too).

    llamactypes serve [MODEL] [options]          the OpenAI + Anthropic server, a chat page at /
    llamactypes chat [MODEL] ["message"]         chat in the terminal (one reply with a message)
    llamactypes pull owner/repo[:QUANT]          download a GGUF from the Hugging Face Hub
    llamactypes launch ...                       an agent CLI on a local model
    llamactypes fetch-lib [options]              build/install the pinned llama.cpp library
    llamactypes rpc-worker [options]             lend this machine to a main host

MODEL is a .gguf file or `owner/repo[:QUANT]` on the Hub. Each subcommand is a
`main(argv) -> int` in its own module, imported only when it runs, so
`llamactypes --help` is instant and a subcommand whose module is not installed
says so instead of failing on import.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from typing import Callable, Sequence

from ._version import LLAMA_CPP_TAG, __version__
from .errors import LlamaError

__all__ = ["main", "SUBCOMMANDS", "pull_main"]

# name -> ("module:function", one-line help); the function is main(argv: list[str] | None) -> int
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("llamactypes.serve:main", "serve a model: OpenAI and Anthropic APIs, a chat page at /"),
    "chat": ("llamactypes.terminal:main", "chat with a model in the terminal (one reply with a message)"),
    "pull": ("llamactypes.cli:pull_main", "download a GGUF model from the Hugging Face Hub by name"),
    "launch": ("llamactypes.launch:main", "start an agent CLI (Claude Code, Codex, ...) on a local model"),
    "fetch-lib": ("llamactypes.fetchlib:main", "build or install the pinned llama.cpp library (and demo model)"),
    "rpc-worker": ("llamactypes.rpc_worker:main", "run a llama.cpp RPC worker for a main host"),
}


def _parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<11} {text}" for name, (_, text) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="llamactypes", formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="llamactypes {" + ",".join(SUBCOMMANDS) + "} ...",
        description="A local GGUF model as a chat backend (llama.cpp through ctypes).",
        epilog=f"commands:\n{lines}\n\n'llamactypes COMMAND --help' shows a command's options.\n"
               "MODEL is a .gguf file or owner/repo[:QUANT] on the Hugging Face Hub.")
    parser.add_argument("--version", action="version", version=f"llamactypes {__version__} (llama.cpp {LLAMA_CPP_TAG})")
    parser.add_argument("command", nargs="?", help=argparse.SUPPRESS)
    return parser


def load_command(name: str) -> Callable[..., int]:
    """The `main` of subcommand `name`, imported now. Raises LookupError when its module is not installed."""
    target, _ = SUBCOMMANDS[name]
    module_name, function = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the module exists but something it needs does not
            raise
        raise LookupError(f"llamactypes {name}: not available in this installation "
                          f"(the module {module_name} is missing; update llamactypes)") from None
    return getattr(module, function)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `llamactypes COMMAND ARGS...`; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not args or args[0].startswith("-"):
        parser.parse_args(args)  # --help / --version exit here
        parser.print_help(sys.stderr)
        return 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        parser.error(f"unknown command {name!r} (choose from {', '.join(SUBCOMMANDS)})")
    try:
        command = load_command(name)
    except LookupError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    if "prog" in inspect.signature(command).parameters:
        return int(command(rest, prog=f"llamactypes {name}") or 0)
    return int(command(rest) or 0)


def pull_main(argv: Sequence[str] | None = None, prog: str = "llamactypes pull") -> int:
    """`llamactypes pull owner/repo[:QUANT]`: download into the Hub cache, print the local path."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Download a GGUF model from the Hugging Face Hub into its cache (HF_HUB_CACHE) "
                               "and print its local path. QUANT picks the file by quantization (case-insensitive, "
                               "e.g. Q4_K_M; default Q4_K_M when the repo has several) or names it exactly. "
                               "HF_TOKEN: gated or private repos; HF_ENDPOINT: a mirror.")
    parser.add_argument("model", metavar="owner/repo[:QUANT]")
    parser.add_argument("--revision", default="main", help="branch, tag or commit (default %(default)s)")
    parser.add_argument("--offline", action="store_true", help="only look in the cache (like HF_HUB_OFFLINE=1)")
    args = parser.parse_args(argv)
    from .hub import pull_model

    try:
        path = pull_model(args.model, revision=args.revision, offline=args.offline or None)
    except (LlamaError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
