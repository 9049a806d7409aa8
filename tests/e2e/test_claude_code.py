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
from pathlib import Path
from typing import Any

import pytest

from llamactypes import launch
from tests.fixtures.agent_client import JsonLineWatch, offline

CLAUDE = os.environ.get("LLAMACTYPES_CLAUDE") or shutil.which("claude")
NO_CLAUDE = ("Claude Code is not installed (npm install @anthropic-ai/claude-code, then set LLAMACTYPES_CLAUDE "
             "to its binary or put claude on PATH)")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CLAUDE is None, reason=NO_CLAUDE)]


def test_claude_code_compacts_on_overflow(demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)
    monkeypatch.setenv("LLAMACTYPES_CLAUDE", str(CLAUDE))
    for i in range(40):  # something to read: the model's tool calls fill the context
        (tmp_path / f"notes{i}.txt").write_text(f"Note {i}: " + "the quick brown fox jumps over the lazy dog. " * 20)

    def compacted_and_went_on(events: list[dict[str, Any]]) -> bool:
        kinds = [(e.get("type"), e.get("subtype")) for e in events]
        if ("system", "compact_boundary") not in kinds:
            return False
        after = kinds[kinds.index(("system", "compact_boundary")) + 1:]
        return any(kind == "assistant" for kind, _ in after)

    watch = JsonLineWatch(tmp_path, lambda ev: compacted_and_went_on(ev) or ev[-1].get("type") == "result", 900)
    launch.launch("claude", model=str(demo_path), n_ctx=8192, url=None, threads=2, timeout=120,
                  client_args=["--bare", "-p", "Read every notes*.txt file here, one by one, and summarize them.",
                               "--output-format", "stream-json", "--verbose", "--max-turns", "400"],
                  run_client=watch)
    results = [e for e in watch.events if e.get("type") == "result"]
    assert not any("Prompt is too long" in json.dumps(r) or r.get("is_error") for r in results), results
    assert compacted_and_went_on(watch.events), watch.tail()
