"""examples/chat.py driven in a pseudo-terminal against the fake server (connect mode, no model):
one-shot, interactive with a blank-line exit, Ctrl-C stopping one reply, Ctrl-D, bad arguments."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pexpect
import pytest

from llamactypes.client import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [str(ROOT / "examples" / "chat.py")]


@pytest.fixture(scope="module")
def slow_url() -> Iterator[str]:
    """The fake server, sending each stream piece 0.15 s apart (time to press Ctrl-C)."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.fixtures.fake_serve", "--port", str(port), "--exit-on-stdin-eof",
            "--slow", "0.15"]
    with ServerProcess(argv, f"http://127.0.0.1:{port}", timeout=30, cwd=ROOT) as server:
        yield f"{server.url}/v1"


def spawn(*args: str, ignore_sigint: bool = False) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, CLI + list(args), cwd=str(ROOT), encoding="utf-8", timeout=30,
                         dimensions=(24, 200),
                         preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)


def test_one_shot(slow_url: str) -> None:
    child = spawn("--url", slow_url, "Why", "is", "the", "sky", "blue?")
    child.expect("you said: Why is the sky blue\\?")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["sigint-default", "started-with-sigint-ignored"])
def test_interactive_blank_line_quits_and_ctrl_c_stops_one_reply(slow_url: str, ignore_sigint: bool) -> None:
    child = spawn("--url", slow_url, "--system", "Be brief.", ignore_sigint=ignore_sigint)
    child.expect("Chatting with fake-model")
    child.expect("> ")
    child.sendline("one two three four five six seven")
    child.expect("you said: one")  # the reply is streaming
    child.sendintr()
    child.expect(r"\[stopped\]")
    child.expect("> ")  # still running, ready for the next message
    child.sendline("hello")
    child.expect("you said: hello")
    child.expect("> ")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_d_quits(slow_url: str) -> None:
    child = spawn("--url", slow_url)
    child.expect("> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.parametrize("args, message", [
    ([], "give a model file"),
    (["missing.gguf"], "no model file at missing.gguf"),
    (["--url", "http://x/v1", "m.gguf"], "not both"),
    (["--nope"], "unrecognized arguments"),
])
def test_bad_arguments_print_usage_and_exit_2(args: list[str], message: str) -> None:
    out = subprocess.run([sys.executable, *CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert out.returncode == 2
    assert "usage:" in out.stderr and message in out.stderr
