#!/usr/bin/env python3
"""Soak: one server under mixed agent traffic for a long while; does its memory stay flat?

The server (`python -m llamactypes.serve`, default slots, a small `--cache-ram` and a
`--cache-dir` so that the prompt cache fills, evicts and writes to disk) gets `--clients`
threads of traffic for `--minutes`: OpenAI chat streamed and not (with and without tools),
Anthropic messages, the Responses API, completions with a JSON schema, embeddings, clients
that hang up mid-stream, and conversations that grow and come back (the slot and prompt
caches). Every `--every` seconds the server's resident memory (VmRSS) is sampled.

The reference is the server's own RSS after the warm-up (every kind of request served
once, the prompt cache full): the table gives it, the RSS at the end, the peak, and the
growth over the last two thirds of the run (a leak grows linearly; a cache that is
bounded stops growing). Errors (any status but 200, or 503 under load) are counted.

Run it alone (llama.cpp's threads spin): `flock /tmp/llamactypes-native.lock python bench/soak_server.py`.

    python bench/soak_server.py [--minutes 30] [--clients 4] [--markdown]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llamactypes.paths import demo_model_path  # noqa: E402
from llamactypes.server.sse import iter_sse  # noqa: E402
from tests.fixtures.live_server import LiveServer  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
WORDS = ("the parser keeps a stack of open rules while the matcher advances on bytes and the sampler "
         "walks candidates in logit order ").split()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


class Traffic:
    """The request kinds; each returns nothing and raises on an unexpected answer."""

    def __init__(self, url: str, rng: random.Random) -> None:
        self.url, self.rng = url, rng
        self.conversation: list[dict[str, str]] = []

    def _post(self, path: str, body: dict[str, Any], stream: bool = False) -> requests.Response:
        r = requests.post(self.url + path, json=body, stream=stream, timeout=600)
        if r.status_code == 503:
            r.close()
            raise Busy()
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
        return r

    def _events(self, r: requests.Response, hang_up_after: int | None = None) -> int:
        n = 0
        with r:
            for event in iter_sse(r.iter_content(chunk_size=None)):
                n += 1
                if event.data == "[DONE]" or (hang_up_after is not None and n >= hang_up_after):
                    break
        return n

    def chat_stream(self) -> None:
        if not self.conversation or len(self.conversation) > 12:
            self.conversation = [{"role": "system", "content": f"You are agent {self.rng.randrange(10**6)}. "
                                  + filler(self.rng, 300)}]
        self.conversation.append({"role": "user", "content": filler(self.rng, 20)})
        r = self._post("/v1/chat/completions", {"messages": self.conversation, "max_tokens": 24,
                                                "stream": True, "temperature": 0.8})
        text = []
        with r:
            for event in iter_sse(r.iter_content(chunk_size=None)):
                if event.data == "[DONE]":
                    break
                choices = json.loads(event.data)["choices"]
                if choices and choices[0]["delta"].get("content"):
                    text.append(choices[0]["delta"]["content"])
        self.conversation.append({"role": "assistant", "content": "".join(text) or "ok"})

    def chat_tools(self) -> None:
        r = self._post("/v1/chat/completions", {
            "messages": [{"role": "user", "content": "Weather in Paris? " + filler(self.rng, 10)}],
            "tools": TOOLS, "tool_choice": "required", "max_tokens": 40})
        if not r.json()["choices"][0]["message"].get("tool_calls"):
            raise RuntimeError("no tool call under tool_choice=required")

    def anthropic(self) -> None:
        r = self._post("/v1/messages", {"model": "x", "max_tokens": 16, "stream": True,
                                        "system": "You answer briefly. " + filler(self.rng, 50),
                                        "messages": [{"role": "user", "content": filler(self.rng, 15)}]}, True)
        self._events(r)

    def responses(self) -> None:
        r = self._post("/v1/responses", {"model": "x", "input": filler(self.rng, 15), "max_output_tokens": 16,
                                         "stream": True})
        self._events(r)

    def completion_schema(self) -> None:
        schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                                   "n": {"type": "integer"}}, "required": ["name", "n"]}
        r = self._post("/v1/chat/completions", {
            "messages": [{"role": "user", "content": "A name and a number. " + filler(self.rng, 5)}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
            "max_tokens": 40})
        json.loads(r.json()["choices"][0]["message"]["content"])

    def embeddings(self) -> None:
        r = self._post("/v1/embeddings", {"input": [filler(self.rng, 20) for _ in range(3)]})
        if len(r.json()["data"]) != 3:
            raise RuntimeError("embeddings: wrong count")

    def hang_up(self) -> None:
        r = self._post("/v1/chat/completions", {"messages": [{"role": "user", "content": filler(self.rng, 30)}],
                                                "max_tokens": 200, "stream": True})
        self._events(r, hang_up_after=self.rng.randint(1, 4))


class Busy(Exception):
    pass


KINDS = {"chat_stream": 5, "chat_tools": 2, "anthropic": 2, "responses": 2, "completion_schema": 1,
         "embeddings": 1, "hang_up": 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(demo_model_path()))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=float, default=20.0)
    parser.add_argument("--cache-ram", default="64")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    cache_dir = tempfile.mkdtemp(prefix="llamactypes-soak-")
    counts: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    stop = threading.Event()
    server = LiveServer([args.model, "--threads", str(args.threads), "--cache-ram", args.cache_ram,
                         "--cache-dir", cache_dir, "--log-level", "warning"])
    try:
        pid = server.proc.pid
        warm = Traffic(server.url, random.Random(0))
        for kind in KINDS:  # every kind once before the reference sample
            getattr(warm, kind)()

        def client(i: int) -> None:
            rng = random.Random(i + 1)
            traffic = Traffic(server.url, rng)
            names, weights = list(KINDS), list(KINDS.values())
            while not stop.is_set():
                kind = rng.choices(names, weights)[0]
                try:
                    getattr(traffic, kind)()
                    counts[kind] += 1
                except Busy:
                    counts["503"] += 1
                    time.sleep(0.5)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(f"{kind}: {exc}")

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        samples: list[tuple[float, int]] = [(0.0, rss_kib(pid))]
        end = start + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(args.every, max(0.0, end - time.monotonic())))
            samples.append((time.monotonic() - start, rss_kib(pid)))
            if not args.markdown:
                print(f"{samples[-1][0] / 60:5.1f} min  RSS {samples[-1][1] / 1024:7.1f} MiB  "
                      f"requests {sum(v for k, v in counts.items() if k != '503')}  errors {len(errors)}", flush=True)
        stop.set()
        for t in threads:
            t.join(600)
        alive = requests.get(server.url + "/health", timeout=10).status_code
    finally:
        server.stop()
        shutil.rmtree(cache_dir, ignore_errors=True)
    ref = samples[0][1]
    third = [kib for t, kib in samples if t >= args.minutes * 60 / 3]
    tail_growth = (third[-1] - third[0]) / third[0]
    rows = [("server RSS after warm-up (reference)", f"{ref / 1024:.1f} MiB"),
            ("server RSS at the end", f"{samples[-1][1] / 1024:.1f} MiB ({(samples[-1][1] - ref) / ref:+.1%})"),
            ("peak RSS", f"{max(k for _, k in samples) / 1024:.1f} MiB"),
            ("growth over the last two thirds", f"{tail_growth:+.1%} (target: flat, within ±5%)"),
            ("median RSS of the last third", f"{statistics.median(third) / 1024:.1f} MiB"),
            ("requests served", ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))),
            ("errors", f"{len(errors)}" + (f" (first: {errors[0]})" if errors else "")),
            ("/health after the run", str(alive))]
    if args.markdown:
        print("| measure | value |\n|---|---|")
        for row in rows:
            print(f"| {row[0]} | {row[1]} |")
    else:
        for row in rows:
            print(f"{row[0]}: {row[1]}")
    print(f"\n({args.minutes:g} minutes, {args.clients} clients, --cache-ram {args.cache_ram} MiB with --cache-dir, "
          f"threads={args.threads}, model {Path(args.model).name})")
    return 0 if not errors and abs(tail_growth) <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
