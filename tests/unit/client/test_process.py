"""Server child processes: readiness, start errors, and no process left behind — after stop(),
after garbage collection, and after the parent is killed (the stdin lifeline). Uses a fake
server (tests/fixtures/fake_serve.py) so no model is needed."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llamactypes import ServerStartError
from llamactypes.client import Chat, ServerProcess, free_port, serve_command
from llamactypes.client import _process
from tests.fixtures.processes import alive, wait_gone

ROOT = Path(__file__).resolve().parents[3]


def fake_argv(*extra: str, port: int | None = None) -> tuple[list[str], str]:
    port = port or free_port()
    argv = [sys.executable, "-m", "tests.fixtures.fake_serve", "--port", str(port), "--exit-on-stdin-eof", *extra]
    return argv, f"http://127.0.0.1:{port}"


def start(*extra: str, timeout: float = 30) -> ServerProcess:
    argv, url = fake_argv(*extra)
    return ServerProcess(argv, url, timeout=timeout, cwd=ROOT)


def test_start_and_stop_leaves_no_process() -> None:
    server = start()
    assert server.running and "listening on" in server.log()
    pid = server.pid
    assert server.stop() is not None
    assert not alive(pid)
    server.stop()  # idempotent


def test_garbage_collection_stops_the_server() -> None:
    server = start()
    pid = server.pid
    del server
    gc.collect()
    assert wait_gone(pid, 5)


def test_killed_parent_leaves_no_orphan(tmp_path: Path) -> None:
    argv, url = fake_argv()
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from llamactypes.client import ServerProcess
        server = ServerProcess({argv!r}, {url!r}, timeout=30, cwd={str(ROOT)!r})
        print(server.pid, flush=True)
        time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(child), "the server outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()


def test_a_server_that_exits_raises_with_its_log() -> None:
    with pytest.raises(ServerStartError, match="exited with code 3") as info:
        start("--fail")
    assert "could not load the model (on purpose)" in info.value.log
    assert "could not load the model" in str(info.value)


def test_a_server_that_never_answers_times_out_and_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[ServerProcess] = []
    original = ServerProcess.__init__

    def spy(self: ServerProcess, *args: object, **kwargs: object) -> None:
        started.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ServerProcess, "__init__", spy)
    with pytest.raises(ServerStartError, match="did not answer"):
        start("--hang", timeout=1.5)
    assert not alive(started[0].pid)


def test_serve_command_flags() -> None:
    argv = serve_command("m.gguf", 8123, n_ctx=512, threads=2, enable_thinking=True, api_key=None,
                         verbose=False, alias="tiny", python="py")
    assert argv == ["py", "-m", "llamactypes.serve", "m.gguf", "--host", "127.0.0.1", "--port", "8123",
                    "--n-ctx", "512", "--threads", "2", "--enable-thinking", "--alias", "tiny",
                    "--exit-on-stdin-eof"]


def test_chat_spawn_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    seen: list[list[str]] = []

    def fake_command(model_path: object, port: int, **opts: object) -> list[str]:
        seen.append(serve_command(model_path, port, **opts))  # type: ignore[arg-type]
        return fake_argv(str(model_path), port=port)[0]

    monkeypatch.setattr(_process, "serve_command", fake_command)
    monkeypatch.chdir(ROOT)
    with Chat(model, n_ctx=256, threads=1, system_prompt="hi") as chat:
        assert chat.server is not None
        pid = chat.server.pid
        assert chat.chat("ping") == "you said: ping"
        assert chat.model == "fake-model"
    assert not alive(pid)
    assert "--n-ctx" in seen[0] and "--threads" in seen[0] and "--exit-on-stdin-eof" in seen[0]
    with pytest.raises(FileNotFoundError):
        Chat(tmp_path / "missing.gguf")


def test_the_api_key_travels_in_the_environment_never_on_the_command_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="server_env"):
        serve_command("m.gguf", 8123, api_key="sekret", python="py")
    assert _process.server_env("sekret", {"PATH": "/bin"}) == {"PATH": "/bin", "LLAMACTYPES_API_KEY": "sekret"}
    assert _process.server_env(None) is None
    with pytest.raises(ValueError, match="empty"):
        _process.server_env("")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    seen: list[tuple[list[str], dict[str, str] | None]] = []

    def spy(self: ServerProcess, argv: list[str], url: str, **kwargs: object) -> None:
        seen.append((argv, kwargs.get("env")))  # type: ignore[arg-type]

    monkeypatch.setattr(ServerProcess, "__init__", spy)
    _process.spawn_server(model, port=8123, api_key="sekret")
    argv, env = seen[0]
    assert "sekret" not in " ".join(argv) and env is not None and env["LLAMACTYPES_API_KEY"] == "sekret"
