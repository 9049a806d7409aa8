"""Memory that cannot be cut: recurrent, hybrid and sliding-window models reuse a prefix without losing a token.

Tiny generated models of each kind (tests/fixtures/tiny_arch.py) and the tiny llama. The oracle is
llama.cpp itself: the same greedy generation from an empty memory, token for token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from llamactypes import Model, StateError
from llamactypes.native import Context, ContextParams, MemoryKind
from tests.fixtures.tiny_arch import write_tiny_arch

KINDS = {"mamba": MemoryKind.RECURRENT, "lfm2": MemoryKind.HYBRID, "gemma2": MemoryKind.SWA}
ARCHS = sorted(KINDS)


@pytest.fixture(scope="module")
def arch_paths(tmp_path_factory: pytest.TempPathFactory, native_lock: None) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("arch")
    return {arch: write_tiny_arch(arch, out / f"tiny-{arch}.gguf") for arch in ARCHS}


def _chat(*turns: str) -> str:
    """A ChatML prompt: alternating user/assistant texts, then the assistant's turn."""
    text = ""
    for i, turn in enumerate(turns):
        role = "user" if i % 2 == 0 else "assistant"
        text += f"<|im_start|>{role}\n{turn}<|im_end|>\n"
    return text + "<|im_start|>assistant\n"


def _run(model: Model, prompt: str | list[int], n: int = 12) -> tuple[list[int], int]:
    gen = model.stream(prompt, max_tokens=n, temperature=0.0)
    gen.read()
    return list(gen.tokens), gen.n_cached


def _greedy(ctx: Context, prompt: list[int], n: int = 10) -> tuple[int, list[int]]:
    """What `Generation` does, with argmax: reuse, decode, checkpoint, last token alone, then step."""
    n_cached = ctx.reuse_prefix(prompt)
    ctx.decode(prompt[n_cached:-1])
    ctx.checkpoint()
    ctx.decode(prompt[-1:])
    out = []
    for _ in range(n):
        token = int(np.argmax(ctx.logits()))
        out.append(token)
        ctx.decode_one(token)
    return n_cached, out


@pytest.mark.parametrize("arch", ARCHS)
def test_memory_kind_is_detected(arch: str, arch_paths: dict[str, Path]) -> None:
    with Model(arch_paths[arch], n_ctx=256, n_threads=1) as model:
        ctx = model._context()
        assert ctx.seq0.kind == KINDS[arch]
        assert ctx.seq0.needs_checkpoints == (arch != "gemma2")  # gemma2 here keeps a full-size window


def test_plain_llama_needs_no_checkpoints(tiny_model: Model) -> None:
    seq = tiny_model._context().seq0
    assert seq.kind == MemoryKind.FULL and not seq.needs_checkpoints


@pytest.mark.parametrize("arch", ARCHS)
def test_next_turn_after_reuse_equals_a_fresh_model(arch: str, arch_paths: dict[str, Path]) -> None:
    """The issue's measured case: a conversation's next turn, on a warm model vs a fresh one."""
    path = arch_paths[arch]
    first = _chat("Hello there, tell me about the weather in Paris today.")
    with Model(path, n_ctx=1024, n_threads=1) as warm:
        answer = warm.detokenize(_run(warm, first)[0])
        second = _chat("Hello there, tell me about the weather in Paris today.", answer, "And in Rome?")
        p1, p2 = warm.tokenize(first, parse_special=True), warm.tokenize(second, parse_special=True)
        assert p2[:len(p1)] == p1
        tokens, n_cached = _run(warm, second)
        ctx = warm._context()
        assert ctx.seq0.consistent()
        if arch == "gemma2":
            assert n_cached >= len(p1)  # a KV cache is cut where the texts differ
        else:
            assert n_cached == len(p1) - 1  # the checkpoint taken at the end of the first prompt
            assert ctx.seq0.n_restored == 1
    with Model(path, n_ctx=1024, n_threads=1) as fresh:
        assert _run(fresh, second) == (tokens, 0)


