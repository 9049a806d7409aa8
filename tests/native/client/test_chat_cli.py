"""examples/chat.py spawning a real server for the tiny model, in a pseudo-terminal: one-shot and
interactive with a blank-line exit; the spawned server is gone afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect

from tests.fixtures.processes import alive, children_of, wait_gone

ROOT = Path(__file__).resolve().parents[3]
CLI = str(ROOT / "examples" / "chat.py")


def spawn(*args: str) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, [CLI, *args, "--threads", "1", "--max-tokens", "8"], cwd=str(ROOT),
                         encoding="utf-8", timeout=120, dimensions=(24, 200))


def test_one_shot(tiny_model_path: Path) -> None:
    child = spawn(str(tiny_model_path), "0", "256", "Why is the sky blue?")
    child.expect("starting a server")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_interactive_blank_line_exit_stops_the_server(tiny_model_path: Path) -> None:
    child = spawn(str(tiny_model_path), "--system", "Be brief.")
    child.expect("Chatting with tiny-chatml")
    child.expect("> ")
    servers = children_of(child.pid)
    assert len(servers) == 1 and alive(servers[0])
    child.sendline("hello")
    child.expect("> ")  # a reply (noise from the tiny model), then the prompt again
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert wait_gone(servers[0], 10)
