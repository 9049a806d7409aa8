"""The demo model split across two local RPC workers answers exactly like the same model loaded locally."""

from __future__ import annotations

from pathlib import Path

from llamactypes import Model
from tests.fixtures.rpc_workers import Worker, rpc_workers_fixture  # noqa: F401 (a fixture)

PROMPT = "<|im_start|>user\nName three colors and say why the sky is blue.<|im_end|>\n<|im_start|>assistant\n"


def test_demo_model_split_across_two_workers_is_token_for_token_local(demo_path: Path,
                                                                      rpc_workers: list[Worker]) -> None:
    options = dict(n_ctx=512, n_threads=1, flash_attn=False)
    with Model(demo_path, **options) as local:
        expected = local.generate(PROMPT, max_tokens=48, temperature=0, ignore_eos=True)
        expected_tokens = local.tokenize(expected, add_special=False)
    endpoints = [w.endpoint for w in rpc_workers]
    with Model(demo_path, rpc_servers=endpoints, tensor_split=[1, 1], **options) as remote:
        got = remote.generate(PROMPT, max_tokens=48, temperature=0, ignore_eos=True)
        assert remote.tokenize(got, add_special=False) == expected_tokens
    assert got == expected and len(expected_tokens) >= 40
