"""The client on the demo model (SmolLM2-135M-Instruct, ChatML, generic JSON tool calls): a spawned
server answering in stream and not, a Python tool executed in a round trip, the terminal chat in a
pseudo-terminal, and examples/rag.py on a few small files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pexpect
import pytest

from llamactypes import Chat

ROOT = Path(__file__).resolve().parents[2]
GREEDY = {"temperature": 0, "max_tokens": 24}


@pytest.fixture(scope="module")
def demo_chat(demo_path: Path) -> Iterator[Chat]:
    with Chat(demo_path, n_ctx=2048, timeout=120) as chat:
        yield chat


def test_chat_and_stream_agree(demo_chat: Chat) -> None:
    demo_chat.reset("Be brief.")
    answer = demo_chat.chat("What is the capital of France?", **GREEDY)
    assert "Paris" in answer
    demo_chat.reset("Be brief.")
    pieces = list(demo_chat.stream("What is the capital of France?", **GREEDY))
    assert len(pieces) > 2 and "".join(pieces) == answer
    follow = demo_chat.chat("And of Germany?", **GREEDY)  # the history is sent: a follow-up works
    assert "Berlin" in follow
    assert [m["role"] for m in demo_chat.messages] == ["system", "user", "assistant", "user", "assistant"]


def test_python_tool_round_trip(demo_chat: Chat) -> None:
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: the city name, e.g. "Paris".
        """
        calls.append(city)
        return f"Sunny and 21 degrees in {city}."

    demo_chat.reset(system_prompt="")
    demo_chat.tools.clear()
    demo_chat.register_tool(get_weather)
    demo_chat.max_tool_rounds = 1  # one call, then the model must answer in text
    try:
        demo_chat.chat("What is the weather in Paris?", tool_choice="required", temperature=0, max_tokens=64)
    finally:
        demo_chat.tools.clear()
        demo_chat.max_tool_rounds = Chat.max_tool_rounds
    assert calls and "paris" in calls[0].lower()
    roles = [m["role"] for m in demo_chat.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = demo_chat.messages[1]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and "city" in json.loads(call["function"]["arguments"])
    assert demo_chat.messages[2]["content"].startswith("Sunny") and demo_chat.messages[2]["tool_call_id"] == call["id"]


def test_terminal_chat_one_shot(demo_path: Path) -> None:
    child = pexpect.spawn(sys.executable, [str(ROOT / "examples" / "chat.py"), str(demo_path), "0", "2048",
                                           "What is the capital of France?", "--system", "Be brief.", "--temperature", "0",
                                           "--max-tokens", "24"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(24, 200))
    child.expect("Paris")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_terminal_chat_interactive_ctrl_c_stops_only_the_reply(demo_path: Path) -> None:
    child = pexpect.spawn(sys.executable, [str(ROOT / "examples" / "chat.py"), str(demo_path), "0", "2048",
                                           "--max-tokens", "400", "--temperature", "0"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(24, 200))
    child.expect("> ")
    child.sendline("Write a long story about a dragon who learns to cook.")
    child.expect(r"\w+ \w+ \w+ \w+")  # the reply is streaming
    child.sendintr()  # SIGINT to the terminal's foreground group: the chat, not the server
    child.expect(r"\[stopped\]")
    child.expect("> ")
    child.sendline("What is the capital of France? Answer in one word.")
    child.expect("Paris")  # the same server still answers
    child.expect("> ")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_rag_example(demo_path: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zorbia.txt").write_text("The capital of Zorbia is Quenth. Quenth is famous for its blue bridges.")
    (docs / "llamas.md").write_text("# Llamas\n\nLlamas live in the Andes and eat grass.")
    (docs / "tax.txt").write_text("Tax returns are due in April.\n\nLate returns pay a fee.")
    db = tmp_path / "index.sqlite"
    run = [sys.executable, str(ROOT / "examples" / "rag.py"), str(docs), "What is the capital of Zorbia?",
           "--model", str(demo_path), "--db", str(db), "--k", "1", "--max-tokens", "32", "--n-ctx", "2048"]
    out = subprocess.run([*run, "--manual"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "index: 3 files, 3 chunks (3 embedded, 0 removed)" in out.stderr
    assert "sources: zorbia.txt" in out.stdout  # the right file was retrieved
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 3
    again = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, timeout=300)  # tools, then fallback
    assert again.returncode == 0, again.stderr
    assert "(0 embedded, 0 removed)" in again.stderr
    assert "[retrieve:" in again.stderr or "retrieving manually" in again.stderr
