"""llama.cpp's RPC backend from Python: two `python -m llamactypes.rpc_worker` processes on 127.0.0.1
(ports from the OS), a model split across them, and every bad endpoint a clear error in a process that survives.

Skipped, with the reason, when the installed llama.cpp was built without `--rpc`.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from llamactypes import InvalidRequestError, Model, RpcEndpointError
from llamactypes.limits import DEFAULT_LIMITS
from tests.fixtures.rpc_workers import Worker, rpc_workers_fixture, start_worker  # noqa: F401 (a fixture)
from tests.fixtures.tiny_gguf import write_tiny_model

PROMPTS = ["<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", "The quick brown fox", "ab ab ab"]


@pytest.fixture(scope="module")
def workers(rpc_workers: list[Worker]) -> list[Worker]:
    return rpc_workers


@pytest.fixture(scope="module")
def layered_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model with 4 layers, so a split puts whole layers on each worker."""
    return write_tiny_model(tmp_path_factory.mktemp("rpc") / "tiny-4-layers.gguf", n_layer=4, seed=3)


def _greedy_tokens(model: Model) -> list[list[int]]:
    out = []
    for prompt in PROMPTS:
        gen = model.stream(prompt, max_tokens=24, temperature=0, ignore_eos=True)
        gen.read()
        out.append(model.tokenize(gen.text, add_special=False, parse_special=True) if gen.text else [])
    return out


def test_split_across_two_workers_equals_local(workers: list[Worker], layered_model: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with Model(layered_model, n_ctx=256, n_threads=1) as local:
        expected = _greedy_tokens(local)
    endpoints = [w.endpoint for w in workers]
    with caplog.at_level(logging.INFO, logger="llamactypes.native"):
        with Model(layered_model, n_ctx=256, n_threads=1, rpc_servers=endpoints, tensor_split=[1, 1]) as remote:
            assert remote.rpc_servers == tuple(endpoints)
            got = _greedy_tokens(remote)
    assert got == expected
    # llama.cpp reports each device's share of the weights: both workers hold some
    held = {}
    for record in caplog.records:
        match = re.search(r"RPC\d+\[(\S+)\] model buffer size = +([\d.]+) MiB", record.getMessage())
        if match:
            held[match.group(1)] = float(match.group(2))
    assert set(held) == set(endpoints) and all(size > 0 for size in held.values()), held
    # and each worker served a connection
    assert all("Accepted client connection" in w.log for w in workers)


def test_two_live_models_share_the_workers(workers: list[Worker], layered_model: Path) -> None:
    """A worker serves one connection at a time and a live model holds it: a second model on the same
    endpoints must not probe (it would wait behind our own connection) and must load."""
    endpoints = [w.endpoint for w in workers]
    with Model(layered_model, n_ctx=128, n_threads=1, rpc_servers=endpoints) as first:
        with Model(layered_model, n_ctx=128, n_threads=1, rpc_servers=endpoints[::-1]) as second:
            a = first.generate(PROMPTS[1], max_tokens=8, temperature=0)
            b = second.generate(PROMPTS[1], max_tokens=8, temperature=0)
    assert a == b


def test_unreachable_endpoint_is_a_clear_error(workers: list[Worker], layered_model: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    bad = f"127.0.0.1:{port}"
    with pytest.raises(RpcEndpointError, match="connection refused") as info:
        Model(layered_model, n_ctx=128, n_threads=1, rpc_servers=[workers[0].endpoint, bad])
    assert info.value.endpoint == bad
    # the process survived and the good worker still serves
    with Model(layered_model, n_ctx=128, n_threads=1, rpc_servers=[workers[0].endpoint]) as model:
        assert model.generate(PROMPTS[1], max_tokens=4, temperature=0) is not None


def test_wrong_port_that_never_answers_is_a_clear_error(workers: list[Worker], layered_model: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A port that accepts and stays silent (llama.cpp alone would wait forever)."""
    from llamactypes.native import rpc

    monkeypatch.setattr(rpc, "LIMITS", replace(DEFAULT_LIMITS, rpc_probe_timeout_s=1.0))
    with socket.create_server(("127.0.0.1", 0)) as silent:
        bad = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(RpcEndpointError, match="did not answer the RPC handshake within 1 s") as info:
            Model(layered_model, n_ctx=128, n_threads=1, rpc_servers=[bad])
    assert info.value.endpoint == bad


def test_bad_tensor_split_and_endpoint_lists(workers: list[Worker], layered_model: Path) -> None:
    endpoints = [w.endpoint for w in workers]
    with pytest.raises(InvalidRequestError, match="tensor_split has 3 entries for 2 devices"):
        Model(layered_model, n_ctx=128, rpc_servers=endpoints, tensor_split=[1, 1, 1])
    with pytest.raises(InvalidRequestError, match="tensor_split needs proportions"):
        Model(layered_model, n_ctx=128, rpc_servers=endpoints, tensor_split=[0, -1])
    with pytest.raises(RpcEndpointError, match="listed twice"):
        Model(layered_model, n_ctx=128, rpc_servers=[endpoints[0], endpoints[0]])
    with pytest.raises(RpcEndpointError, match="host:port"):
        Model(layered_model, n_ctx=128, rpc_servers="localhost")


def test_worker_refuses_a_port_in_use(workers: list[Worker]) -> None:
    port = workers[0].endpoint.rsplit(":", 1)[1]
    out = subprocess.run([sys.executable, "-m", "llamactypes.rpc_worker", "--port", port, "--threads", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "cannot listen on" in out.stderr and port in out.stderr and "in use" in out.stderr


def test_worker_warns_when_it_listens_beyond_this_machine(workers: list[Worker]) -> None:
    worker = start_worker(["--host", "0.0.0.0", "--threads", "1"])
    try:
        assert "no authentication and no encryption" in worker.log
    finally:
        worker.stop()
    plain = "\n".join(workers[0].lines)
    assert "WARNING" not in plain


def test_worker_bad_arguments_are_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "llamactypes.rpc_worker", "--threads", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.strip() == "rpc_worker: error: --threads must be >= 1, got 0"


def test_serve_with_rpc_workers(workers: list[Worker], layered_model: Path) -> None:
    from tests.fixtures.live_server import LiveServer

    endpoints = ",".join(w.endpoint for w in workers)
    with LiveServer([str(layered_model), "--rpc", endpoints, "--tensor-split", "1,1", "--n-ctx", "128",
                     "--threads", "1"]) as server:
        import requests

        response = requests.post(server.url + "/v1/completions", timeout=60,
                                 json={"prompt": PROMPTS[1], "max_tokens": 4, "temperature": 0})
        assert response.status_code == 200
    with Model(layered_model, n_ctx=128, n_threads=1) as local:
        assert response.json()["choices"][0]["text"] == local.generate(PROMPTS[1], max_tokens=4, temperature=0)


def test_serve_with_a_bad_endpoint_exits_with_one_line(workers: list[Worker], layered_model: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "llamactypes.serve", str(layered_model), "--port", "0",
                          "--rpc", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"llamactypes.serve: RPC endpoint '127.0.0.1:{port}': connection refused" in out.stderr
