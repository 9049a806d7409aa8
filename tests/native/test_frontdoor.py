"""The front door on the tiny models: load progress (llama.cpp's callback), `serve owner/repo:QUANT`
from the stand-in hub with the ready line naming its settings, `llamactypes chat MODEL "message"` in a
terminal showing the load progress."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest
import requests

from llamactypes import Model, ModelLoadError
from tests.fixtures.fake_hub import FakeHub
from tests.fixtures.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]


def test_model_load_reports_progress_and_can_be_cancelled(tiny_model_path: Path) -> None:
    seen: list[float] = []
    with Model(tiny_model_path, n_ctx=64, n_threads=1, progress=seen.append) as model:
        assert model.n_vocab > 0
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 2
    with pytest.raises(ModelLoadError, match="cancelled"):
        Model(tiny_model_path, n_ctx=64, n_threads=1, progress=lambda fraction: fraction < 0.5)

    def interrupted(fraction: float) -> None:
        if fraction > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C while loading: it stops the load and arrives
        Model(tiny_model_path, n_ctx=64, n_threads=1, progress=interrupted)


def test_serve_a_hub_model_by_name(tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeHub({"tiny-org/Tiny-GGUF": {"tiny-Q8_0.gguf": b"GGUF-other",
                                         "tiny-Q4_K_M.gguf": tiny_model_path.read_bytes()}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
        server = LiveServer(["tiny-org/Tiny-GGUF:q4_k_m", "--n-ctx", "256", "--threads", "1", "--progress", "lines"])
        try:
            log = server.log()
            assert "llamactypes: loading tiny-Q4_K_M.gguf 0%" in log
            assert "llamactypes: loading tiny-Q4_K_M.gguf 100%" in log
            assert "settings:  context 256 tokens, 1 threads, backend CPU" in log
            assert f"from {tmp_path}" in log  # the file in the Hub cache
            body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
            assert requests.post(server.url + "/v1/chat/completions", json=body, timeout=60).status_code == 200
        finally:
            assert server.stop() == 0
        assert hub.downloads("tiny-Q8_0.gguf") == [] and hub.downloads("tiny-Q4_K_M.gguf") == [None]


def test_serve_without_a_terminal_shows_no_progress(tiny_model_path: Path) -> None:
    server = LiveServer([str(tiny_model_path), "--n-ctx", "256", "--threads", "1"])  # stdout/stderr: a pipe
    try:
        assert "loading" not in server.log() and "ready at" in server.log()
    finally:
        server.stop()


def test_chat_command_one_shot_in_a_terminal(tiny_model_path: Path) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "llamactypes", "chat", str(tiny_model_path), "0", "256", "Hello",
                                           "--threads", "1", "--max-tokens", "8"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(24, 200))
    child.expect("starting a server")
    child.expect(r"loading tiny-chatml\.gguf \d+%")  # the spawned server's progress, redrawn on one line
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_serve_on_a_terminal_draws_a_progress_bar(tiny_model_path: Path) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "llamactypes", "serve", str(tiny_model_path), "--port", "0",
                                           "--n-ctx", "256", "--threads", "1"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(24, 200))
    child.expect(r"\rloading tiny-chatml\.gguf \[[#.]{30}\] +\d+%")
    child.expect(r"\[#{30}\] 100%\r?\n")  # ends full, on its own line
    child.expect("settings:  context 256 tokens, 1 threads, backend CPU")
    child.expect("ready at http://")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
