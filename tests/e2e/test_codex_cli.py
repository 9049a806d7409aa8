"""The real Codex CLI against the server on the demo model, through `llamactypes launch`.

Skipped unless the codex binary is found: `$LLAMACTYPES_CODEX` (e.g. the npm package's
`node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex`) or `codex` on PATH.
Nothing leaves the machine: HTTPS_PROXY points at a closed local port, loopback stays direct.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

import pytest

from llamactypes import launch

CODEX = os.environ.get("LLAMACTYPES_CODEX") or shutil.which("codex")
NO_CODEX = ("the Codex CLI is not installed (npm install @openai/codex, then set LLAMACTYPES_CODEX to its "
            "binary or put codex on PATH)")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CODEX is None, reason=NO_CODEX)]

_CLOSED = "http://127.0.0.1:9"
OFFLINE = {"HTTPS_PROXY": _CLOSED, "HTTP_PROXY": _CLOSED, "NO_PROXY": "127.0.0.1,localhost",
           "https_proxy": _CLOSED, "http_proxy": _CLOSED, "no_proxy": "127.0.0.1,localhost"}


def run_codex(demo_path: Path, tmp_path: Path, prompt: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`codex exec --json` through launch; returns Codex's JSON events."""
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LLAMACTYPES_CODEX", str(CODEX))
    result: dict[str, Any] = {}

    def capture(argv: Sequence[str], env: dict[str, str]) -> int:
        proc = subprocess.run(list(argv), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        result.update(stdout=proc.stdout, stderr=proc.stderr)
        return proc.returncode

    code = launch.launch("codex", model=str(demo_path), n_ctx=16384, url=None, threads=2, timeout=120,
                         client_args=["exec", "--json", "--skip-git-repo-check", prompt], run_client=capture)
    events = [json.loads(line) for line in result["stdout"].splitlines() if line.startswith("{")]
    assert code == 0, f"codex exited {code}\nstdout:\n{result['stdout'][-3000:]}\nstderr:\n{result['stderr'][-3000:]}"
    return events


def test_codex_exec_completes_a_turn(demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = run_codex(demo_path, tmp_path, "Say hello.", monkeypatch)
    types = [e.get("type") for e in events]
    assert "turn.completed" in types, types
    assert not [e for e in events if e.get("type") in ("error", "turn.failed")], events


def test_codex_shell_tool_round_trip(demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = run_codex(demo_path, tmp_path, "Run the shell command `echo hello` and tell me what it printed.",
                       monkeypatch)
    commands = [e["item"] for e in events
                if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "command_execution"]
    assert commands, [e.get("type") for e in events]   # the model called the shell, Codex ran it, sent it back
    assert "turn.completed" in [e.get("type") for e in events]
