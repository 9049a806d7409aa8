"""`python -m llamactypes.serve` without the native library: help, and a clear message without a model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamactypes.serve import build_parser


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamactypes.serve", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_no_model_and_no_demo_model_names_the_fetch_command(tmp_path: Path) -> None:
    out = run(env={"LLAMACTYPES_DEMO_MODEL": str(tmp_path / "missing.gguf")})
    assert out.returncode == 2
    assert "python build_scripts/fetch_lib.py --model smollm2" in out.stderr


def test_a_file_that_is_not_a_model_is_a_clean_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    out = run(str(bogus), "--port", "0")
    assert out.returncode == 1 and "Traceback" not in out.stderr and "bogus.gguf" in out.stderr


def test_defaults_match_the_issue() -> None:
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.n_ctx, args.enable_thinking) == ("127.0.0.1", 11434, 8192, False)
    args = build_parser().parse_args(["m.gguf", "--threads", "3", "--n-gpu-layers", "-1", "--alias", "x",
                                      "--api-key", "k", "--enable-thinking", "--log-level", "debug"])
    assert (args.model, args.threads, args.n_gpu_layers, args.alias, args.api_key, args.enable_thinking) == (
        "m.gguf", 3, -1, "x", "k", True)


def test_an_empty_api_key_is_an_error_not_no_key() -> None:
    out = run("m.gguf", "--api-key", "")
    assert out.returncode == 2 and "--api-key" in out.stderr and "empty" in out.stderr
    out = run("m.gguf", env={"LLAMACTYPES_API_KEY": " "})
    assert out.returncode == 2 and "empty" in out.stderr


def test_max_connections_sets_the_limit_and_refuses_zero() -> None:
    from llamactypes.serve import server_config

    config = server_config(build_parser().parse_args(["--max-connections", "64"]))
    assert config.limits.http_max_connections == 64  # type: ignore[attr-defined]
    out = run("m.gguf", "--max-connections", "0")
    assert out.returncode == 2 and "--max-connections" in out.stderr


def test_hardening_flags_build_the_server_config(caplog: pytest.LogCaptureFixture) -> None:
    from llamactypes.serve import server_config

    args = build_parser().parse_args(["--max-body", "64M", "--allowed-hosts", "a.example,.lan", "--allowed-hosts",
                                      "b.example", "--cors", "http://localhost:3000/"])
    config = server_config(args)
    assert config.max_body_bytes == 64 * 1024 * 1024 == config.limits.max_body_bytes  # type: ignore[attr-defined]
    origin = config.origin  # type: ignore[attr-defined]
    assert origin.allowed_hosts == ("a.example", ".lan", "b.example")
    assert origin.cors_origins == ("http://localhost:3000",)
    assert origin.host_allowed("box.lan:8080") and not origin.host_allowed("evil.example")
    assert "without --api-key" not in caplog.text  # loopback: no warning
    with caplog.at_level("WARNING"):
        server_config(build_parser().parse_args(["--host", "0.0.0.0"]))
    assert "without --api-key" in caplog.text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--max-body", "lots"])
