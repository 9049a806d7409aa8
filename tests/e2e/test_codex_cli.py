"""The real Codex CLI against the server on the demo model, through `llamactypes launch`.

Skipped unless the codex binary is found: `$LLAMACTYPES_CODEX` (e.g. the npm package's
`node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex`) or `codex` on PATH.
Nothing leaves the machine: HTTPS_PROXY points at a closed local port, loopback stays direct.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from llamactypes import launch
from tests.fixtures.agent_client import JsonLineWatch, offline

CODEX = os.environ.get("LLAMACTYPES_CODEX") or shutil.which("codex")
NO_CODEX = ("the Codex CLI is not installed (npm install @openai/codex, then set LLAMACTYPES_CODEX to its "
            "binary or put codex on PATH)")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CODEX is None, reason=NO_CODEX)]


def run_codex(demo_path: Path, tmp_path: Path, prompt: str, monkeypatch: pytest.MonkeyPatch,
              done: Callable[[list[dict[str, Any]]], bool], timeout: float = 600) -> list[dict[str, Any]]:
    """`codex exec --json` through launch, read until `done(events)` (then Codex is stopped), Codex
    exits, or `timeout` seconds pass; returns Codex's JSON events."""
    offline(monkeypatch)
    monkeypatch.setenv("LLAMACTYPES_CODEX", str(CODEX))
    watch = JsonLineWatch(tmp_path, done, timeout)
    launch.launch("codex", model=str(demo_path), n_ctx=16384, url=None, threads=2, timeout=120,
                  client_args=["exec", "--json", "--skip-git-repo-check", prompt], run_client=watch)
    assert done(watch.events), watch.tail()
    return watch.events


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("type")) for e in events]


def _commands(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events
            if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "command_execution"]


def test_codex_exec_completes_a_turn(demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = run_codex(demo_path, tmp_path, "Reply with the single word OK. Do not run any command.", monkeypatch,
                       done=lambda ev: "turn.completed" in _types(ev) or "turn.failed" in _types(ev))
    assert "turn.completed" in _types(events), events


def test_codex_shell_tool_round_trip(demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model calls the shell, Codex runs it and sends the output back, the model acts on it
    (a second command, or the end of the turn)."""
    events = run_codex(demo_path, tmp_path, "Run the shell command: echo hello", monkeypatch,
                       done=lambda ev: len(_commands(ev)) >= 2 or (_commands(ev) and "turn.completed" in _types(ev)))
    assert _commands(events)[0]["status"] in ("completed", "failed")
    assert "turn.failed" not in _types(events) and "error" not in _types(events)
