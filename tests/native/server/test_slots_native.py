"""Parallel slots on the tiny model through llama.cpp: isolation in both APIs, streamed and not,
hang-ups, cancel during chunked prefill, a conversation that comes back, /metrics and /slots."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from llamactypes import Model
from llamactypes.engine import ChatRequest, CompletionRequest, Engine, Finished, Sampling, Started, fold_events
from llamactypes.server import ServerConfig, ServerThread, create_app

from tests.fixtures.isolation import assert_own_answer

from .test_live_native import BANNED_EOG, stream_events, wait_ready

MARKERS = ["apple", "river", "stone", "cloud", "ember", "frost"]


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> Iterator[Model]:
    with Model(tiny_model_path, n_ctx=1024, n_threads=1) as model:
        yield model


@pytest.fixture(scope="module")
def engine(model: Model) -> Iterator[Engine]:
    with Engine(model, parallel=4, max_waiting=16) as engine:
        yield engine


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(engine, ServerConfig(heartbeat=0.2))) as server:
        wait_ready(server.url)
        yield server


def chat_body(marker: str, n: int = 24) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"tell me about {marker} {marker}"}], "max_tokens": n,
            "temperature": 0, "logit_bias": BANNED_EOG}


def openai_text(url: str, marker: str, stream: bool) -> str:
    body = {**chat_body(marker), "stream": stream}
    if not stream:
        return requests.post(url + "/v1/chat/completions", json=body, timeout=60).json()["choices"][0]["message"][
            "content"]
    return "".join(d["choices"][0]["delta"].get("content") or "" for _, d in stream_events(
        url + "/v1/chat/completions", body) if d != "[DONE]" and d["choices"])


def anthropic_text(url: str, marker: str, stream: bool) -> str:
    body = {**chat_body(marker), "stream": stream, "model": "tiny"}
    body.pop("logit_bias")
    body["messages"] = [{"role": "user", "content": f"tell me about {marker} {marker}"}]
    if not stream:
        return "".join(b.get("text", "") for b in requests.post(url + "/v1/messages", json=body, timeout=60)
                       .json()["content"])
    return "".join(d["delta"].get("text", "") for _, d in stream_events(url + "/v1/messages", body)
                   if d.get("type") == "content_block_delta")


def test_concurrent_requests_in_both_apis_streamed_and_not_never_mix(server: ServerThread) -> None:
    calls = [(api, marker, stream) for marker in MARKERS[:4] for api in (openai_text, anthropic_text)
             for stream in (False, True)]
    alone = {(api, marker, stream): api(server.url, marker, stream) for api, marker, stream in calls}
    assert len({text for (api, m, s), text in alone.items() if api is openai_text}) == 4  # distinct answers
    together: dict[Any, str] = {}
    threads = [threading.Thread(target=lambda c=c: together.__setitem__(c, c[0](server.url, c[1], c[2])))
               for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for call, text in together.items():  # batched math may differ in the last bits (docs/engine.md)
        assert_own_answer(text, {c: t for c, t in alone.items() if c[0] is call[0] and c[2] == call[2]}, call)


def test_a_batched_answer_equals_model_stream_alone(model: Model, engine: Engine) -> None:
    prompts = [model.tokenize(f"{m} and {m} again") for m in MARKERS]
    direct = [model.generate(p, max_tokens=20, temperature=0, logit_bias={289: -1e9, 291: -1e9}) for p in prompts]
    jobs = [engine.complete(CompletionRequest(p, max_tokens=20, sampling=Sampling(
        temperature=0, logit_bias={289: -1e9, 291: -1e9}))) for p in prompts]
    answers = [fold_events(j.events()).content for j in jobs]
    for i, answer in enumerate(answers):  # equal, or parted at a near-tie (docs/engine.md)
        assert_own_answer(answer, dict(enumerate(direct)), i)


def test_a_hang_up_frees_its_slot_and_leaves_the_others_alone(server: ServerThread, engine: Engine) -> None:
    body = lambda m: {**chat_body(m, 120), "stream": True}  # noqa: E731
    out: dict[str, str] = {}

    def full(m: str) -> None:
        out[m] = "".join(d["choices"][0]["delta"].get("content") or "" for _, d in stream_events(
            server.url + "/v1/chat/completions", body(m)) if d != "[DONE]" and d["choices"])

    expected = {m: requests.post(server.url + "/v1/chat/completions", json={**body(m), "stream": False},
                                 timeout=60).json()["choices"][0]["message"]["content"] for m in MARKERS[1:3]}
    threads = [threading.Thread(target=full, args=(m,)) for m in MARKERS[1:3]]
    for t in threads:
        t.start()
    events = stream_events(server.url + "/v1/chat/completions", body(MARKERS[0]))
    for _ in range(4):
        next(events)
    events.close()  # hang up
    deadline = time.monotonic() + 5
    while sum(s["state"] != "idle" for s in engine.slots()) > 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sum(s["state"] != "idle" for s in engine.slots()) <= 2, "the hung-up stream still holds its slot"
    for t in threads:
        t.join(60)
    assert out == expected


def test_cancel_during_chunked_prefill_stops_reading_the_prompt(model: Model) -> None:
    with Engine(model, parallel=2, max_step=0.01) as engine:
        streaming = engine.complete(CompletionRequest("the", max_tokens=300, sampling=Sampling(
            temperature=0, logit_bias={289: -1e9, 291: -1e9})))
        events = streaming.events()
        next(events)  # Started: it streams
        long_prompt = model.tokenize("the cat and the dog " * 150)[:900]
        job = engine.complete(CompletionRequest(long_prompt, max_tokens=4))
        long_events = job.events(heartbeat=0.01)
        assert isinstance(next(long_events), Started)
        while engine.slots()[1]["state"] != "prompt" or engine.slots()[1]["n_cached"] == 0:
            time.sleep(0.001)
        long_events.close()  # hang up while its prompt is read in chunks
        deadline = time.monotonic() + 2
        while engine.slots()[1]["state"] != "idle" and time.monotonic() < deadline:
            time.sleep(0.001)
        slot = engine.slots()[1]
        assert slot["state"] == "idle" and slot["n_cached"] < len(long_prompt)
        result = fold_events(events)
        assert result.finish_reason == "length" and result.usage.completion_tokens == 300


def test_a_conversation_that_comes_back_after_others_is_read_from_its_slot(engine: Engine) -> None:
    def ask(system: str, turns: list[dict[str, str]]) -> tuple[str, Finished]:
        events = list(engine.chat(ChatRequest([{"role": "system", "content": system}, *turns], max_tokens=8,
                                              sampling=Sampling(temperature=0))).events())
        return fold_events(events).content, events[-1]

    a_system = "You are A. " + "Remember the long story of the river. " * 12
    first_turn = [{"role": "user", "content": "hello"}]
    answer, first = ask(a_system, first_turn)
    for other in ("You are B.", "You are C.", "You are D."):
        ask(other, [{"role": "user", "content": "hi"}])
    _, back = ask(a_system, [*first_turn, {"role": "assistant", "content": answer},
                             {"role": "user", "content": "and then?"}])
    assert first.usage.prompt_tokens > 100
    assert back.usage.cached_tokens >= first.usage.prompt_tokens


def test_metrics_and_slots_routes(server: ServerThread, engine: Engine) -> None:
    openai_text(server.url, "metrics", False)
    text = requests.get(server.url + "/metrics", timeout=10).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and line[0] != "#"}
    for name in ("requests_total", "prompt_tokens_total", "prompt_tokens_cached_total", "generated_tokens_total",
                 "slots_busy", "queue_length", "cache_bytes", "cache_evictions_total"):
        assert f"llamactypes_{name}" in values
    assert values["llamactypes_requests_total"] >= 1 and values["llamactypes_generated_tokens_total"] >= 1
    assert "# TYPE llamactypes_requests_total counter" in text
    slots = requests.get(server.url + "/slots", timeout=10).json()
    assert [s["id"] for s in slots] == [0, 1, 2, 3]
    assert all(s["state"] in ("idle", "prompt", "generating") and s["n_cached"] >= 0 for s in slots)
    assert any(s["n_cached"] > 0 and s["last_used"] > 0 for s in slots)


def test_with_one_slot_a_returning_conversation_is_restored_from_the_prompt_cache(model: Model) -> None:
    from tests.unit.server.fake_batch import DictCache

    cache = DictCache()
    a = model.tokenize("the story of the river and the stone " * 12)
    greedy = Sampling(temperature=0, logit_bias={289: -1e9, 291: -1e9})
    with Engine(model, parallel=1, cache=cache) as engine:
        # one token: the slot then holds exactly `a` (a sampled token is decoded only when another follows)
        fold_events(engine.complete(CompletionRequest(a, max_tokens=1, sampling=greedy)).events())
        for other in ("a cloud", "an ember"):
            fold_events(engine.complete(CompletionRequest(other, max_tokens=4, sampling=greedy)).events())
        assert cache.puts >= 1 and cache.bytes > 0
        follow = a + model.tokenize(" and then", add_special=False)
        back = fold_events(engine.complete(CompletionRequest(follow, max_tokens=8, sampling=greedy)).events())
    assert back.usage.cached_tokens == len(a) - 1  # saved just before its prompt's last token
    fresh = model.generate(follow, max_tokens=8, temperature=0, logit_bias={289: -1e9, 291: -1e9})
    assert back.content == fresh


def test_a_live_slot_saved_at_shutdown_comes_back_after_a_restart(model: Model, tmp_path: Path) -> None:
    from llamactypes.engine.prompt_cache import ModelIdentity, PromptCache

    identity = ModelIdentity.of_file(model.path)
    a = model.tokenize("the story of the river and the stone " * 12)
    follow = a + model.tokenize(" and then", add_special=False)
    greedy = Sampling(temperature=0, logit_bias={289: -1e9, 291: -1e9})
    with Engine(model, parallel=2, cache=PromptCache(64 << 20, tmp_path, identity)) as engine:
        fold_events(engine.complete(CompletionRequest(a, max_tokens=1, sampling=greedy)).events())
    assert list(tmp_path.iterdir()), "close() wrote no state to the cache dir"
    with Engine(model, parallel=2, cache=PromptCache(64 << 20, tmp_path, identity)) as engine:
        back = fold_events(engine.complete(CompletionRequest(follow, max_tokens=8, sampling=greedy)).events())
        metrics = engine.metrics()
    assert back.usage.cached_tokens == len(a) - 1  # saved just before its prompt's last token
    assert metrics["prompt_tokens_cached_total"] == len(a) - 1 and metrics["cache_bytes"] > 0
    assert back.content == model.generate(follow, max_tokens=8, temperature=0, logit_bias={289: -1e9, 291: -1e9})


def test_batched_logits_are_close_to_alone(model: Model) -> None:
    """The closeness half of isolation: a prompt read in chunks beside other sequences gives
    logits within a small tolerance of the same prompt read alone (and the same argmax here)."""
    import numpy as np

    from llamactypes.native.batch import BatchDecoder

    p = model.tokenize("name a fruit and tell me why you like it " * 3)
    q = model.tokenize("a completely different prompt about the sea")
    ctx = model.open_context(4)
    decoder = BatchDecoder(ctx)
    try:
        n = len(p)
        decoder.decode(p, list(range(n)), [0] * n, [False] * (n - 1) + [True])
        alone = decoder.logits(n - 1).copy()
        half = n // 2  # p in two chunks, beside q's prompt and another sequence's single token
        decoder.decode(p[:half] + q, [*range(half), *range(len(q))], [1] * half + [2] * len(q),
                       [False] * (half + len(q)))
        decoder.decode([q[0]] + p[half:], [len(q), *range(half, n)], [2] + [1] * (n - half),
                       [True] + [False] * (n - half - 1) + [True])
        batched = decoder.logits(n - half).copy()
        assert decoder.memories[1].tokens == p and decoder.memories[2].tokens == q + [q[0]]
    finally:
        decoder.close()
        ctx.close()
    scale = float(np.abs(alone).max())
    assert float(np.abs(alone - batched).max()) <= 1e-3 * scale
    assert int(np.argmax(alone)) == int(np.argmax(batched))


def test_requests_with_one_system_prompt_share_its_cells(model: Model) -> None:
    """Subagents or parallel clients with one long system prompt: the later ones borrow the first
    one's KV cells for it (llama_memory_seq_cp in the unified cache) instead of reading it again,
    and answer what they answer alone."""
    system = "You are a careful reviewer. " + "Read the notes about the river and the stone. " * 10
    prompts = [model.tokenize(system + f"Now {m} and {m} again.") for m in MARKERS[:3]]
    bias = {289: -1e9, 291: -1e9}
    direct = [model.generate(p, max_tokens=12, temperature=0, logit_bias=bias) for p in prompts]
    with Engine(model, parallel=4) as engine:
        first = engine.complete(CompletionRequest(prompts[0], max_tokens=40, sampling=Sampling(
            temperature=0, logit_bias=bias)))
        first_events = first.events()
        next(e for e in first_events if not isinstance(e, Started))  # its first piece: it holds the prefix
        rest = [engine.complete(CompletionRequest(p, max_tokens=12, sampling=Sampling(temperature=0, logit_bias=bias)))
                for p in prompts[1:]]
        events = [list(job.events()) for job in rest]
        list(first_events)
    shared = len(model.tokenize(system)) - 2  # the prompts may part a token before the system text ends
    for i, got in enumerate(events, start=1):
        assert got[-1].usage.cached_tokens >= shared  # type: ignore[union-attr]
        assert_own_answer(fold_events(got).content, dict(enumerate(direct)), i)
