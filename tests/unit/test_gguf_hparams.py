"""The hyperparameter pre-check on metadata dicts (no files, no native library).

Each case is a valid llama-style metadata dict with one value llama.cpp b11434 would abort
on (``GGML_ASSERT`` in ``load_hparams`` or at the first decode); tests/native/test_corrupt_gguf.py
proves the same on real files in a subprocess.
"""

from __future__ import annotations

from typing import Any

import pytest

from llamactypes.errors import ModelLoadError
from llamactypes.gguf_hparams import check_hparams


def meta(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "general.architecture": "llama", "llama.block_count": 2, "llama.context_length": 512,
        "llama.embedding_length": 64, "llama.attention.head_count": 4, "llama.attention.head_count_kv": 4,
        "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 10000.0,
    }
    for key, value in changes.items():
        full = "llama." + key.replace("__", ".")
        if value is None:
            base.pop(full, None)
        else:
            base[full] = value
    return base


def test_valid_metadata_passes() -> None:
    check_hparams(meta(), "m.gguf")
    check_hparams(meta(expert_count=8, expert_used_count=2), "m.gguf")
    check_hparams(meta(attention__head_count_kv=[4, 2]), "m.gguf")  # per-layer GQA
    check_hparams({"general.architecture": "clip"}, "m.gguf")


@pytest.mark.parametrize("changes, key", [
    ({"block_count": 0}, "llama.block_count"),
    ({"block_count": 1000}, "llama.block_count"),
    ({"nextn_predict_layers": 3}, "llama.nextn_predict_layers"),
    ({"expert_count": 2000, "expert_used_count": 2}, "llama.expert_count"),
    ({"expert_count": 8, "expert_used_count": 9}, "llama.expert_used_count"),
    ({"expert_count": 8, "expert_used_count": 0}, "llama.expert_used_count"),
    ({"expert_used_count": 2}, "llama.expert_used_count"),
    ({"expert_group_count": 2}, "llama.expert_group_count"),
    ({"expert_count": 8, "expert_used_count": 2, "expert_group_count": 3}, "llama.expert_group_count"),
    ({"expert_count": 8, "expert_used_count": 2, "expert_group_count": 4, "expert_group_used_count": 4},
     "llama.expert_group_used_count"),
    ({"attention__layer_norm_rms_epsilon": float("nan")}, "llama.attention.layer_norm_rms_epsilon"),
    ({"attention__layer_norm_rms_epsilon": -1e-5}, "llama.attention.layer_norm_rms_epsilon"),
    ({"rope__freq_base": float("inf")}, "llama.rope.freq_base"),
    ({"rope__scaling__type": "bogus"}, "llama.rope.scaling.type"),
    ({"attention__head_count_kv": 3}, "llama.attention.head_count_kv"),
    ({"attention__head_count_kv": [4, 4, 4]}, "llama.attention.head_count_kv"),
    ({"attention__head_count": 1024, "attention__head_count_kv": 1024}, "llama.attention.head_count"),
    ({"attention__head_count": -1}, "llama.attention.head_count"),
    ({"embedding_length": 0}, "llama.embedding_length"),
    ({"attention__key_length": 0}, "llama.attention.key_length"),
])
def test_each_asserting_value_is_refused_by_name(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        check_hparams(meta(**changes), "m.gguf")
    assert key in str(info.value) and "m.gguf" in str(info.value)