@pytest.mark.parametrize("arch", ARCHS)
def test_extending_the_cached_tokens_reuses_all_of_them(arch: str, arch_paths: dict[str, Path]) -> None:
    with Model(arch_paths[arch], n_ctx=512, n_threads=1) as warm:
        prompt = warm.tokenize(_chat("Count with me: one, two, three."), parse_special=True)
        tokens, _ = _run(warm, prompt, n=8)
        held = list(warm._context().tokens)
        follow = held + warm.tokenize(" four, five", parse_special=True)
        again, n_cached = _run(warm, follow)
        assert n_cached == len(held)  # nothing to cut: even a recurrent state is kept whole
    with Model(arch_paths[arch], n_ctx=512, n_threads=1) as fresh:
        assert _run(fresh, follow)[0] == again


def test_recurrent_reuse_never_drops_prompt_tokens(arch_paths: dict[str, Path]) -> None:
    """Today's bug: seq_rm refused, the cache was cleared, yet n_cached still said the old prefix and
    only the suffix was decoded, from position 0. Here the prompt diverges inside the last answer."""
    with Model(arch_paths["mamba"], n_ctx=512, n_threads=1) as warm:
        prompt = warm.tokenize(_chat("Please answer in one short sentence."), parse_special=True)
        _run(warm, prompt, n=8)
        held = list(warm._context().tokens)
        diverging = held[:len(prompt) + 4] + warm.tokenize(" and then?", parse_special=True)
        tokens, n_cached = _run(warm, diverging)
        assert n_cached == len(prompt) - 1  # not len(prompt) + 4: the state cannot go back there
        assert warm._context().seq0.consistent()
    with Model(arch_paths["mamba"], n_ctx=512, n_threads=1) as fresh:
        assert _run(fresh, diverging)[0] == tokens


def test_recurrent_without_a_checkpoint_reads_everything_again(arch_paths: dict[str, Path]) -> None:
    with Model(arch_paths["mamba"], n_ctx=512, n_threads=1) as warm:
        seq = warm._context().seq0
        seq.max_checkpoints = 0
        prompt = warm.tokenize(_chat("Short question?"), parse_special=True)
        _run(warm, prompt, n=6)
        assert seq.checkpoints == []
        diverging = list(seq.tokens)[:len(prompt) + 2] + [65, 66, 67]
        tokens, n_cached = _run(warm, diverging)
        assert n_cached == 0 and seq.n_cleared == 1
    with Model(arch_paths["mamba"], n_ctx=512, n_threads=1) as fresh:
        assert _run(fresh, diverging)[0] == tokens


# ---------------------------------------------------------------- a sliding window smaller than the context

@pytest.fixture(scope="module")
def gemma_model(arch_paths: dict[str, Path]) -> Iterator[Model]:
    with Model(arch_paths["gemma2"], n_ctx=1024, n_threads=1) as model:
        yield model


def _small_window(model: Model) -> Context:
    # n_ubatch 64 + n_swa 8, padded: a 256-cell SWA cache in a 1024-token context
    return Context(model._native, ContextParams(n_ctx=1024, n_batch=64, n_ubatch=64, n_threads=1, swa_full=False))


def test_small_window_cut_past_the_window_uses_a_checkpoint(gemma_model: Model) -> None:
    rng = np.random.default_rng(1)
    p1 = [int(t) for t in rng.integers(0, 280, 300)]
    longer = p1 + [int(t) for t in rng.integers(0, 280, 300)]
    other = p1 + [int(t) for t in rng.integers(0, 280, 40)]
    warm, fresh = _small_window(gemma_model), _small_window(gemma_model)
    try:
        seq = warm.seq0
        assert seq.needs_checkpoints
        assert _greedy(warm, p1)[0] == 0
        assert _greedy(warm, longer)[0] == len(p1)  # extends: a plain cut, nothing lost
        n_cached, tokens = _greedy(warm, other)  # back past the window: those positions are gone
        assert n_cached == len(p1) - 1 and seq.n_restored == 1
        assert seq.consistent()
        assert _greedy(fresh, other) == (0, tokens)
    finally:
        warm.close()
        fresh.close()


