"""The official `openai` and `anthropic` SDKs (and raw HTTP) against `python -m llamactypes.serve`
running the demo model on an ephemeral port: one server for the whole conformance session."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.fixtures.live_server import LiveServer

N_CTX = 4096


@pytest.fixture(scope="session")
def server(demo_path: Path) -> Iterator[LiveServer]:
    live = LiveServer([str(demo_path), "--n-ctx", str(N_CTX), "--threads", "2", "--alias", "smollm2",
                       "--log-level", "warning"])
    try:
        yield live
    finally:
        code = live.stop()
        assert code == 0, f"the server did not stop cleanly (exit code {code}):\n{live.log()}"
        assert "llamactypes: stopping" in live.log()


@pytest.fixture(scope="session")
def openai_client(server: LiveServer) -> object:
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def anthropic_client(server: LiveServer) -> object:
    import anthropic

    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0, timeout=120)
