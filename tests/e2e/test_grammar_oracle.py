"""Our grammar engine against llama.cpp's own grammar sampler (same library, same vocabulary).

For the grammars shipped with the pinned llama.cpp: greedy constrained generation is
token-for-token identical, and at every step of it the set of allowed tokens (our
`mask()`) equals what `llama_sampler_apply` lets through. llama.cpp aborts the process if
asked to accept a forbidden token, so only tokens it allowed are ever accepted.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from llamactypes import Grammar, Model
from llamactypes.api import sampler as sapi
from llamactypes.api.types import llama_token_data, llama_token_data_array

from .reference import NativeChain, native_generate, our_generate

PROMPTS = {
    "json": "<|im_start|>user\nGive me a JSON object describing a cat.<|im_end|>\n<|im_start|>assistant\n",
    "arithmetic": "<|im_start|>user\nWrite an arithmetic expression.<|im_end|>\n<|im_start|>assistant\n",
    "list": "<|im_start|>user\nList three fruits.<|im_end|>\n<|im_start|>assistant\n",
    "json_arr": "<|im_start|>user\nA JSON list of people.<|im_end|>\n<|im_start|>assistant\n",
    "chess": "<|im_start|>user\nPlay a chess opening.<|im_end|>\n<|im_start|>assistant\n",
    "english": "<|im_start|>user\nSay something.<|im_end|>\n<|im_start|>assistant\n",
    "japanese": "<|im_start|>user\n日本語で何か言って。<|im_end|>\n<|im_start|>assistant\n",
    "c": "<|im_start|>user\nWrite a C function.<|im_end|>\n<|im_start|>assistant\n",
}


class NativeGrammar:
    """llama.cpp's grammar sampler on the model's vocabulary."""

    def __init__(self, model: Model, text: str) -> None:
        self.handle = sapi.llama_sampler_init_grammar(model.vocabulary.handle, text.encode(), b"root")
        assert self.handle, "llama.cpp rejected a grammar we accept"
        n = model.n_vocab
        self.n = n
        self.data = (llama_token_data * n)()

    def allowed(self) -> np.ndarray:
        for i in range(self.n):
            self.data[i].id = i
            self.data[i].logit = 0.0
            self.data[i].p = 0.0
        arr = llama_token_data_array(ctypes.cast(self.data, ctypes.POINTER(llama_token_data)), self.n, -1, False)
        sapi.llama_sampler_apply(self.handle, ctypes.byref(arr))
        view = np.ctypeslib.as_array(ctypes.cast(arr.data, ctypes.POINTER(ctypes.c_float)), shape=(self.n * 3,))
        logits = view[1::3]
        ids = np.ctypeslib.as_array(ctypes.cast(arr.data, ctypes.POINTER(ctypes.c_int32)), shape=(self.n * 3,))[0::3]
        mask = np.zeros(self.n, dtype=bool)
        mask[ids[np.isfinite(logits)]] = True
        return mask

    def accept(self, token: int) -> None:
        sapi.llama_sampler_accept(self.handle, token)

    def close(self) -> None:
        sapi.llama_sampler_free(self.handle)


def _grammar_text(llama_source: Path, name: str) -> str:
    return (llama_source / "grammars" / f"{name}.gbnf").read_text()


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_greedy_constrained_generation_equals_llama_cpp(demo_model: Model, llama_source: Path, name: str) -> None:
    text = _grammar_text(llama_source, name)
    tokens = demo_model.tokenize(PROMPTS[name], parse_special=True)
    chain = NativeChain(greedy=True)
    grammar = sapi.llama_sampler_init_grammar(demo_model.vocabulary.handle, text.encode(), b"root")
    assert grammar
    # grammar first, then greedy: masking first, as our sampler guarantees
    native = sapi.llama_sampler_chain_init(sapi.llama_sampler_chain_default_params())
    sapi.llama_sampler_chain_add(native, grammar)
    sapi.llama_sampler_chain_add(native, sapi.llama_sampler_init_greedy())
    chain.close()
    chain.handle = native
    try:
        expected = native_generate(demo_model, tokens, 40, chain)
    finally:
        chain.close()
    ours = our_generate(demo_model, tokens, 40, temperature=0, grammar=text)
    assert ours == expected
    assert len(ours) > 0


@pytest.mark.parametrize("name", ["json", "arithmetic", "list", "chess"])
def test_allowed_token_sets_equal_llama_cpp_along_a_generation(demo_model: Model, llama_source: Path,
                                                               name: str) -> None:
    text = _grammar_text(llama_source, name)
    ours = Grammar.from_gbnf(text).compile(demo_model.vocab()).matcher()
    native = NativeGrammar(demo_model, text)
    rng = np.random.default_rng(0)
    try:
        for step in range(25):
            expected = native.allowed()
            got = ours.mask()
            diff = np.flatnonzero(expected != got)
            assert diff.size == 0, (step, [(int(t), demo_model.token_piece(int(t)), bool(expected[t])) for t in diff[:8]])
            choices = np.flatnonzero(expected & ~np.isin(np.arange(expected.size), list(demo_model.eog_tokens)))
            if choices.size == 0:
                break
            # prefer short pieces so the walk goes deep into the grammar
            lengths = np.array([len(demo_model.token_piece(int(t))) for t in choices[:2000]])
            pool = choices[:2000][lengths <= 2] if (lengths <= 2).any() else choices[:2000]
            token = int(rng.choice(pool))
            native.accept(token)
            ours.advance(token)
    finally:
        native.close()
