"""`llamactypes launch`: a fake client binary records what it was given; a fake server stands in for
`python -m llamactypes.serve` (no model). Configs are read back; the server is gone after the client."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

try:
    import tomllib
except ImportError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

from llamactypes import launch
from llamactypes.launch import main

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake claude/codex/opencode binaries on PATH; returns the record file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("claude", "codex", "opencode"):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\nexec {sys.executable} {FIXTURES / 'fake_agent.py'} \"$@\"\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "record.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_AGENT_RECORD", str(record))
    for name in ("CLAUDE", "CODEX", "OPENCODE"):
        monkeypatch.delenv(f"LLAMACTYPES_{name}", raising=False)
    monkeypatch.delenv("LLAMACTYPES_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the user's own files: must stay untouched
    (tmp_path / "home").mkdir()
    monkeypatch.setattr(launch, "serve_command", _fake_serve_command)
    # the fake server is `python -m tests.fixtures...`, started in launch's private directory: it
    # finds this checkout's `tests` through PYTHONPATH, not through the working directory
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return record


def _fake_serve_command(model: Any, port: int, n_ctx: int | None = None, **opts: Any) -> list[str]:
    argv = [sys.executable, "-m", "tests.fixtures.fake_agent_server"]  # as test_pool runs fake_serve
    if model:
        argv.append(str(model))
    return argv + ["--port", str(port), "--n-ctx", str(n_ctx), "--exit-on-stdin-eof"]


def read(record: Path) -> dict[str, Any]:
    return json.loads(record.read_text())


def server_gone(url: str) -> bool:
    try:
        requests.get(url + "/health", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def test_codex_gets_a_private_codex_home_with_the_responses_provider(agent: Path, tmp_path: Path) -> None:
    assert main(["codex", "--", "exec", "--skip-git-repo-check", "hi there"]) == 0
    rec = read(agent)
    assert rec["argv"] == ["exec", "--skip-git-repo-check", "hi there"]
    assert rec["health"] == 200
    config = tomllib.loads(rec["files"]["config.toml"])
    provider = config["model_providers"]["llamactypes"]
    assert config["model_provider"] == "llamactypes" and config["model"] == "fake-agent-model"
    assert provider["wire_api"] == "responses" and provider["base_url"] == rec["base_url"] + "/v1"
    assert config["model_context_window"] == 16384 and config["model_auto_compact_token_limit"] < 16384
    assert rec["env"][provider["env_key"]] == "local"
    assert rec["files"]["codex_home_mode"] == "0o700"
    assert not Path(rec["env"]["CODEX_HOME"]).exists()          # the private dir is cleaned up
    assert list((tmp_path / "home").iterdir()) == []            # the user's home untouched
    assert server_gone(rec["base_url"])


def test_opencode_config_has_the_servers_real_context(agent: Path) -> None:
    assert main(["opencode", "--n-ctx", "20000", "--", "run", "hello"]) == 0
    rec = read(agent)
    config = json.loads(rec["files"]["opencode.json"])
    model = config["provider"]["llamactypes"]["models"]["fake-agent-model"]
    assert model["limit"]["context"] == 20000 and 0 < model["limit"]["output"] < 20000
    assert config["model"] == "llamactypes/fake-agent-model"
    assert config["provider"]["llamactypes"]["options"]["baseURL"] == rec["base_url"] + "/v1"
    assert rec["argv"] == ["run", "hello"] and server_gone(rec["base_url"])


def test_claude_gets_environment_variables(agent: Path) -> None:
    assert main(["claude", "--n-ctx", "8192", "--", "--bare", "-p", "hi"]) == 0
    rec = read(agent)
    env = rec["env"]
    assert env["ANTHROPIC_BASE_URL"] == rec["base_url"] and env["ANTHROPIC_MODEL"] == "fake-agent-model"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    # auto-compact at ~3/4 of the real context: the percentage of Claude Code's 100k window
    threshold = float(env["CLAUDE_AUTOCOMPACT_PCT_OVERRIDE"]) / 100 * (
        int(env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"]) - int(env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"]))
    assert 0.5 * 8192 < threshold + int(env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"]) < 8192
    assert server_gone(rec["base_url"])


def test_claude_tuning_the_user_set_wins(agent: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_AUTOCOMPACT_PCT_OVERRIDE", "100")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://elsewhere.example")
    assert main(["claude", "--", "-p", "hi"]) == 0
    env = read(agent)["env"]
    assert env["CLAUDE_AUTOCOMPACT_PCT_OVERRIDE"] == "100" and env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1")


@pytest.mark.parametrize("how, code", [(["--exit", "7"], 7), (["--die"], -9)])
def test_the_server_is_gone_when_the_client_exits_or_is_killed(agent: Path, how: list[str], code: int) -> None:
    assert main(["codex", "--", *how]) == code
    assert server_gone(read(agent)["base_url"])


def test_url_uses_a_running_server_and_checks_its_context(agent: Path, capsys: Any) -> None:
    server = launch.ServerProcess(_fake_serve_command(None, port := launch.free_port(), n_ctx=4096),
                                  f"http://127.0.0.1:{port}")
    try:
        assert main(["codex", "--url", server.url]) == 2
        assert "context is 4096 tokens, too small for codex" in capsys.readouterr().err
        assert main(["claude", "--url", server.url, "--", "--bare"]) == 2   # 4096 < 8192 even bare
        server2 = launch.ServerProcess(_fake_serve_command(None, port2 := launch.free_port(), n_ctx=16384),
                                       f"http://127.0.0.1:{port2}")
        try:
            assert main(["codex", "--url", server2.url + "/"]) == 0
            assert read(agent)["base_url"] == server2.url and server2.running  # not ours to stop
        finally:
            server2.stop()
    finally:
        server.stop()


def test_clear_errors(agent: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path) -> None:
    assert main(["codex", "--n-ctx", "4096"]) == 2
    assert "--n-ctx 4096 is too small for codex: it needs at least 16384" in capsys.readouterr().err
    assert main(["codex", str(tmp_path / "missing.gguf")]) == 2
    assert "no model file at" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["opencode"]) == 2
    err = capsys.readouterr().err
    assert "opencode is not installed" in err and "npm install -g opencode-ai" in err
    monkeypatch.setenv("LLAMACTYPES_CODEX", str(tmp_path / "nope"))
    assert main(["codex"]) == 2 and "LLAMACTYPES_CODEX" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["vim"])


def test_terminating_launch_ends_the_client_the_server_and_the_private_dir(agent: Path, tmp_path: Path) -> None:
    """`launch` itself gets SIGTERM while the client runs: nothing is left behind."""
    import signal
    import subprocess
    import time

    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
              "from tests.unit.test_launch import _fake_serve_command\n"
              "from llamactypes import launch\n"
              "launch.serve_command = _fake_serve_command\n"
              "sys.exit(launch.main(['codex', '--', '--sleep']))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "FAKE_AGENT_SLEEP": "60"})
    deadline = time.monotonic() + 60
    while not agent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    rec = read(agent)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    assert server_gone(rec["base_url"]) and not Path(rec["env"]["CODEX_HOME"]).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(rec["pid"], 0)


def test_the_hand_written_codex_example_says_what_launch_writes() -> None:
    example = tomllib.loads((Path(__file__).parents[2] / "examples" / "codex_config.toml").read_text())
    assert example == tomllib.loads(launch.codex_config("http://127.0.0.1:11434", "local", 16384))
