"""The installed `llamactypes` console script against the demo model: a one-shot chat with no model
argument (the demo model is the default) answers the question."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def console_script() -> list[str]:
    """The console script pip installed next to this interpreter (else `python -m llamactypes`)."""
    script = Path(sys.executable).parent / "llamactypes"
    if script.is_file():
        return [str(script)]
    found = shutil.which("llamactypes")
    return [found] if found else [sys.executable, "-m", "llamactypes"]


@pytest.mark.slow
def test_console_script_one_shot_chat_with_the_demo_model(demo_path: Path) -> None:
    out = subprocess.run([*console_script(), "chat", "What is the capital of France?", "--system", "Be brief.",
                          "--temperature", "0", "--max-tokens", "24"],
                         capture_output=True, text=True, cwd=ROOT, timeout=180,
                         env={**os.environ, "LLAMACTYPES_DEMO_MODEL": str(demo_path)})
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert "starting a server for" in out.stderr and "loading" not in out.stderr  # not a terminal: no progress
