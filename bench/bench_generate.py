#!/usr/bin/env python3
"""Benchmark: our token loop and numpy sampler against llama.cpp's own sampler chain.

One run, same library, same model, same context settings, side by side:
prompt processing and generation tokens/s of `Model.generate` (greedy and top-k/top-p
sampling) against llama.cpp's sampler chain driven from the same library (and
llama-cpp-python when installed), printed as ratios, plus the per-token cost of our
sampler in microseconds. Run it alone: llama.cpp's threads spin, so anything else on
the cores distorts every number.

    python bench/bench_generate.py [--model PATH] [--tokens 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llamactypes import Model  # noqa: E402
from llamactypes.api import sampler as sapi  # noqa: E402
from llamactypes.paths import demo_model_path  # noqa: E402
from llamactypes.sampling import Sampler, SamplingParams  # noqa: E402

PROMPT = ("<|im_start|>system\nYou are a helpful assistant who answers in detail.<|im_end|>\n"
          "<|im_start|>user\nExplain how a steam engine works, step by step, for a curious child.<|im_end|>\n"
          "<|im_start|>assistant\n")
SAMPLING = dict(top_k=40, top_p=0.95, min_p=0.05, temperature=0.8)


def native_chain(greedy: bool, seed: int) -> int:
    chain = sapi.llama_sampler_chain_init(sapi.llama_sampler_chain_default_params())
    if greedy:
        sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_greedy())
        return chain
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_top_k(SAMPLING["top_k"]))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_top_p(SAMPLING["top_p"], 1))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_min_p(SAMPLING["min_p"], 1))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_temp(SAMPLING["temperature"]))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_dist(seed))
    return chain


def run_native(model: Model, prompt: list[int], n: int, greedy: bool) -> tuple[float, float]:
    """(prompt seconds, generation seconds) with llama.cpp's chain choosing every token.

    The prompt time is the time to the first sampled token; generation is the rest.
    """
    ctx = model._context()
    ctx.clear()
    chain = native_chain(greedy, seed=1)
    try:
        t0 = time.perf_counter()
        ctx.decode(prompt[:-1])
        ctx.decode(prompt[-1:])
        token = sapi.llama_sampler_sample(chain, ctx.handle, -1)
        t1 = time.perf_counter()
        for _ in range(n - 1):
            ctx.decode_one(token)
            token = sapi.llama_sampler_sample(chain, ctx.handle, -1)
        t2 = time.perf_counter()
    finally:
        sapi.llama_sampler_free(chain)
        ctx.clear()
    return t1 - t0, (t2 - t1) * n / max(1, n - 1)


def run_ours(model: Model, prompt: list[int], n: int, greedy: bool) -> tuple[float, float]:
    """(prompt seconds, generation seconds) through Model.stream: the same split as `run_native`
    (the first piece arrives right after the first sampled token)."""
    model._context().clear()
    opts = {"temperature": 0.0} if greedy else dict(SAMPLING, seed=1)
    t0 = time.perf_counter()
    gen = model.stream(prompt, max_tokens=n, ignore_eos=True, **opts)
    first = None
    for _ in gen:
        if first is None:
            first = time.perf_counter()
    t2 = time.perf_counter()
    model._context().clear()
    assert gen.n_generated == n and first is not None, (gen.n_generated, n)
    return first - t0, (t2 - first) * n / max(1, n - 1)


def sampler_cost(model: Model, prompt: list[int], iters: int = 2000) -> dict[str, float]:
    """Microseconds per call of our sampler on real logits (greedy and sampling)."""
    ctx = model._context()
    ctx.clear()
    ctx.decode(prompt)
    logits = ctx.logits().copy()
    out = {}
    for name, params in (("greedy", SamplingParams(temperature=0.0)), ("top-k/top-p", SamplingParams(**SAMPLING, seed=1))):
        sampler = Sampler(params, logits.size)
        work = logits.copy()
        t0 = time.perf_counter()
        for _ in range(iters):
            sampler.prepare(work)
            sampler.sample(work)
        out[name] = (time.perf_counter() - t0) / iters * 1e6
    penal = Sampler(SamplingParams(**SAMPLING, seed=1, repeat_penalty=1.1, presence_penalty=0.5), logits.size,
                    history=prompt)
    work = logits.copy()
    t0 = time.perf_counter()
    for _ in range(iters):
        work[:] = logits
        penal.prepare(work)
        penal.sample(work)
    copy_cost = _time(lambda: work.__setitem__(slice(None), logits), iters)
    out["top-k/top-p + penalties"] = (time.perf_counter() - t0) / iters * 1e6 - copy_cost
    ctx.clear()
    return out


def _time(fn, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters * 1e6


def run_llama_cpp_python(path: Path, prompt_text: str, n: int) -> float | None:
    try:
        import llama_cpp  # type: ignore[import-not-found]
    except ImportError:
        return None
    llm = llama_cpp.Llama(str(path), n_ctx=2048, verbose=False, flash_attn=False)
    t0 = time.perf_counter()
    out = llm(prompt_text, max_tokens=n, temperature=0.0)
    dt = time.perf_counter() - t0
    return out["usage"]["completion_tokens"] / dt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(demo_model_path()))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: usable cores)")
    args = parser.parse_args()
    with Model(args.model, n_ctx=2048, flash_attn=False, n_threads=args.threads) as model:
        prompt = model.tokenize(PROMPT, parse_special=True)
        print(f"model {Path(args.model).name}, prompt {len(prompt)} tokens, {args.tokens} generated, "
              f"median of {args.repeat} runs")
        run_ours(model, prompt, 8, True)  # warm up
        rows = []
        for label, greedy in (("greedy", True), ("top-k/top-p/min-p/temp", False)):
            ours = [run_ours(model, prompt, args.tokens, greedy) for _ in range(args.repeat)]
            native = [run_native(model, prompt, args.tokens, greedy) for _ in range(args.repeat)]
            o_pp = len(prompt) / statistics.median(p for p, _ in ours)
            n_pp = len(prompt) / statistics.median(p for p, _ in native)
            o_tg = args.tokens / statistics.median(g for _, g in ours)
            n_tg = args.tokens / statistics.median(g for _, g in native)
            rows.append((label, o_pp, n_pp, o_tg, n_tg))
        print(f"\n| sampling | prompt tok/s ours | prompt tok/s llama.cpp chain | ratio | gen tok/s ours "
              f"| gen tok/s llama.cpp chain | ratio |")
        print("|---|---|---|---|---|---|---|")
        for label, o_pp, n_pp, o_tg, n_tg in rows:
            print(f"| {label} | {o_pp:.0f} | {n_pp:.0f} | {o_pp / n_pp:.3f} | {o_tg:.1f} | {n_tg:.1f} "
                  f"| {o_tg / n_tg:.3f} |")
        cost = sampler_cost(model, prompt)
        print("\n| our sampler, per token | µs |\n|---|---|")
        for name, us in cost.items():
            print(f"| {name} | {us:.0f} |")
    lcp = run_llama_cpp_python(Path(args.model), PROMPT, args.tokens)
    print(f"\nllama-cpp-python greedy: {'not installed' if lcp is None else f'{lcp:.1f} tok/s'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
