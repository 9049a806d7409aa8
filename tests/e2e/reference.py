"""llama.cpp's own machinery, driven from the same library: the oracle for e2e tests and benchmarks."""

from __future__ import annotations

import ctypes
from typing import Sequence

from llamactypes.api import sampler as sapi
from llamactypes.api.types import llama_logit_bias
from llamactypes.model import Model


class NativeChain:
    """llama.cpp's sampler chain (the same order as its common defaults, minus what we don't use)."""

    def __init__(self, *, greedy: bool = True, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                 temperature: float = 0.8, seed: int = 1234, n_vocab: int = 0,
                 logit_bias: dict[int, float] | None = None) -> None:
        chain = sapi.llama_sampler_chain_init(sapi.llama_sampler_chain_default_params())
        if logit_bias:
            arr = (llama_logit_bias * len(logit_bias))(*[llama_logit_bias(t, b) for t, b in logit_bias.items()])
            sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_logit_bias(n_vocab, len(logit_bias), arr))
        if greedy:
            sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_greedy())
        else:
            sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_top_k(top_k))
            sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_top_p(top_p, 1))
            sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_min_p(min_p, 1))
            sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_temp(temperature))
            sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_dist(seed))
        self.handle = chain

    def sample(self, ctx_handle: int) -> int:
        return sapi.llama_sampler_sample(self.handle, ctx_handle, -1)

    def close(self) -> None:
        if self.handle:
            sapi.llama_sampler_free(self.handle)
            self.handle = 0


def native_generate(model: Model, prompt: Sequence[int], n_tokens: int, chain: NativeChain) -> list[int]:
    """Decode `prompt` in a fresh cache and sample with llama.cpp's chain until EOG or n_tokens."""
    ctx = model._context()
    ctx.clear()
    ctx.decode(list(prompt[:-1]))  # the same decode pattern as our loop (last prompt token alone)
    ctx.decode(list(prompt[-1:]))
    out: list[int] = []
    eog = model.eog_tokens
    while len(out) < n_tokens:
        token = chain.sample(ctx.handle)
        if token in eog:
            break
        out.append(token)
        if len(out) < n_tokens:
            ctx.decode_one(token)
    ctx.clear()
    return out


def our_generate(model: Model, prompt: Sequence[int], n_tokens: int, **options: object) -> list[int]:
    """Our loop from a fresh cache (so both sides batch the prompt identically)."""
    model._context().clear()
    gen = model.stream(list(prompt), max_tokens=n_tokens, **options)
    gen.read()
    model._context().clear()
    return gen.tokens


__all__ = ["NativeChain", "native_generate", "our_generate", "ctypes"]
