"""The demo model (SmolLM2-135M-Instruct) end to end, with llama.cpp itself as the oracle.

Generated text is never pinned (it differs between builds); it is compared with what
llama.cpp's own sampler chain produces from the same library and context settings.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from llamactypes import Model
from llamactypes.api import model as mapi
from llamactypes.api.types import llama_token

from .reference import NativeChain, native_generate, our_generate

CORPUS = [
    "Hello world",
    " leading space and  double  spaces",
    "Unicode: naïve café, Straße, ελληνικά, русский, 中文字符, 日本語のテキスト, 한국어",
    "Emoji 🦙🚀👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵 and skin tones 👍🏽",
    "Code: def f(x):\n\treturn x**2  # comment\n",
    "<|im_start|>user\nspecial tokens inline<|im_end|>",
    "numbers 1234567890 3.14159 -42 1e10",
    "\n\n\n   \t mixed whitespace \r\n",
    "",
]

PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nTell me about the sea.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "Once upon a time",
]


def _native_tokenize(model: Model, text: str, add_special: bool, parse_special: bool) -> list[int]:
    data = text.encode()
    buf = (llama_token * (len(data) + 16))()
    n = mapi.llama_tokenize(model.vocabulary.handle, data, len(data), buf, len(buf), add_special, parse_special)
    assert n >= 0
    return buf[:n]


@pytest.mark.parametrize("text", CORPUS)
@pytest.mark.parametrize("parse_special", [False, True])
def test_tokenization_equals_llama_cpp_and_roundtrips(demo_model: Model, text: str, parse_special: bool) -> None:
    ours = demo_model.tokenize(text, add_special=True, parse_special=parse_special)
    assert ours == _native_tokenize(demo_model, text, True, parse_special)
    assert demo_model.detokenize(ours, special=parse_special) == text
    # byte-exact through per-token pieces too (UTF-8 split across tokens)
    pieces = b"".join(demo_model.token_piece(t, special=parse_special) for t in ours)
    assert pieces.decode() == text


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_llama_cpp_sampler_chain(demo_model: Model, prompt: str) -> None:
    tokens = demo_model.tokenize(prompt, parse_special=True)
    chain = NativeChain(greedy=True)
    try:
        expected = native_generate(demo_model, tokens, 48, chain)
    finally:
        chain.close()
    assert our_generate(demo_model, tokens, 48, temperature=0) == expected
    assert len(expected) > 3


def test_greedy_with_logit_bias_equals_llama_cpp(demo_model: Model) -> None:
    tokens = demo_model.tokenize(PROMPTS[0], parse_special=True)
    bias = {demo_model.tokenize(" London", add_special=False)[0]: 5.0,
            demo_model.tokenize("The", add_special=False)[0]: -100.0}
    chain = NativeChain(greedy=True, logit_bias=bias, n_vocab=demo_model.n_vocab)
    try:
        expected = native_generate(demo_model, tokens, 24, chain)
    finally:
        chain.close()
    assert our_generate(demo_model, tokens, 24, temperature=0, logit_bias=bias) == expected


def test_seeded_sampling_reproducible_and_seed_sensitive(demo_model: Model) -> None:
    prompt = PROMPTS[1]
    a = demo_model.generate(prompt, max_tokens=40, temperature=0.9, seed=42)
    b = demo_model.generate(prompt, max_tokens=40, temperature=0.9, seed=42)
    assert a == b
    others = {demo_model.generate(prompt, max_tokens=40, temperature=0.9, seed=s) for s in range(5)}
    assert len(others) > 1


def test_stream_pieces_join_to_generate(demo_model: Model) -> None:
    prompt = PROMPTS[1]
    text = demo_model.generate(prompt, max_tokens=60, temperature=0.7, seed=3)
    gen = demo_model.stream(prompt, max_tokens=60, temperature=0.7, seed=3)
    pieces = list(gen)
    assert len(pieces) > 5
    assert "".join(pieces) == text
    assert gen.n_generated >= len(pieces)


def test_multi_turn_prefix_reuse(demo_model: Model) -> None:
    turn1 = PROMPTS[1]
    reply = demo_model.generate(turn1, max_tokens=30, temperature=0)
    turn2 = turn1 + reply + "<|im_end|>\n<|im_start|>user\nAnd the sky?<|im_end|>\n<|im_start|>assistant\n"
    gen = demo_model.stream(turn2, max_tokens=10, temperature=0)
    gen.read()
    assert gen.n_cached >= len(demo_model.tokenize(turn1, parse_special=True))
    assert gen.n_prompt - gen.n_cached < 20


def test_embed_demo_model(demo_model: Model) -> None:
    vecs = demo_model.embed(["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly tax filing deadlines"])
    assert vecs.shape == (3, demo_model.n_embd)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2]
    assert np.isfinite(vecs).all()
