"""`llamactypes launch claude|codex|opencode [MODEL.gguf] [--n-ctx N] [--url URL] [-- client args]`.

One command from a GGUF file to a coding agent on it: start `python -m llamactypes.serve`
on a free port (or use a running server with `--url`), write the client's configuration
into a private temporary directory (never the user's own files), run the client in the
foreground with the terminal, and stop the server when the client exits. The server is a
child tied to this process (`client._process.ServerProcess`): it also goes when we are killed.

Per client:
- **codex**: `CODEX_HOME` = a private dir with `config.toml` (a `llamactypes` provider,
  `wire_api = "responses"`, the server's real context window and an auto-compact limit).
- **opencode**: `OPENCODE_CONFIG` = a private `opencode.json` (an openai-compatible provider
  with `limit.context` / `limit.output` from the server's context).
- **claude**: environment variables only (`ANTHROPIC_BASE_URL`, ...; the auto-compact
  threshold scaled to the server's context; no telemetry). When a long session still
  overflows, the server answers Anthropic's own "prompt is too long" error and Claude Code compacts.

Each client needs a minimum context (its system prompt and tools): a smaller one is a
clear error before the client starts. A missing client binary says how to install it.
Client binaries are looked up as `$LLAMACTYPES_CLAUDE` / `$LLAMACTYPES_CODEX` /
`$LLAMACTYPES_OPENCODE`, then on `PATH`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import requests

from .client._process import ServerProcess, free_port, serve_command
from .errors import LlamaError, ServerStartError

__all__ = ["main", "ClientSpec", "CLIENTS", "LaunchError", "client_setup", "find_client"]

PROVIDER = "llamactypes"
API_KEY_ENV = "LLAMACTYPES_API_KEY"


class LaunchError(LlamaError, RuntimeError):
    """Launching could not go ahead (client missing, context too small, server down)."""


@dataclass(frozen=True)
class ClientSpec:
    """What launching one client needs to know."""

    name: str            # the command
    package: str         # its npm package
    min_ctx: int         # the smallest context it works in
    why: str             # what fills that context (for the error message)


CLIENTS = {
    "claude": ClientSpec("claude", "@anthropic-ai/claude-code", 32768,
                         "a default Claude Code session sends ~20k tokens of system prompt and tools; "
                         "with --bare ~1k (then 8192 is enough)"),
    "codex": ClientSpec("codex", "@openai/codex", 16384,
                        "Codex sends ~9.5k tokens of instructions and tools on every turn"),
    "opencode": ClientSpec("opencode", "opencode-ai", 16384,
                           "OpenCode sends ~8k tokens and compacts forever when its context limit is below ~16k"),
}
BARE_CLAUDE_MIN_CTX = 8192


def find_client(name: str) -> str:
    """The client's executable, or a `LaunchError` saying how to install it."""
    spec = CLIENTS[name]
    override = os.environ.get(f"LLAMACTYPES_{name.upper()}")
    if override:
        if shutil.which(override) is None:
            raise LaunchError(f"LLAMACTYPES_{name.upper()}={override} is not an executable file")
        return override
    found = shutil.which(name)
    if found is None:
        raise LaunchError(f"{name} is not installed (not found on PATH). Install it with:\n"
                          f"    npm install -g {spec.package}\n"
                          f"or point LLAMACTYPES_{name.upper()} at its executable.")
    return found


# ------------------------------------------------------------------ configurations


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def codex_config(base_url: str, model: str, n_ctx: int) -> str:
    """`config.toml` for a private CODEX_HOME."""
    return "\n".join([
        "# written by llamactypes launch (a private CODEX_HOME: your own ~/.codex is not used)",
        f"model = {_toml_str(model)}",
        f"model_provider = {_toml_str(PROVIDER)}",
        f"model_context_window = {n_ctx}",
        f"model_auto_compact_token_limit = {int(n_ctx * 0.8)}",
        "",
        f"[model_providers.{PROVIDER}]",
        f"name = {_toml_str('llamactypes (local)')}",
        f"base_url = {_toml_str(base_url + '/v1')}",
        f"wire_api = {_toml_str('responses')}",
        f"env_key = {_toml_str(API_KEY_ENV)}",
        "",
    ])


