"""`ModelRouter` and the app in router mode, on scripted fake models (no native code): lazy loads,
LRU unloading, idle unloading, concurrent requests for a loading model, unknown ids in both APIs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from unittest.mock import patch

import pytest
from werkzeug.test import Client

from llamactypes.engine import Engine
from llamactypes.errors import ClosedError, ModelLoadError
from llamactypes.server import ModelRouter, ServerConfig, UnknownModelError, create_app, discover_models
from llamactypes.server.errors import anthropic_error_body, error_info, openai_error_body

from .fakes import FakeModel

IDS = ["alpha", "beta", "gamma"]


class ClosableModel(FakeModel):
    def close(self) -> None:
        self.closed = True


class Loads:
    """The router's loader: a FakeModel per id, scripted to say its id; records every load."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.models: dict[str, list[ClosableModel]] = {}
        self.gate: threading.Event | None = None  # holds every load until set
        self.fail: set[str] = set()

    def __call__(self, model_id: str, path: Path) -> Engine:
        self.calls.append(model_id)
        if self.gate is not None:
            assert self.gate.wait(10)
        if model_id in self.fail:
            raise ModelLoadError(f"cannot load {path}")
        model = ClosableModel([f"I am {model_id}"])
        self.models.setdefault(model_id, []).append(model)
        return Engine(model, model_id=model_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loads() -> Loads:
    return Loads()


@pytest.fixture
def router(loads: Loads) -> Iterator[ModelRouter]:
    with ModelRouter({mid: f"/models/{mid}.gguf" for mid in IDS}, loads, max_loaded=2) as router:
        yield router


def test_models_load_on_first_use_only(router: ModelRouter, loads: Loads) -> None:
    assert router.ids == IDS and router.loaded() == [] and loads.calls == []
    engine = router.engine_for("beta")
    assert engine.model_id == "beta" and router.loaded() == ["beta"]
    assert router.engine_for("beta") is engine and loads.calls == ["beta"]
    assert router.engine_for(None).model_id == "alpha"  # no model field: the first one


def test_max_loaded_unloads_the_least_recently_used_and_frees_it(router: ModelRouter, loads: Loads) -> None:
    router.engine_for("alpha")
    router.engine_for("beta")
    router.engine_for("alpha")  # alpha is now more recent than beta
    router.engine_for("gamma")
    assert sorted(router.loaded()) == ["alpha", "gamma"]
    beta = loads.models["beta"][0]
    assert beta.closed  # its model was freed, not just forgotten
    assert not loads.models["alpha"][0].closed and not loads.models["gamma"][0].closed
    router.engine_for("beta")  # comes back on demand (alpha is the LRU now)
    assert sorted(router.loaded()) == ["beta", "gamma"] and loads.models["alpha"][0].closed


def test_a_busy_model_is_unloaded_only_when_all_are_busy(router: ModelRouter, loads: Loads) -> None:
    router.engine_for("alpha")
    beta = router.engine_for("beta")
    alpha = router.engine_for("alpha")
    with patch.object(type(alpha), "busy", property(lambda engine: engine is alpha)):  # alpha is generating
        router.engine_for("beta")
        router.engine_for("gamma")
        assert sorted(router.loaded()) == ["alpha", "gamma"] and beta.closed


def test_concurrent_requests_for_a_loading_model_all_get_it(router: ModelRouter, loads: Loads) -> None:
    loads.gate = threading.Event()
    got: list[Any] = []

    def ask() -> None:
        got.append(router.engine_for("gamma"))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    assert got == [] and loads.calls == ["gamma"]  # one load, everybody waiting for it
    loads.gate.set()
    for thread in threads:
        thread.join(10)
    assert len(got) == 6 and all(engine is got[0] for engine in got)


def test_a_failed_load_reaches_every_waiter_and_is_retried(router: ModelRouter, loads: Loads) -> None:
    loads.fail.add("beta")
    with pytest.raises(ModelLoadError):
        router.engine_for("beta")
    loads.fail.clear()
    assert router.engine_for("beta").model_id == "beta" and loads.calls == ["beta", "beta"]


def test_other_models_serve_while_one_loads(router: ModelRouter, loads: Loads) -> None:
    router.engine_for("alpha")
    loads.gate = threading.Event()
    loader = threading.Thread(target=router.engine_for, args=("beta",))
    loader.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert router.engine_for("alpha").model_id == "alpha" and time.monotonic() - started < 0.5
    loads.gate.set()
    loader.join(10)


def test_idle_models_are_unloaded(loads: Loads) -> None:
    clock = Clock()
    with ModelRouter({mid: f"{mid}.gguf" for mid in IDS}, loads, idle_unload=60, clock=clock) as router:
        router.engine_for("alpha")
        clock.now += 30
        router.engine_for("beta")
        clock.now += 31
        assert router.unload_idle() == ["alpha"] and router.loaded() == ["beta"]
        assert loads.models["alpha"][0].closed
        clock.now += 60
        assert router.unload_idle() == ["beta"] and router.loaded() == []


def test_the_idle_thread_unloads_by_itself(loads: Loads) -> None:
    with ModelRouter({"alpha": "a.gguf"}, loads, idle_unload=0.1) as router:
        router.engine_for("alpha")
        deadline = time.monotonic() + 5
        while router.loaded() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert router.loaded() == [] and loads.models["alpha"][0].closed


def test_unknown_model_is_404_in_both_apis(router: ModelRouter) -> None:
    with pytest.raises(UnknownModelError) as raised:
        router.engine_for("delta")
    info = error_info(raised.value)
    assert info.status == 404 and "alpha, beta, gamma" in info.message
    assert openai_error_body(info)["error"]["code"] == "model_not_found"
    assert anthropic_error_body(info)["error"]["type"] == "not_found_error"


def test_close_frees_everything_and_refuses_more(loads: Loads) -> None:
    router = ModelRouter({mid: f"{mid}.gguf" for mid in IDS}, loads)
    router.engine_for("alpha")
    router.engine_for("beta")
    router.close()
    assert all(m[0].closed for m in loads.models.values()) and router.loaded() == []
    with pytest.raises(ClosedError):
        router.engine_for("alpha")


def test_bad_settings_are_clear_errors(loads: Loads) -> None:
    with pytest.raises(ValueError, match="max_loaded"):
        ModelRouter({"a": "a.gguf"}, loads, max_loaded=0)
    with pytest.raises(ValueError, match="idle_unload"):
        ModelRouter({"a": "a.gguf"}, loads, idle_unload=-1)
    with pytest.raises(ValueError, match="at least one"):
        ModelRouter({}, loads)


def test_discover_models(tmp_path: Path) -> None:
    for name in ("b.gguf", "A.GGUF", "notes.txt", "big-00001-of-00002.gguf", "big-00002-of-00002.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.gguf").write_bytes(b"GGUF")
    found = discover_models([tmp_path, tmp_path / "sub" / "c.gguf"])
    assert found == {"A": tmp_path / "A.GGUF", "b": tmp_path / "b.gguf", "big": tmp_path / "big-00001-of-00002.gguf",
                     "c": tmp_path / "sub" / "c.gguf"}
    (tmp_path / "sub" / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="two models have the id 'b'"):
        discover_models([tmp_path, tmp_path / "sub"])
    with pytest.raises(ValueError, match="no such file"):
        discover_models([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .gguf files"):
        discover_models([tmp_path / "empty"])


# ---------------------------------------------------------------- the app in router mode


@pytest.fixture
def client(router: ModelRouter) -> Client:
    return Client(create_app(router, ServerConfig()))


def _chat(client: Client, model: str | None, **extra: Any) -> Any:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], **extra}
    if model is not None:
        body["model"] = model
    return client.post("/v1/chat/completions", json=body)


def test_models_lists_all_and_says_which_are_loaded(client: Client, router: ModelRouter) -> None:
    router.engine_for("beta")
    data = client.get("/v1/models").get_json()["data"]
    assert [m["id"] for m in data] == IDS
    assert [m["meta"]["loaded"] for m in data] == [False, True, False]
    anthropic = client.get("/v1/models", headers={"anthropic-version": "2023-06-01"}).get_json()
    assert [m["id"] for m in anthropic["data"]] == IDS and anthropic["first_id"] == "alpha"
    assert client.get("/v1/models/gamma").get_json()["id"] == "gamma"
    assert client.get("/v1/models/delta").status_code == 404


def test_each_request_is_answered_by_the_model_it_names(client: Client, loads: Loads) -> None:
    for mid in ("gamma", "alpha"):
        response = _chat(client, mid)
        assert response.status_code == 200
        body = response.get_json()
        assert body["model"] == mid and body["choices"][0]["message"]["content"] == f"I am {mid}"
    message = client.post("/v1/messages", json={"model": "beta", "max_tokens": 16,
                                                "messages": [{"role": "user", "content": "hi"}]}).get_json()
    assert message["model"] == "beta" and message["content"][0]["text"] == "I am beta"
    stream = _chat(client, "beta", stream=True)
    chunks = [json.loads(line[6:]) for line in stream.get_data(as_text=True).splitlines()
              if line.startswith("data: {")]
    assert {c["model"] for c in chunks} == {"beta"}
    assert loads.calls == ["gamma", "alpha", "beta"]


def test_responses_api_picks_the_model_too(client: Client, loads: Loads) -> None:
    body = client.post("/v1/responses", json={"model": "gamma", "input": "hi"}).get_json()
    assert body["model"] == "gamma" and body["output"][0]["content"][0]["text"] == "I am gamma"
    stream = client.post("/v1/responses", json={"model": "alpha", "input": "hi", "stream": True})
    assert "I am alpha" in stream.get_data(as_text=True)
    counted = client.post("/v1/responses/input_tokens", json={"model": "beta", "input": "hi"})
    assert counted.status_code == 200 and counted.get_json()["input_tokens"] > 0
    assert client.post("/v1/responses", json={"model": "gpt-5", "input": "hi"}).status_code == 404
    assert loads.calls == ["gamma", "alpha", "beta"]


def test_unknown_model_is_404_on_the_wire(client: Client, loads: Loads) -> None:
    response = _chat(client, "gpt-4o")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "model_not_found" and "gpt-4o" in error["message"] and "alpha" in error["message"]
    response = client.post("/v1/messages", json={"model": "claude-x", "max_tokens": 8,
                                                 "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 404 and response.get_json()["error"]["type"] == "not_found_error"
    assert _chat(client, 42).status_code == 400  # type: ignore[arg-type]
    assert loads.calls == []


def test_tokenize_and_count_tokens_pick_the_model(client: Client, loads: Loads) -> None:
    assert client.post("/tokenize", json={"model": "beta", "content": "ab"}).get_json()["tokens"] == [97, 98]
    counted = client.post("/v1/messages/count_tokens", json={"model": "gamma", "messages": [
        {"role": "user", "content": "hi"}]}).get_json()
    assert counted["input_tokens"] > 0 and loads.calls == ["beta", "gamma"]


def test_a_stream_for_a_loading_model_gets_keepalives_then_its_answer(router: ModelRouter, loads: Loads) -> None:
    loads.gate = threading.Event()
    client = Client(create_app(router, ServerConfig(heartbeat=0.05)))
    response = client.post("/v1/chat/completions", buffered=False, json={
        "model": "gamma", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200  # headers before the model is loaded
    chunks = iter(response.response)
    seen = [next(chunks) for _ in range(3)]
    assert seen[0].startswith(b"data: {") and b": keep-alive" in b"".join(seen[1:])
    assert router.loaded() == []
    loads.gate.set()
    rest = b"".join(chunks).decode()
    assert "I am gamma" in rest and rest.rstrip().endswith("data: [DONE]")


def test_a_non_stream_request_during_the_load_gets_its_status(router: ModelRouter, loads: Loads) -> None:
    """Errors found once the model is loaded still get their own status (nothing was committed yet)."""
    loads.fail.add("beta")
    client = Client(create_app(router, ServerConfig(heartbeat=0.05)))
    response = _chat(client, "beta")
    # a 500 names an error id (the log has the load failure under it), never the exception text
    assert response.status_code == 500 and "error id" in response.get_json()["error"]["message"]
    loads.fail.clear()
    assert _chat(client, "beta").status_code == 200
