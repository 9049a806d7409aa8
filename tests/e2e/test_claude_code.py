"""The real Claude Code on the demo model with a small context: it compacts on overflow and goes on,
instead of stopping with an API error (the server answers Anthropic's own "prompt is too long").

Skipped unless Claude Code is found: `$LLAMACTYPES_CLAUDE` (e.g. the npm package's
`node_modules/@anthropic-ai/claude-code/bin/claude.exe`) or `claude` on PATH. Slow: the demo model calls
a tool on every turn, so the conversation grows until it overflows 8192 tokens (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Sequence

import pytest

from llamactypes import launch

CLAUDE = os.environ.get("LLAMACTYPES_CLAUDE") or shutil.which("claude")
NO_CLAUDE = ("Claude Code is not installed (npm install @anthropic-ai/claude-code, then set LLAMACTYPES_CLAUDE "
             "to its binary or put claude on PATH)")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CLAUDE is None, reason=NO_CLAUDE)]

_CLOSED = "http://127.0.0.1:9"


def test_claude_code_compacts_on_overflow(demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(key, _CLOSED)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("LLAMACTYPES_CLAUDE", str(CLAUDE))
    for i in range(40):  # something to read: the model's tool calls fill the context
        (tmp_path / f"notes{i}.txt").write_text(f"Note {i}: " + "the quick brown fox jumps over the lazy dog. " * 20)
    events: list[dict[str, Any]] = []
    output: list[str] = []

    def compacted_and_went_on() -> bool:
        kinds = [(e.get("type"), e.get("subtype")) for e in events]
        if ("system", "compact_boundary") not in kinds:
            return False
        after = kinds[kinds.index(("system", "compact_boundary")) + 1:]
        return any(kind == "assistant" for kind, _ in after)

    def watch(argv: Sequence[str], env: dict[str, str]) -> int:
        proc = subprocess.Popen(list(argv), env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        timer = threading.Timer(900, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line)
                if line.startswith("{"):
                    events.append(json.loads(line))
                    if compacted_and_went_on() or events[-1].get("type") == "result":
                        break
        finally:
            timer.cancel()
            proc.kill()
            proc.wait()
        return 0

    launch.launch("claude", model=str(demo_path), n_ctx=8192, url=None, threads=2, timeout=120,
                  client_args=["--bare", "-p", "Read every notes*.txt file here, one by one, and summarize them.",
                               "--output-format", "stream-json", "--verbose", "--max-turns", "400"],
                  run_client=watch)
    results = [e for e in events if e.get("type") == "result"]
    assert not any("Prompt is too long" in json.dumps(r) or r.get("is_error") for r in results), results
    assert compacted_and_went_on(), "".join(output)[-4000:]