def opencode_config(base_url: str, model: str, n_ctx: int) -> dict[str, Any]:
    """`opencode.json` with one openai-compatible provider; limits from the server's real context."""
    output = max(1024, min(8192, n_ctx // 4))
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {PROVIDER: {
            "npm": "@ai-sdk/openai-compatible", "name": "llamactypes (local)",
            "options": {"baseURL": base_url + "/v1", "apiKey": "{env:" + API_KEY_ENV + "}"},
            "models": {model: {"name": f"{model} (llamactypes)", "tool_call": True,
                               "limit": {"context": n_ctx, "output": output}}},
        }},
        "model": f"{PROVIDER}/{model}", "small_model": f"{PROVIDER}/{model}",
        "autoupdate": False, "share": "disabled",
    }


# Claude Code's auto-compact: a threshold of CLAUDE_AUTOCOMPACT_PCT_OVERRIDE percent of its window,
# which CLAUDE_CODE_AUTO_COMPACT_WINDOW sets but never below 100k (read from Claude Code 2.1.197).
_CLAUDE_WINDOW = 100_000


def claude_env(base_url: str, model: str, n_ctx: int) -> dict[str, str]:
    """Environment variables pointing Claude Code at the server, compacting within its context."""
    max_output = max(1024, min(8192, n_ctx // 4))
    window = _CLAUDE_WINDOW - max_output
    pct = max(1.0, round(100 * 0.75 * (n_ctx - max_output) / window, 2))
    tuning = {
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW": str(_CLAUDE_WINDOW),
        "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE": str(pct),
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(max_output),
        "CLAUDE_STREAM_IDLE_TIMEOUT_MS": "1800000",       # long prompts on a CPU
    }
    tuning = {key: os.environ.get(key) or value for key, value in tuning.items()}  # the user's own values win
    return {
        **tuning,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": os.environ.get(API_KEY_ENV) or "local",
        "ANTHROPIC_MODEL": model, "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model, "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",            # no per-session header: the prompt prefix stays cached
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, updates or error reports
        "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
    }


def client_setup(name: str, base_url: str, model: str, n_ctx: int, home: Path) -> dict[str, str]:
    """Write the client's configuration under `home` (private) and return the environment to add."""
    env = {API_KEY_ENV: os.environ.get(API_KEY_ENV) or "local"}
    if name == "codex":
        codex_home = home / "codex"
        codex_home.mkdir(mode=0o700)
        (codex_home / "config.toml").write_text(codex_config(base_url, model, n_ctx))
        env["CODEX_HOME"] = str(codex_home)
    elif name == "opencode":
        path = home / "opencode.json"
        path.write_text(json.dumps(opencode_config(base_url, model, n_ctx), indent=2))
        env["OPENCODE_CONFIG"] = str(path)
    else:
        env.update(claude_env(base_url, model, n_ctx))
    return env


# ------------------------------------------------------------------ the server


def server_info(base_url: str) -> tuple[str, int]:
    """The served model's id and context size, from `GET /v1/models`."""
    with requests.Session() as session:
        session.trust_env = False
        key = os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            response = session.get(base_url + "/v1/models", headers=headers, timeout=10)
            response.raise_for_status()
            card = response.json()["data"][0]
        except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
            raise LaunchError(f"the server at {base_url} did not describe its model (GET /v1/models): {exc}") from None
    n_ctx = (card.get("meta") or {}).get("n_ctx")
    if not isinstance(n_ctx, int):
        raise LaunchError(f"the server at {base_url} does not report its context size (meta.n_ctx): "
                          "is it a llamactypes server?")
    return str(card.get("id") or "local"), n_ctx


def start_server(model: str | None, n_ctx: int, threads: int | None, timeout: float) -> ServerProcess:
    """`python -m llamactypes.serve` on a free port, tied to this process; ready when it returns."""
    if model is not None and not Path(model).expanduser().is_file():
        raise LaunchError(f"no model file at {model}")
    port = free_port()
    argv = serve_command(model, port, n_ctx=n_ctx, threads=threads, log_level="warning")
    print(f"llamactypes launch: starting the server (context {n_ctx} tokens) ...", file=sys.stderr, flush=True)
    return ServerProcess(argv, f"http://127.0.0.1:{port}", timeout=timeout)


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _run_client(argv: Sequence[str], env: dict[str, str]) -> int:
    """Run the client in the foreground; Ctrl-C goes to it (it shares our terminal), not to us.
    SIGTERM/SIGHUP to us end the client too (`subprocess.call` kills it when interrupted), then
    the server and the private directory go in the callers' `finally` blocks."""
    previous = {sig: signal.signal(sig, handler) for sig, handler in
                ((signal.SIGINT, signal.SIG_IGN), (signal.SIGTERM, _terminated), (signal.SIGHUP, _terminated))}
    try:
        return subprocess.call(list(argv), env=env)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llamactypes launch",
        description="Start a coding agent (Claude Code, Codex, OpenCode) on a local model: the server runs "
                    "while the client does; the client's configuration lives in a private temporary directory.",
        epilog="Arguments after -- go to the client, e.g.:  llamactypes launch codex model.gguf -- exec 'hi'")
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("model", nargs="?", help="a .gguf file (default: the demo model)")
    parser.add_argument("--n-ctx", type=int, default=None,
                        help="context length in tokens (default: the client's minimum)")
    parser.add_argument("--url", default=None, help="use a running llamactypes server instead of starting one")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the server")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the server to load")
    return parser


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    args = list(argv)
    if "--" in args:
        i = args.index("--")
        return args[:i], args[i + 1:]
    return args, []


def _min_ctx(client: str, client_args: Sequence[str]) -> int:
    if client == "claude" and "--bare" in client_args:
        return BARE_CLAUDE_MIN_CTX
    return CLIENTS[client].min_ctx


def launch(client: str, *, model: str | None, n_ctx: int | None, url: str | None, threads: int | None,
           timeout: float, client_args: Sequence[str],
           run_client: Callable[[Sequence[str], dict[str, str]], int] = _run_client) -> int:
    """Start (or reach) the server, configure the client privately, run it; return its exit code."""
    executable = find_client(client)
    need = _min_ctx(client, client_args)
    if url is not None and model is not None:
        raise LaunchError("give a MODEL to start a server, or --url to use a running one, not both")
    if n_ctx is not None and n_ctx < need and url is None:
        raise LaunchError(f"--n-ctx {n_ctx} is too small for {client}: it needs at least {need} tokens "
                          f"({CLIENTS[client].why}). Use --n-ctx {need} or more.")
    server = None
    try:
        if url is None:
            server = start_server(model, n_ctx or need, threads, timeout)
            url = server.url
        url = url.rstrip("/")
        model_id, real_ctx = server_info(url)
        if real_ctx < need:
            raise LaunchError(f"the server's context is {real_ctx} tokens, too small for {client}: it needs at "
                              f"least {need} ({CLIENTS[client].why}). Restart the server with --n-ctx {need}.")
        with tempfile.TemporaryDirectory(prefix="llamactypes-launch-") as home:
            os.chmod(home, 0o700)
            env = {**os.environ, **client_setup(client, url, model_id, real_ctx, Path(home))}
            print(f"llamactypes launch: {client} on {model_id} at {url} (context {real_ctx} tokens)",
                  file=sys.stderr, flush=True)
            return run_client([executable, *client_args], env)
    finally:
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    """`llamactypes launch ...` / `python -m llamactypes.launch ...`; returns the client's exit code
    (2 for a launch error, with the reason on stderr)."""
    ours, client_args = _split(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(ours)
    try:
        return launch(args.client, model=args.model, n_ctx=args.n_ctx, url=args.url, threads=args.threads,
                      timeout=args.timeout, client_args=client_args)
    except (LaunchError, ServerStartError) as exc:
        print(f"llamactypes launch: {exc}", file=sys.stderr)
        log = getattr(exc, "log", "")
        if log:
            print(log, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
