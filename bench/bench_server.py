#!/usr/bin/env python3
"""Benchmark: the server's cost over calling `Model` directly, and prefix reuse across turns.

Same run, same model, same threads, alternating so drift hits both sides alike:

* time to first token (TTFT) and tokens/s, `Model.stream` in this process vs
  `python -m llamactypes.serve` (a child process) streamed over SSE with `requests`;
  every cold TTFT request starts with a fresh nonce so nothing comes from the KV cache;
  the warm TTFT repeats one prompt, so only its last token is decoded and what is left
  is mostly the server's own work (HTTP, JSON, template, tokenizer, thread hand-offs);
* second-turn TTFT vs first on a long history (OpenAI chat, and Anthropic with a
  Claude-Code-style billing header that changes per request and is left out of the prompt).

Targets (issue 5): overhead <= 5 % of tokens/s and <= 10 ms of TTFT; second turn <= 0.2x the first.
Issue 10's request checks (body walk for depth/Unicode/finite numbers, Host/Origin/content type,
field ranges and counts) run on every request before the queue: `--checks-only` times them alone
(no model, no lock needed) on the bench's chat body and on Claude Code's recorded ~20k-token
request, against plain `json.loads` in the same run; the full run adds that row to the table.

`--responses` compares the OpenAI Responses API (`/v1/responses`, streamed) with chat completions
on the same server, alternating (issue 12's target: TTFT and tokens/s >= 0.95x chat completions).
Run it alone (llama.cpp's threads spin): `flock /tmp/llamactypes-native.lock python bench/bench_server.py`.

    python bench/bench_server.py [--model PATH] [--threads 2] [--tokens 128] [--runs 5] [--markdown] [--responses]
    python bench/bench_server.py --checks-only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llamactypes import Model, chat_build  # noqa: E402
from llamactypes.paths import demo_model_path  # noqa: E402
from llamactypes.server.sse import iter_sse  # noqa: E402
from tests.fixtures.live_server import LiveServer  # noqa: E402

QUESTION = ("Explain, step by step, how a bicycle stays upright while moving, mentioning gyroscopic effects, "
            "trail, and the rider's steering corrections. ")
HISTORY_TURN = ("Here is a paragraph of notes from earlier in our conversation about gardening, watering "
                "schedules, soil types, compost, mulch, pests and the best time to plant tomatoes. ")


def messages_for(nonce: str, extra: str = "") -> list[dict[str, str]]:
    return [{"role": "system", "content": f"Session {nonce}. You are a helpful assistant."},
            {"role": "user", "content": QUESTION * 4 + extra}]


def direct(model: Model, messages: list[dict[str, str]], n: int, banned: dict[int, float]) -> tuple[float, float]:
    """(TTFT s, tokens/s) through Model.stream, the chat prompt rendered as the server does."""
    start = time.perf_counter()
    prompt = chat_build(model, messages).prompt
    gen = model.stream(prompt, max_tokens=n, temperature=0, logit_bias=banned)
    first = last = None
    count = 0
    for piece in gen:
        now = time.perf_counter()
        if first is None:
            first = now
        last, count = now, count + 1
    assert first is not None and last is not None
    return first - start, (gen.n_generated - 1) / (last - first)


def served(url: str, messages: list[dict[str, str]], n: int, banned: dict[int, float]) -> tuple[float, float]:
    """(TTFT s, tokens/s) through /v1/chat/completions, streamed; tokens counted from the usage chunk."""
    body = {"messages": messages, "max_tokens": n, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "logit_bias": {str(k): False for k in banned}}  # false: banned
    start = time.perf_counter()
    first = last = None
    generated = 0
    with requests.post(url + "/v1/chat/completions", json=body, stream=True, timeout=600) as response:
        for event in iter_sse(response.iter_content(chunk_size=None)):
            if event.data == "[DONE]":
                break
            chunk = json.loads(event.data)
            if chunk.get("usage"):
                generated = chunk["usage"]["completion_tokens"]
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
    assert first is not None and last is not None
    return first - start, (generated - 1) / (last - first)


def served_responses(url: str, messages: list[dict[str, str]], n: int,
                     banned: dict[int, float]) -> tuple[float, float]:
    """(TTFT s, tokens/s) through /v1/responses, streamed; tokens counted from `response.completed`."""
    body = {"instructions": messages[0]["content"], "input": messages[1:], "max_output_tokens": n,
            "temperature": 0, "stream": True, "store": False,
            "logit_bias": {str(k): False for k in banned}}  # llama-server's extension, as for chat
    start = time.perf_counter()
    first = last = None
    generated = 0
    with requests.post(url + "/v1/responses", json=body, stream=True, timeout=600) as response:
        for event in iter_sse(response.iter_content(chunk_size=None)):
            data = json.loads(event.data)
            if event.event == "response.output_text.delta" and data["delta"]:
                now = time.perf_counter()
                first = first or now
                last = now
            elif event.event in ("response.completed", "response.incomplete"):
                generated = data["response"]["usage"]["output_tokens"]
    assert first is not None and last is not None
    return first - start, (generated - 1) / (last - first)


def responses_vs_chat(url: str, args: argparse.Namespace, banned: dict[int, float]) -> list[tuple[str, ...]]:
    """Rows: chat completions vs the Responses API, cold TTFT and tokens/s, alternating."""
    def new_chat(tag: str) -> list[dict[str, str]]:
        return messages_for(f"{tag}{os.urandom(3).hex()}")

    served_responses(url, messages_for("warmup-r"), 8, banned)
    ttft_c, ttft_r = alternate(args.runs, lambda i: served(url, new_chat("c"), 2, banned),
                               lambda i: served_responses(url, new_chat("r"), 2, banned))
    tps_c, tps_r = alternate(max(2, args.runs // 2),
                             lambda i: served(url, messages_for(f"C{i}"), args.tokens, banned),
                             lambda i: served_responses(url, messages_for(f"R{i}"), args.tokens, banned))
    if args.verbose:
        print("tok/s chat:     ", [round(r, 1) for _, r in tps_c])
        print("tok/s responses:", [round(r, 1) for _, r in tps_r])
    med = statistics.median
    c_ttft, r_ttft = med(t for t, _ in ttft_c), med(t for t, _ in ttft_r)
    c_tps, r_tps = med(r for _, r in tps_c), med(r for _, r in tps_r)
    return [("TTFT, cold cache (chat completions vs responses)", f"{c_ttft * 1000:.0f} ms",
             f"{r_ttft * 1000:.0f} ms", f"{c_ttft / r_ttft:.2f}x speed"),
            (f"generation, {args.tokens} tokens (greedy)", f"{c_tps:.1f} tok/s", f"{r_tps:.1f} tok/s",
             f"{r_tps / c_tps:.2f}x")]


def print_rows(rows: list[tuple[str, ...]], header: tuple[str, ...], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        for row in rows:
            print(f"{row[0]:<80} {row[1]:>14} {row[2]:>14} {row[3]:>12}")


def alternate(runs: int, a: Callable[[int], tuple[float, float]],
              b: Callable[[int], tuple[float, float]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    out_a, out_b = [], []
    for i in range(runs):
        out_a.append(a(i))
        out_b.append(b(i))
    return out_a, out_b


def second_turn_openai(url: str, history_turns: int) -> tuple[float, float, int]:
    """(first TTFT, second TTFT, prompt tokens) for a long chat and its next turn."""
    nonce = os.urandom(4).hex()
    history: list[dict[str, str]] = [{"role": "system", "content": f"Session {nonce}."}]
    for i in range(history_turns):
        history += [{"role": "user", "content": HISTORY_TURN * 3 + f"(note {i})"},
                    {"role": "assistant", "content": f"Noted, item {i}."}]
    first_messages = [*history, {"role": "user", "content": "Summarize the notes."}]
    t1, _ = served(url, first_messages, 8, {})
    answer = requests.post(url + "/v1/chat/completions", timeout=600, json={
        "messages": first_messages, "max_tokens": 8, "temperature": 0}).json()
    n_prompt = answer["usage"]["prompt_tokens"]
    second = [*first_messages, {"role": "assistant", "content": answer["choices"][0]["message"]["content"]},
              {"role": "user", "content": "And the most important one?"}]
    t2, _ = served(url, second, 8, {})
    return t1, t2, n_prompt


def anthropic_ttft(url: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    ttft, usage = None, {}
    with requests.post(url + "/v1/messages", json={**body, "stream": True}, stream=True, timeout=600) as response:
        for event in iter_sse(response.iter_content(chunk_size=None)):
            data = json.loads(event.data)
            if data["type"].startswith("content_block") and ttft is None:  # an empty answer has no delta
                ttft = time.perf_counter() - start
            if data["type"] == "message_delta":
                usage = data["usage"]
    assert ttft is not None
    return ttft, usage


def second_turn_anthropic(url: str, history_turns: int) -> tuple[float, float, dict[str, Any]]:
    """Claude Code's shape: the billing header changes per request; it must not break reuse."""
    def system(session: str) -> list[dict[str, Any]]:
        return [{"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.197.{session}; "
                                         "cc_entrypoint=cli;"},
                {"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}]

    nonce = os.urandom(4).hex()
    messages: list[dict[str, Any]] = []
    for i in range(history_turns):
        messages += [{"role": "user", "content": f"[{nonce}] " + HISTORY_TURN * 3},
                     {"role": "assistant", "content": f"Noted {i}."}]
    messages.append({"role": "user", "content": "Summarize."})
    body = {"model": "claude-opus-4-8", "max_tokens": 8, "temperature": 0, "thinking": {"type": "adaptive"}}
    t1, _ = anthropic_ttft(url, {**body, "system": system(os.urandom(3).hex()), "messages": messages})
    messages += [{"role": "assistant", "content": "Done."}, {"role": "user", "content": "Shorter."}]
    t2, usage = anthropic_ttft(url, {**body, "system": system(os.urandom(3).hex()), "messages": messages})
    return t1, t2, usage


def checks_overhead(repeat: int = 200) -> list[tuple[str, str, str, str]]:
    """Rows: the request checks' own time per request (median), against `json.loads` of the same body."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from llamactypes.server import anthropic, openai
    from llamactypes.server.body import decode_json_body
    from llamactypes.server.origin import OriginPolicy, is_json_content_type

    recorded = Path(__file__).resolve().parents[1] / "tests/fixtures/requests/claude_code_default_recorded.json"
    chat = {"messages": messages_for("x"), "stream": True, "max_tokens": 128}
    bodies = [("OpenAI chat body of this bench", json.dumps(chat).encode(), openai.parse_chat)]
    if recorded.is_file():
        body = json.loads(recorded.read_text())["body"]
        bodies.append(("Claude Code's recorded default request (24 tools)", json.dumps(body).encode(),
                       anthropic.parse_messages))
        long = dict(body, messages=body["messages"] * max(1, (1 << 20) // len(json.dumps(body["messages"]))))
        bodies.append(("the same with its messages repeated to ~1 MiB", json.dumps(long).encode(),
                       anthropic.parse_messages))
    policy = OriginPolicy()
    request = Request(EnvironBuilder("/v1/messages", method="POST", content_type="application/json",
                                     headers={"Host": "127.0.0.1:11434"}).get_environ())
    rows = []
    for name, data, parse in bodies:
        def plain() -> None:
            parse(json.loads(data))

        def checked() -> None:
            assert policy.host_allowed(request.headers.get("Host"))
            assert is_json_content_type(request.headers.get("Content-Type"))
            parse(decode_json_body(data))

        times: dict[str, list[float]] = {"plain": [], "checked": []}
        for _ in range(repeat):  # alternate, so drift hits both alike
            for key, fn in (("plain", plain), ("checked", checked)):
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        before, after = statistics.median(times["plain"]), statistics.median(times["checked"])
        rows.append((f"request checks, {name} ({len(data) // 1024} KiB): parse without -> with the checks",
                     f"{before * 1000:.2f} ms", f"{after * 1000:.2f} ms", f"{(after - before) * 1000:+.2f} ms"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(demo_model_path()))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--history", type=int, default=12, help="turns of history for the second-turn test")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--verbose", action="store_true", help="print every TTFT run")
    parser.add_argument("--checks-only", action="store_true", help="time only the request checks (no model)")
    parser.add_argument("--responses", action="store_true", help="only compare /v1/responses with chat completions")
    args = parser.parse_args()
    if args.checks_only:
        print_rows(checks_overhead(), ("measure", "without", "with", "difference"), args.markdown)
        return 0

    n_ctx = 4096
    if args.responses:
        with LiveServer([args.model, "--n-ctx", str(n_ctx), "--threads", str(args.threads),
                         "--log-level", "warning"]) as server:
            served(server.url, messages_for("warmup"), 8, {})
            with requests.post(server.url + "/tokenize", json={"content": "<|endoftext|><|im_end|>"}) as r:
                banned = {t: float("-inf") for t in r.json()["tokens"]}  # the demo model's end tokens
            rows = responses_vs_chat(server.url, args, banned)
        print_rows(rows, ("measure", "chat completions", "responses", "responses / chat"), args.markdown)
        print(f"\n(median of {args.runs} TTFT runs and {max(2, args.runs // 2)} generation runs, alternating; "
              f"threads={args.threads}; model {Path(args.model).name}; {os.cpu_count()} CPUs)")
        return 0
    with Model(args.model, n_ctx=n_ctx, n_threads=args.threads) as model, \
            LiveServer([args.model, "--n-ctx", str(n_ctx), "--threads", str(args.threads),
                        "--log-level", "warning"]) as server:
        banned = {t: float("-inf") for t in model.eog_tokens}
        direct(model, messages_for("warmup"), 8, banned)
        served(server.url, messages_for("warmup"), 8, banned)

        def new_chat(tag: str) -> list[dict[str, str]]:
            return messages_for(f"{tag}{os.urandom(3).hex()}")

        ttft_d, ttft_s = alternate(args.runs, lambda i: direct(model, new_chat("d"), 2, banned),
                                   lambda i: served(server.url, new_chat("s"), 2, banned))
        warm = messages_for("cached")  # the same prompt again: only its last token is decoded
        direct(model, warm, 2, banned)
        served(server.url, warm, 2, banned)
        hot_d, hot_s = alternate(args.runs, lambda i: direct(model, warm, 2, banned),
                                 lambda i: served(server.url, warm, 2, banned))
        tps_d, tps_s = alternate(max(2, args.runs // 2),
                                 lambda i: direct(model, messages_for(f"D{i}"), args.tokens, banned),
                                 lambda i: served(server.url, messages_for(f"S{i}"), args.tokens, banned))
        n_prompt = len(model.tokenize(chat_build(model, messages_for("x")).prompt, parse_special=True))
        model.close()  # free the cores' memory bandwidth for the server-only part
        turns = [second_turn_openai(server.url, args.history) for _ in range(2)]
        anth = [second_turn_anthropic(server.url, args.history) for _ in range(2)]

    med = statistics.median
    d_ttft, s_ttft = med(t for t, _ in ttft_d), med(t for t, _ in ttft_s)
    paired = med(s[0] - d[0] for d, s in zip(ttft_d, ttft_s))  # each server run against the direct run before it
    d_tps, s_tps = med(r for _, r in tps_d), med(r for _, r in tps_s)
    t1, t2 = med(t[0] for t in turns), med(t[1] for t in turns)
    a1, a2 = med(a[0] for a in anth), med(a[1] for a in anth)
    cached = anth[-1][2].get("cache_read_input_tokens", 0)
    fresh = anth[-1][2].get("input_tokens", 0)
    rows = [
        ("TTFT, %d-token chat prompt, cold cache" % n_prompt, f"{d_ttft * 1000:.0f} ms", f"{s_ttft * 1000:.0f} ms",
         f"{(s_ttft - d_ttft) * 1000:+.0f} ms (paired median {paired * 1000:+.0f} ms)"),
        ("TTFT, the same prompt already in the KV cache (the server's own cost shows)",
         f"{med(t for t, _ in hot_d) * 1000:.1f} ms", f"{med(t for t, _ in hot_s) * 1000:.1f} ms",
         f"{(med(t for t, _ in hot_s) - med(t for t, _ in hot_d)) * 1000:+.1f} ms"),
        (f"generation, {args.tokens} tokens (greedy)", f"{d_tps:.1f} tok/s", f"{s_tps:.1f} tok/s",
         f"{(s_tps / d_tps - 1) * 100:+.1f} %"),
        (f"OpenAI chat, {turns[0][2]}-token history: 1st turn TTFT -> 2nd turn", f"{t1 * 1000:.0f} ms",
         f"{t2 * 1000:.0f} ms", f"{t2 / t1:.2f}x"),
        (f"Anthropic, new billing header each turn: 1st -> 2nd (2nd: {cached} cached, {fresh} new tokens)",
         f"{a1 * 1000:.0f} ms", f"{a2 * 1000:.0f} ms", f"{a2 / a1:.2f}x"),
    ]
    rows += checks_overhead()
    header = ("measure", "Model direct / 1st", "server (SSE) / 2nd", "difference / ratio")
    if args.verbose:
        print("TTFT direct ms:", [round(t * 1000) for t, _ in ttft_d])
        print("TTFT server ms:", [round(t * 1000) for t, _ in ttft_s])
    print_rows(rows, header, args.markdown)
    print(f"\n(median of {args.runs} TTFT runs and {max(2, args.runs // 2)} generation runs; threads={args.threads}; "
          f"model {Path(args.model).name}; {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