def test_small_window_without_checkpoints_detects_the_lost_window(gemma_model: Model) -> None:
    rng = np.random.default_rng(2)
    p1 = [int(t) for t in rng.integers(0, 280, 600)]
    other = p1[:300] + [int(t) for t in rng.integers(0, 280, 40)]
    warm, fresh = _small_window(gemma_model), _small_window(gemma_model)
    try:
        warm.seq0.max_checkpoints = 0
        _greedy(warm, p1)
        n_cached, tokens = _greedy(warm, other)
        assert n_cached == 0 and warm.seq0.n_cleared == 1  # the cut "succeeded" but pos_min says no
        assert _greedy(fresh, other) == (0, tokens)
    finally:
        warm.close()
        fresh.close()


# ---------------------------------------------------------------- whole-sequence state

@pytest.mark.parametrize("arch", ARCHS + ["llama"])
def test_state_restored_into_a_fresh_context_continues_the_same(arch: str, arch_paths: dict[str, Path],
                                                                tiny_model_path: Path) -> None:
    path = tiny_model_path if arch == "llama" else arch_paths[arch]
    with Model(path, n_ctx=512, n_threads=1) as model:
        params = ContextParams(n_ctx=512, n_threads=1)
        a, b, c = (Context(model._native, params) for _ in range(3))
        try:
            prompt = model.tokenize(_chat("Save me, then bring me back."), parse_special=True)
            _, out = _greedy(a, prompt)
            held, state = list(a.tokens), a.seq0.save()
            follow = held + [72, 105]
            b.seq0.restore(held, state)
            assert b.tokens == held and b.seq0.consistent()
            from_state = _greedy(b, follow)
            assert from_state[0] == len(held)
            assert _greedy(a, follow) == from_state
            assert _greedy(c, follow) == (0, from_state[1])
        finally:
            for ctx in (a, b, c):
                ctx.close()


def test_a_bad_state_is_refused_and_leaves_the_sequence_empty(tiny_model_path: Path) -> None:
    with Model(tiny_model_path, n_ctx=256, n_threads=1) as model:
        ctx = model._context()
        prompt = model.tokenize(_chat("hi"), parse_special=True)
        _greedy(ctx, prompt, n=2)
        held, state = list(ctx.tokens), ctx.seq0.save()
        with pytest.raises(StateError):
            ctx.seq0.restore(held, state[: len(state) // 2])
        assert ctx.tokens == [] and ctx.seq0.consistent()
        with pytest.raises(StateError, match="tokens"):
            ctx.seq0.restore(held + [1, 2], state)  # the state holds fewer tokens than claimed
        assert ctx.tokens == []
        ctx.seq0.restore(held, state)
        assert ctx.tokens == held


def test_checkpoints_are_bounded(arch_paths: dict[str, Path]) -> None:
    with Model(arch_paths["mamba"], n_ctx=512, n_threads=1) as model:
        ctx = model._context()
        seq = ctx.seq0
        seq.max_checkpoints = 3
        prompt = model.tokenize(_chat("one"), parse_special=True)
        ctx.decode(prompt)
        for i in range(6):
            ctx.decode([70 + i])
            seq.checkpoint()
        assert [c.n_tokens for c in seq.checkpoints] == [len(prompt) + 4, len(prompt) + 5, len(prompt) + 6]
        size = len(seq.checkpoints[0].data)
        seq.max_checkpoint_bytes = 2 * size
        ctx.decode([80])
        seq.checkpoint()
        assert len(seq.checkpoints) == 2 and seq.checkpoint_bytes <= 2 * size
