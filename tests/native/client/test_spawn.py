"""`Chat` with a real `python -m llamactypes.serve` on the tiny model: spawn and stop (no process
left after stop(), after del + GC, after the parent is killed), start errors, connect mode,
streaming, embeddings, and the --pool launcher."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from llamactypes import ServerError, ServerStartError
from llamactypes.client import Chat, ChatPool, free_port
from tests.fixtures.processes import alive, children_of, wait_gone

ROOT = Path(__file__).resolve().parents[3]
OPTS = {"n_ctx": 256, "threads": 1}


@pytest.fixture(scope="module")
def tiny_chat(tiny_model_path: Path) -> Iterator[Chat]:
    with Chat(tiny_model_path, timeout=120, **OPTS) as chat:
        yield chat


def test_spawn_chat_stream_and_stop(tiny_model_path: Path) -> None:
    chat = Chat(tiny_model_path, system_prompt="hi", timeout=120, **OPTS)
    assert chat.server is not None
    pid = chat.server.pid
    assert chat.health() and chat.model == "tiny-chatml"
    answer = chat.chat("hello", max_tokens=6, seed=1)
    assert isinstance(answer, str)
    pieces = list(chat.stream("more", max_tokens=6, seed=1))
    assert chat.last_response is not None and chat.last_response["finish_reason"] in ("stop", "length")
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert chat.messages[-1]["content"] == "".join(pieces)
    chat.stop()
    assert not alive(pid)


def test_del_and_gc_stop_the_server(tiny_model_path: Path) -> None:
    chat = Chat(tiny_model_path, timeout=120, **OPTS)
    assert chat.server is not None
    pid = chat.server.pid
    del chat
    gc.collect()
    assert wait_gone(pid, 15)


def test_killed_parent_leaves_no_server(tiny_model_path: Path, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from llamactypes import Chat
        chat = Chat({str(tiny_model_path)!r}, timeout=120, n_ctx=256, threads=1)
        print(chat.server.pid, flush=True)
        time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert alive(server_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(server_pid, 20), "the server outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()


def test_a_server_that_cannot_start_raises_with_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a GGUF file")
    with pytest.raises(ServerStartError) as info:
        Chat(bad, timeout=60, **OPTS)
    assert "exited with code" in str(info.value) and info.value.log.strip()


def test_connect_mode_streaming_and_errors(tiny_chat: Chat) -> None:
    other = Chat(base_url=tiny_chat.base_url)  # a second client of the same server
    assert other.server is None and other.models() == ["tiny-chatml"]
    pieces = list(other.stream("hello", max_tokens=8, temperature=0))
    assert len(pieces) >= 1
    other.reset()
    assert other.chat("hello", max_tokens=8, temperature=0) == "".join(pieces)  # greedy: same both ways
    with pytest.raises(ServerError) as info:
        other.chat("x" * 3000, max_tokens=4)  # longer than the 256-token context
    assert info.value.status == 400
    assert len(other.messages) == 2  # the failed turn left no trace
    other.stop()
    assert tiny_chat.health()  # stopping a connected Chat leaves the server alone


def test_embeddings_match_the_model(tiny_chat: Chat, tiny_model: object) -> None:
    vectors = tiny_chat.embed(["a cat", "the dog"])
    assert vectors.shape == (2, 64)
    assert np.allclose(vectors, tiny_model.embed(["a cat", "the dog"]), atol=1e-4)  # type: ignore[attr-defined]


def test_stop_mid_stream_then_continue(tiny_chat: Chat) -> None:
    tiny_chat.reset()
    stream = tiny_chat.stream("tell me everything", max_tokens=200, temperature=1.0, seed=3)
    first = next(stream)
    stream.close()
    assert tiny_chat.messages[-1]["content"].startswith(first)
    assert isinstance(tiny_chat.chat("next", max_tokens=4), str)


def test_pool_command_line(tiny_model_path: Path) -> None:
    port = free_port()
    while not all(_port_free(port + i) for i in range(2)):
        port = free_port()
    pool = subprocess.Popen([sys.executable, "-m", "llamactypes.serve", str(tiny_model_path), "--pool", "2",
                             "--port", str(port), "--n-ctx", "256"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        assert pool.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while f"  http://127.0.0.1:{port + 1}/v1\n" not in lines:  # the pool's own "ready at" list
            line = pool.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        assert any("1 thread(s) each" in line for line in lines)
        with ChatPool.connect(port=port, n=2) as chats:
            answers = chats.map(lambda chat, q: chat.chat(q, max_tokens=4), ["a", "b", "c"])
            assert len(answers) == 3
        children = children_of(pool.pid)
        assert len(children) == 2
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(30) == 0
        assert all(wait_gone(pid, 15) for pid in children)
    finally:
        pool.kill()
        pool.wait()


def test_spawned_pool_server_dies_with_a_killed_pool(tiny_model_path: Path) -> None:
    port = free_port()
    pool = subprocess.Popen([sys.executable, "-m", "llamactypes.serve", str(tiny_model_path), "--pool", "1",
                             "--port", str(port), "--n-ctx", "256"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        assert pool.stdout is not None
        while (line := pool.stdout.readline()) != f"  http://127.0.0.1:{port}/v1\n":
            assert line
        children = children_of(pool.pid)
        pool.send_signal(signal.SIGKILL)
        pool.wait(10)
        assert children and all(wait_gone(pid, 20) for pid in children)
    finally:
        pool.kill()
        pool.wait()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
