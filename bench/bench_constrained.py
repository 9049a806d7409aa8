#!/usr/bin/env python3
"""Benchmark: generation speed with a grammar, ours against unconstrained and against llama.cpp's.

One run, side by side on the demo model, greedy, the same number of tokens each:
unconstrained; our engine with llama.cpp's `grammars/json.gbnf`; our engine with a
tool-call schema grammar (json_schema_to_gbnf); and the same two grammars through
llama.cpp's own grammar sampler (driven from the same library). Prints tokens/s,
ratios, and the per-token grammar cost in µs (constrained step time minus
unconstrained step time). Then the same at temperature 0.7 and 1.0 (default top-k,
top-p, min-p; median over several seeds), where a sampled token is refused more often:
ours constrained against ours unconstrained. Run it alone (llama.cpp's threads spin).

    python bench/bench_constrained.py [--model PATH] [--tokens 96] [--threads N] [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from llamactypes import Model, json_schema_to_gbnf  # noqa: E402
from llamactypes.api import sampler as sapi  # noqa: E402
from llamactypes.paths import demo_model_path, source_dir  # noqa: E402

PROMPT = ("<|im_start|>user\nDescribe three cats as JSON objects with name, age and a list of hobbies."
          "<|im_end|>\n<|im_start|>assistant\n")
TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"const": "get_weather"},
        "arguments": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
                "hourly": {"type": "boolean"},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "arguments"],
}


def ours(model: Model, prompt: list[int], n: int, grammar: str | None, temperature: float = 0.0,
         seed: int = 0) -> float:
    """Seconds per generated token through Model.stream (prompt excluded)."""
    model._context().clear()
    gen = model.stream(prompt, max_tokens=n, temperature=temperature, seed=seed, ignore_eos=True, grammar=grammar)
    first = None
    for _ in gen:
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    model._context().clear()
    return (end - first) / max(1, gen.n_generated - 1)


def sampler_cost(model: Model, prompt: list[int], n: int, grammar: str, temperature: float,
                 seeds: int) -> tuple[float, float, float]:
    """(free, constrained) sampler CPU µs per token and the decode step in µs.

    Wall-clock ratios swing with whatever else runs on the machine; the sampler's own CPU
    time does not. So the constrained generations' prepared logits are recorded, then
    replayed through a constrained and a free sampler with the same seed (the constrained
    replay must choose the recorded tokens: exactness is checked on the way), timing each
    call with the thread's CPU clock.
    """
    from llamactypes.sampling import Sampler, SamplingParams
    from llamactypes.sampling.constrained import build_constraint

    recorded: list[tuple[int, np.ndarray, int]] = []
    real_sample = Sampler.sample

    def recording(self: Sampler, logits: np.ndarray, constraint: object = None) -> int:
        before = logits.copy()
        token = real_sample(self, logits, constraint)
        recorded.append((seed, before, token))
        return token

    steps = []
    Sampler.sample = recording  # type: ignore[method-assign]
    try:
        for seed in range(seeds):
            steps.append(ours(model, prompt, n, grammar, temperature, seed))
    finally:
        Sampler.sample = real_sample  # type: ignore[method-assign]
    vocab = model.vocab()
    free_t = con_t = 0.0
    current = None
    for seed, logits, token in recorded:
        if seed != current:
            current = seed
            params = SamplingParams(temperature=temperature, seed=seed)
            free, con = Sampler(params, logits.size), Sampler(params, logits.size)
            constraint = build_constraint(vocab, grammar=grammar)
        a, b = logits.copy(), logits.copy()
        t0 = time.thread_time()
        chosen = con.sample(a, constraint)
        t1 = time.thread_time()
        free.sample(b)
        t2 = time.thread_time()
        assert chosen == token, "a replayed constrained draw differs from the recorded one"
        constraint.accept(chosen)
        con_t += t1 - t0
        free_t += t2 - t1
    count = max(1, len(recorded))
    return free_t / count * 1e6, con_t / count * 1e6, statistics.median(steps) * 1e6


def native(model: Model, prompt: list[int], n: int, grammar: str | None) -> float:
    """Seconds per generated token with llama.cpp's chain: [grammar], greedy."""
    ctx = model._context()
    ctx.clear()
    chain = sapi.llama_sampler_chain_init(sapi.llama_sampler_chain_default_params())
    if grammar is not None:
        g = sapi.llama_sampler_init_grammar(model.vocabulary.handle, grammar.encode(), b"root")
        assert g, "llama.cpp rejected the grammar"
        sapi.llama_sampler_chain_add(chain, g)
    sapi.llama_sampler_chain_add(chain, sapi.llama_sampler_init_greedy())
    try:
        ctx.decode(prompt[:-1])
        ctx.decode(prompt[-1:])
        token = sapi.llama_sampler_sample(chain, ctx.handle, -1)
        ctx.decode_one(token)
        t0 = time.perf_counter()
        count = 1
        while count < n:
            token = sapi.llama_sampler_sample(chain, ctx.handle, -1)
            if token in model.eog_tokens:
                break
            ctx.decode_one(token)
            count += 1
        dt = time.perf_counter() - t0
    finally:
        sapi.llama_sampler_free(chain)
        ctx.clear()
    return dt / max(1, count - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(demo_model_path()))
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    json_gbnf = (source_dir() / "grammars" / "json.gbnf").read_text()
    tool_gbnf = json_schema_to_gbnf(TOOL_SCHEMA)
    grammars = {"none": None, "json.gbnf": json_gbnf, "tool-call schema": tool_gbnf}
    with Model(args.model, n_ctx=2048, flash_attn=False, n_threads=args.threads) as model:
        prompt = model.tokenize(PROMPT, parse_special=True)
        ours(model, prompt, 8, json_gbnf)  # warm up: vocabulary index, compiled grammar
        results = {}
        for label, grammar in grammars.items():
            o = statistics.median(ours(model, prompt, args.tokens, grammar) for _ in range(args.repeat))
            n = statistics.median(native(model, prompt, args.tokens, grammar) for _ in range(args.repeat))
            results[label] = (o, n)
        sampled = {}
        for temperature in (0.7, 1.0):
            free_steps = [ours(model, prompt, args.tokens, None, temperature, seed) for seed in range(args.seeds)]
            sampled[temperature, "none"] = statistics.median(free_steps)
            sampled[temperature, "quiet"] = min(free_steps)  # noise only ever adds time
            free_us, con_us, step_us = sampler_cost(model, prompt, args.tokens, json_gbnf, temperature, args.seeds)
            sampled[temperature, "json.gbnf"] = step_us / 1e6
            sampled[temperature, "cpu"] = (free_us, con_us)
    base_o, base_n = results["none"]
    print(f"model {Path(args.model).name}, greedy, {args.tokens} tokens, median of {args.repeat}\n")
    print("| grammar | ours tok/s | vs unconstrained | grammar µs/token (ours) | llama.cpp tok/s "
          "| grammar µs/token (llama.cpp) | ours / llama.cpp |")
    print("|---|---|---|---|---|---|---|")
    for label, (o, n) in results.items():
        print(f"| {label} | {1 / o:.1f} | {base_o / o:.3f} | {(o - base_o) * 1e6:.0f} | {1 / n:.1f} "
              f"| {(n - base_n) * 1e6:.0f} | {n / o:.2f} |")
    print(f"\nsampled (top-k 40, top-p 0.95, min-p 0.05), median over {args.seeds} seeds\n")
    print("| temperature | unconstrained tok/s | json.gbnf tok/s | constrained / unconstrained (wall) "
          "| sampler CPU µs/token free | constrained | constrained / unconstrained (from CPU time) |")
    print("|---|---|---|---|---|---|---|")
    for temperature in (0.7, 1.0):
        free, con = sampled[temperature, "none"], sampled[temperature, "json.gbnf"]
        free_us, con_us = sampled[temperature, "cpu"]
        step_us = sampled[temperature, "quiet"] * 1e6  # an unconstrained step: decode + free sampler
        derived = step_us / (step_us - free_us + con_us)
        print(f"| {temperature} | {1 / free:.1f} | {1 / con:.1f} | {free / con:.3f} | {free_us:.0f} | {con_us:.0f} "
              f"| {derived:.3f} |")
    print("\ntool-call grammar:\n" + tool_gbnf[:400])
    return 0


if __name__ == "__main__":
    sys.exit(main())
