"""Parallel sessions without a model: `ChatPool` hands out one Chat per server, `ServerPool`
starts fake servers together and leaves nothing behind."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from llamactypes import ClosedError, ServerStartError
from llamactypes.client import Chat, ChatPool, WSGIAdapter, free_port, threads_per_server
from llamactypes.pool import ServerPool, _parser
from tests.fixtures.fake_openai import FakeOpenAI
from tests.fixtures.processes import alive

ROOT = Path(__file__).resolve().parents[2]

FAKE = [sys.executable, "-m", "tests.fixtures.fake_serve", "--exit-on-stdin-eof"]


def _fake_chat(app: FakeOpenAI, host: str) -> Chat:
    session = requests.Session()
    session.mount(f"http://{host}/", WSGIAdapter(app))
    return Chat(base_url=f"http://{host}/v1", session=session)


def test_chat_pool_runs_work_on_every_chat_at_once() -> None:
    apps = [FakeOpenAI() for _ in range(3)]
    inside = []
    lock = threading.Lock()
    both_busy = threading.Barrier(3, timeout=10)

    def work(chat: Chat, question: str) -> str:
        with lock:
            inside.append(chat)
        both_busy.wait()  # proves three calls run at the same time, each on its own Chat
        return chat.chat(question)

    with ChatPool([_fake_chat(app, f"s{i}") for i, app in enumerate(apps)]) as pool:
        answers = pool.map(work, ["a", "b", "c"])
        assert answers == ["you said: a", "you said: b", "you said: c"]
        assert len(set(map(id, inside))) == 3
        assert all(len(app.requests) == 1 for app in apps)
        assert all(len(chat.messages) == 2 for chat in pool)  # each borrowed chat starts fresh
        with pool.session() as chat:
            assert chat.messages == []
    with pytest.raises(ClosedError):
        with pool.session():
            pass
    assert all(chat.closed for chat in pool)


def test_threads_are_split_between_servers() -> None:
    assert threads_per_server(2, cpus=2) == 1
    assert threads_per_server(3, cpus=16) == 5
    assert threads_per_server(4, cpus=2) == 1


def test_server_pool_starts_and_stops_fake_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    base = free_port()
    commands = [([*FAKE, "--port", str(base + i)], f"http://127.0.0.1:{base + i}") for i in range(2)]
    with ServerPool(commands, timeout=30) as servers:
        assert servers.urls == [f"http://127.0.0.1:{base}/v1", f"http://127.0.0.1:{base + 1}/v1"]
        pids = [s.pid for s in servers.servers]
        with servers.chat_pool() as chats:
            assert chats.map(lambda chat, q: chat.chat(q), ["x", "y"]) == ["you said: x", "you said: y"]
        assert servers.running()  # stopping the ChatPool leaves the servers alone
    time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)


def test_server_pool_failure_stops_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    good, bad = free_port(), free_port()
    commands = [([*FAKE, "--port", str(good)], f"http://127.0.0.1:{good}"),
                ([*FAKE, "--port", str(bad), "--fail"], f"http://127.0.0.1:{bad}")]
    started = []
    original = ServerPool.__init__

    def spy(self: ServerPool, *args: object, **kwargs: object) -> None:
        started.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ServerPool, "__init__", spy)
    with pytest.raises(ServerStartError, match="could not load"):
        ServerPool(commands, timeout=30)
    assert not any(alive(s.pid) for s in started[0].servers)


def test_pool_command_line_keeps_server_options_for_the_children() -> None:
    args, rest = _parser().parse_known_args(["m.gguf", "--pool", "3", "--n-ctx", "512", "--port", "9000"])
    assert (args.pool, args.port, args.threads) == (3, 9000, None)
    assert rest == ["m.gguf", "--n-ctx", "512"]
