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
PENALTIES = dict(repeat_penalty=1.1, presence_penalty=0.5, frequency_penalty=0.2, repeat_last_n=64)
MODES = {"greedy": {"temperature": 0.0}, "top-k/top-p/min-p/temp": SAMPLING,
         "top-k/top-p/min-p/temp + penalties": dict(SAMPLING, **PENALTIES)}


def native_chain(mode: str, seed: int, n_vocab: int, prompt: list[int]) -> int:
    chain = sapi.llama_sampler_chain_init(sapi.llama_sampler_chain_default_params())
    if mode == "greedy":
        sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_greedy())
        return chain
    if "penalties" in mode:
        sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_penalties(
            n_vocab, PENALTIES["repeat_last_n"], PENALTIES["repeat_penalty"], PENALTIES["frequency_penalty"],
            PENALTIES["presence_penalty"]))
        for token in prompt:  # our sampler counts the prompt too (Model.stream passes it as history)
            sapi.llama_sampler_accept(chain, token)
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_top_k(SAMPLING["top_k"]))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_top_p(SAMPLING["top_p"], 1))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_min_p(SAMPLING["min_p"], 1))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_temp(SAMPLING["temperature"]))
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_dist(seed))
    return chain


def run_native(model: Model, prompt: list[int], n: int, mode: str) -> tuple[float, float]:
    """(prompt seconds, generation seconds) with llama.cpp's chain choosing every token.

    The prompt time is the time to the first sampled token; generation is the rest.
    """
    ctx = model._context()
    ctx.clear()
    chain = native_chain(mode, seed=1, n_vocab=model.n_vocab, prompt=prompt)
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


def run_ours(model: Model, prompt: list[int], n: int, mode: str) -> tuple[float, float]:
    """(prompt seconds, generation seconds) through Model.stream: the same split as `run_native`
    (the first piece arrives right after the first sampled token)."""
    model._context().clear()
    opts = dict(MODES[mode], seed=1)
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


def sampler_cost(model: Model, prompt: list[int], iters: int = 2000) -> dict[tuple[str, int], float]:
    """Our sampler's CPU µs per token on real logits (also widened to a 262k vocabulary with
    random low logits, as Gemma-3-size vocabularies have): prepare + sample + accept, with
    the prompt as penalty history. Timed with the thread's CPU clock, so other work on the
    machine does not inflate it; the cost of restoring the logits each step is subtracted."""
    ctx = model._context()
    ctx.clear()
    ctx.decode(prompt)
    real = ctx.logits().copy()
    ctx.clear()
    rng = np.random.default_rng(0)
    wide = np.concatenate([real, rng.normal(float(real.mean()) - 4, 1.0, 262144 - real.size).astype(np.float32)])
    out = {}
    for logits in (real, wide):
        work = logits.copy()
        t0 = time.thread_time()
        for _ in range(iters):
            work[:] = logits
        copy_cost = (time.thread_time() - t0) / iters * 1e6
        for name, opts in MODES.items():
            sampler = Sampler(SamplingParams(**{**opts, "seed": 1}), logits.size, history=prompt)
            t0 = time.thread_time()
            for _ in range(iters):
                work[:] = logits
                sampler.prepare(work)
                sampler.accept(sampler.sample(work))
            out[name, logits.size] = (time.thread_time() - t0) / iters * 1e6 - copy_cost
    return out


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
        run_ours(model, prompt, 8, "greedy")  # warm up
        rows = []
        for label in MODES:
            ours = [run_ours(model, prompt, args.tokens, label) for _ in range(args.repeat)]
            native = [run_native(model, prompt, args.tokens, label) for _ in range(args.repeat)]
            o_pp = len(prompt) / statistics.median(p for p, _ in ours)
            n_pp = len(prompt) / statistics.median(p for p, _ in native)
            o_tg = args.tokens / statistics.median(g for _, g in ours)
            n_tg = args.tokens / statistics.median(g for _, g in native)
            rows.append((label, o_pp, n_pp, o_tg, n_tg))
        print("\n| sampling | prompt tok/s ours | prompt tok/s llama.cpp chain | ratio | gen tok/s ours "
              "| gen tok/s llama.cpp chain | ratio |")
        print("|---|---|---|---|---|---|---|")
        for label, o_pp, n_pp, o_tg, n_tg in rows:
            print(f"| {label} | {o_pp:.0f} | {n_pp:.0f} | {o_pp / n_pp:.3f} | {o_tg:.1f} | {n_tg:.1f} "
                  f"| {o_tg / n_tg:.3f} |")
        cost = sampler_cost(model, prompt)
        print("\n| our sampler, CPU µs per token | 49k vocabulary | 262k vocabulary |\n|---|---|---|")
        for name in MODES:
            print(f"| {name} | {cost[name, model.n_vocab]:.0f} | {cost[name, 262144]:.0f} |")
    lcp = run_llama_cpp_python(Path(args.model), PROMPT, args.tokens)
    print(f"\nllama-cpp-python greedy: {'not installed' if lcp is None else f'{lcp:.1f} tok/s'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
