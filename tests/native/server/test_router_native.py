"""The router on three tiny generated models: in process over a real socket (lazy loads, LRU unloading
that frees the model, concurrent requests for a loading model, `Chat(base_url=..., model=...)`), and
`python -m llamactypes.serve --models DIR` as a user starts it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from llamactypes import Chat, Model, ServerError
from llamactypes.engine import Engine
from llamactypes.server import ModelRouter, ServerConfig, ServerThread, create_app, discover_models
from tests.fixtures.live_server import LiveServer
from tests.fixtures.tiny_gguf import write_tiny_model

from .test_live_native import wait_ready

IDS = ["tiny-a", "tiny-b", "tiny-c"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, native_lock: None) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for seed, mid in enumerate(IDS):
        write_tiny_model(folder / f"{mid}.gguf", seed=seed)
    (folder / "README.txt").write_text("not a model")
    return folder


class Loader:
    def __init__(self) -> None:
        self.models: dict[str, list[Model]] = {}
        self.lock = threading.Lock()

    def __call__(self, model_id: str, path: Path) -> Engine:
        model = Model(path, n_ctx=256, n_threads=1)
        with self.lock:
            self.models.setdefault(model_id, []).append(model)
        return Engine(model, model_id=model_id)


@pytest.fixture
def served(model_dir: Path) -> Iterator[tuple[str, ModelRouter, Loader]]:
    loader = Loader()
    with ModelRouter(discover_models([model_dir]), loader, max_loaded=2) as router:
        with ServerThread(create_app(router, ServerConfig(heartbeat=0.2))) as server:
            wait_ready(server.url)
            yield server.url, router, loader


def _chat(url: str, model: str, **extra: Any) -> requests.Response:
    return requests.post(url + "/v1/chat/completions", timeout=60, json={
        "model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0, **extra})


def test_requests_load_their_model_and_max_loaded_frees_the_lru(served: tuple[str, ModelRouter, Loader]) -> None:
    url, router, loader = served
    assert [m["id"] for m in requests.get(url + "/v1/models", timeout=10).json()["data"]] == IDS
    assert router.loaded() == []
    for mid in ("tiny-a", "tiny-b", "tiny-a"):
        response = _chat(url, mid)
        assert response.status_code == 200 and response.json()["model"] == mid
    assert sorted(router.loaded()) == ["tiny-a", "tiny-b"]
    assert _chat(url, "tiny-c").status_code == 200
    assert sorted(router.loaded()) == ["tiny-a", "tiny-c"]
    (b,) = loader.models["tiny-b"]
    assert b.closed  # the native model (weights, KV cache) was freed
    assert not loader.models["tiny-a"][0].closed and not loader.models["tiny-c"][0].closed
    response = requests.post(url + "/v1/messages", timeout=60, json={
        "model": "tiny-b", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.json()["model"] == "tiny-b"
    assert len(loader.models["tiny-b"]) == 2 and loader.models["tiny-a"][0].closed


def test_concurrent_requests_for_a_loading_model_are_all_answered(served: tuple[str, ModelRouter, Loader]) -> None:
    url, router, loader = served
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda i: _chat(url, "tiny-c", stream=bool(i % 2)), range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert len(loader.models["tiny-c"]) == 1  # one load served them all


def test_unknown_model_and_chat_client_picking_one(served: tuple[str, ModelRouter, Loader]) -> None:
    url, router, loader = served
    response = _chat(url, "gpt-4o")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    with Chat(base_url=url + "/v1", model="tiny-b") as chat:
        assert isinstance(chat.chat("hi", max_tokens=4, temperature=0), str)
    assert router.loaded() == ["tiny-b"]
    with Chat(base_url=url + "/v1", model="nope") as chat:
        with pytest.raises(ServerError) as info:
            chat.chat("hi", max_tokens=4)
    assert info.value.status == 404


def test_serve_models_from_the_command_line(model_dir: Path) -> None:
    with LiveServer(["--models", str(model_dir), "--max-loaded", "1", "--n-ctx", "256", "--threads", "1"]) as server:
        assert "serving 3 models" in server.log()
        models = requests.get(server.url + "/v1/models", timeout=10).json()["data"]
        assert [m["id"] for m in models] == IDS and not any(m["meta"]["loaded"] for m in models)
        for mid in ("tiny-c", "tiny-a"):
            assert _chat(server.url, mid).json()["model"] == mid
        models = requests.get(server.url + "/v1/models", timeout=10).json()["data"]
        assert [m["meta"]["loaded"] for m in models] == [True, False, False]
