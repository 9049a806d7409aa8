#!/usr/bin/env python3
"""Benchmark: the demo model split across two local RPC workers against the same model loaded locally.

One run, side by side: load time and greedy generation speed locally, then the same through two
`python -m llamactypes.rpc_worker` processes on 127.0.0.1 (`tensor_split` 1:1, every layer offloaded).
Loopback hides the network, so the run also counts the bytes the workers receive and send and the
data segments they send (the kernel's tcp_info of their sockets, `ss -ti`), during the load and per token:
on a real network a token costs about  compute + bytes_per_token / bandwidth + round_trips * RTT
(docs/rpc.md). Needs a build with --rpc; run it alone, under the machine lock (llama.cpp's threads spin):

    flock /tmp/llamactypes-native.lock python bench/bench_rpc.py [--model PATH] [--tokens 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llamactypes import Model  # noqa: E402
from llamactypes.paths import demo_model_path  # noqa: E402

PROMPT = "<|im_start|>user\nWrite a short story about a lighthouse keeper.<|im_end|>\n<|im_start|>assistant\n"


def start_worker(threads: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-u", "-m", "llamactypes.rpc_worker", "--port", "0",
                             "--threads", str(threads)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"ready at (\S+:\d+)", line)
        if match:
            return proc, match.group(1)
    raise SystemExit(f"rpc_worker exited with {proc.wait()}")


def tcp_counters(ports: list[str]) -> dict[str, int]:
    """Bytes and data segments of the workers' established connections, from the worker's side
    (`ss -ti`: the kernel's tcp_info), summed. Sockets, not /proc/PID/io: send()/recv() are not counted there."""
    total = {"bytes_received": 0, "bytes_sent": 0, "data_segs_in": 0, "data_segs_out": 0}
    for port in ports:
        out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
        for key in total:
            total[key] += sum(int(v) for v in re.findall(rf"\b{key}:(\d+)", out))
    return total


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def run(model: Model, tokens: int) -> tuple[float, int]:
    """Generation tokens/s (prompt excluded) and tokens generated, greedy."""
    model._context().clear()
    gen = model.stream(PROMPT, max_tokens=tokens, temperature=0, ignore_eos=True)
    first = None
    for _ in gen:
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return (gen.n_generated - 1) / (end - first), gen.n_generated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(demo_model_path()))
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="threads of the main host and of each worker")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    options = dict(n_ctx=1024, n_threads=args.threads, flash_attn=False)

    started = time.perf_counter()
    local = Model(args.model, **options)
    local_load = time.perf_counter() - started
    run(local, 8)  # warm-up
    local_speed = max(run(local, args.tokens)[0] for _ in range(args.repeat))
    local_text = local.generate(PROMPT, max_tokens=args.tokens, temperature=0, ignore_eos=True)
    local.close()

    workers = [start_worker(args.threads) for _ in range(2)]
    ports = [ep.rsplit(":", 1)[1] for _, ep in workers]
    try:
        before = tcp_counters(ports)
        started = time.perf_counter()
        remote = Model(args.model, rpc_servers=[ep for _, ep in workers], tensor_split=[1, 1], **options)
        rpc_load = time.perf_counter() - started
        load_io = delta(tcp_counters(ports), before)
        run(remote, 8)
        speeds, per_token = [], []
        for _ in range(args.repeat):
            before = tcp_counters(ports)
            speed, n = run(remote, args.tokens)
            io = delta(tcp_counters(ports), before)
            speeds.append(speed)
            per_token.append({k: v / n for k, v in io.items()})
        rpc_text = remote.generate(PROMPT, max_tokens=args.tokens, temperature=0, ignore_eos=True)
        remote.close()
    finally:
        for proc, _ in workers:
            proc.terminate()
            proc.wait(10)
    rpc_speed = max(speeds)
    io_tok = min(per_token, key=lambda d: d["bytes_received"] + d["bytes_sent"])
    print(f"model {Path(args.model).name}, {args.tokens} greedy tokens, {args.threads} thread(s) per process, "
          f"best of {args.repeat}")
    print(f"  local:                 load {local_load:6.2f} s   generation {local_speed:7.1f} tok/s")
    print(f"  RPC, 2 local workers:  load {rpc_load:6.2f} s   generation {rpc_speed:7.1f} tok/s   "
          f"(x{rpc_speed / local_speed:.2f} of local; load x{rpc_load / local_load:.1f})")
    print(f"  sent to the workers during the load: {load_io['bytes_received'] / 1e6:.1f} MB "
          f"(model file {Path(args.model).stat().st_size / 1e6:.1f} MB)")
    print(f"  per generated token (prompt excluded): {io_tok['bytes_received'] / 1e3:.1f} kB to the workers, "
          f"{io_tok['bytes_sent'] / 1e3:.1f} kB back; the workers sent {io_tok['data_segs_out']:.1f} data segments "
          f"(~ answers the main host waited for: round trips)")
    print(f"  same text as local: {rpc_text == local_text}")
    return 0 if rpc_text == local_text else 1


if __name__ == "__main__":
    sys.exit(main())
