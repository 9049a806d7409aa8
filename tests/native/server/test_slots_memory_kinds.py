"""Slots on models whose memory cannot be cut (recurrent mamba, hybrid lfm2, sliding-window gemma2):
batched answers equal a fresh model's, token for token, and reuse is reported truthfully."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from llamactypes import Model
from llamactypes.engine import CompletionRequest, Engine, Sampling, fold_events
from tests.fixtures.isolation import assert_own_answer
from tests.fixtures.tiny_arch import write_tiny_arch

ARCHS = ["gemma2", "lfm2", "mamba"]
GREEDY = Sampling(temperature=0)


@pytest.fixture(scope="module")
def arch_paths(tmp_path_factory: pytest.TempPathFactory, native_lock: None) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("arch-slots")
    return {arch: write_tiny_arch(arch, out / f"tiny-{arch}.gguf") for arch in ARCHS}


def chat(*turns: str) -> str:
    text = ""
    for i, turn in enumerate(turns):
        text += f"<|im_start|>{'user' if i % 2 == 0 else 'assistant'}\n{turn}<|im_end|>\n"
    return text + "<|im_start|>assistant\n"


@pytest.mark.parametrize("arch", ARCHS)
def test_a_returning_conversation_on_a_slot_equals_a_fresh_model(arch: str, arch_paths: dict[str, Path]) -> None:
    first = chat("Hello there, tell me about the weather in Paris today.")
    with Model(arch_paths[arch], n_ctx=1024, n_threads=1) as model:
        with Engine(model, parallel=2) as engine:
            def run(prompt: str, n: int = 10) -> tuple[str, int]:
                result = fold_events(engine.complete(CompletionRequest(prompt, max_tokens=n, sampling=GREEDY)).events())
                return result.content, result.usage.cached_tokens

            answer, _ = run(first)
            run(chat("Something else entirely, about boats."))  # the other slot
            second = chat("Hello there, tell me about the weather in Paris today.", answer, "And in Rome?")
            text, n_cached = run(second)
            n_first = len(model.tokenize(first, parse_special=True))
            assert n_cached >= n_first - 1  # its own slot, cut or restored from the prompt-end checkpoint
            # two requests at once, in one batch, each equal to what it is alone
            prompts = [chat(f"Question number {i} about rivers and {w}.") for i, w in enumerate(["stones", "clouds"])]
            alone = [run(p)[0] for p in prompts]
            together: dict[int, str] = {}
            threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, run(prompts[i])[0]))
                       for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        fresh = model.generate(second, max_tokens=10, temperature=0)
    assert text == fresh
    for i in range(2):  # equal, or parted at a near-tie of batched math (docs/engine.md)
        assert_own_answer(together[i], dict(enumerate(alone)), i)
