"""The `llamactypes` command: subcommands dispatched lazily by module, --help everywhere, a clear
message for a subcommand whose module is not installed (no native library needed)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamactypes import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamactypes", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, env={**os.environ, "LLAMACTYPES_DEMO_MODEL": "/nonexistent/demo.gguf"})


def test_top_level_help_lists_every_subcommand() -> None:
    out = run("--help")
    assert out.returncode == 0
    for name in ("serve", "chat", "launch", "pull", "fetch-lib", "rpc-worker"):
        assert f"  {name} " in out.stdout
    assert run().returncode == 2
    out = run("frobnicate")
    assert out.returncode == 2 and "unknown command 'frobnicate'" in out.stderr


def test_console_script_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'llamactypes = "llamactypes.cli:main"' in text and 'llamactypes-serve = "llamactypes.serve:main"' in text


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_every_subcommand_helps_or_says_it_is_missing(name: str) -> None:
    module = cli.SUBCOMMANDS[name][0].split(":")[0]
    out = run(name, "--help")
    if importlib.util.find_spec(module) is None:  # another branch provides it; until it lands:
        assert out.returncode == 2 and f"llamactypes {name}: not available" in out.stderr and module in out.stderr
    else:
        assert out.returncode == 0, out.stderr
        assert "usage:" in out.stdout and "Traceback" not in out.stderr


def test_own_subcommands_use_the_command_name() -> None:
    assert "usage: llamactypes serve" in run("serve", "--help").stdout
    assert "usage: llamactypes chat [MODEL]" in run("chat", "--help").stdout
    assert "usage: llamactypes pull" in run("pull", "--help").stdout


def test_bad_model_arguments_are_clean_errors(tmp_path: Path) -> None:
    out = run("chat", "missing.gguf", "hi")
    assert out.returncode == 2 and "no model file at missing.gguf" in out.stderr
    out = run("chat", "hi there")  # no model: the demo model, which is not there
    assert out.returncode == 1 and "the demo model is not at /nonexistent/demo.gguf" in out.stderr
    out = run("serve", "no-such-model.gguf", "--port", "0")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    out = run("pull", "not a name")
    assert out.returncode == 1 and "is not a Hub model name" in out.stderr


def test_missing_module_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.SUBCOMMANDS, "serve", ("llamactypes.no_such_module:main", "x"))
    assert cli.main(["serve"]) == 2


def test_a_pool_pulls_a_hub_model_once_and_gives_servers_the_file(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    from llamactypes import hub, pool, serve

    pulled: list[str] = []
    started: list[list[str]] = []
    monkeypatch.setattr(hub, "pull_model", lambda name, **kw: pulled.append(name) or tmp_path / "m-Q4_0.gguf")
    monkeypatch.setattr(pool, "main", lambda argv: started.append(list(argv)) or 0)
    assert serve.main(["--pool", "2", "owner/repo:Q4_0", "--n-ctx", "512"]) == 0
    assert pulled == ["owner/repo:Q4_0"]
    assert started == [["--pool", "2", str(tmp_path / "m-Q4_0.gguf"), "--n-ctx", "512"]]
    assert serve.main(["local.gguf", "--pool=3"]) == 0 and started[-1] == ["local.gguf", "--pool=3"]
    assert pulled == ["owner/repo:Q4_0"]  # a file name is never looked up
