"""Hyperparameter checks for GGUF metadata: refuse what would make llama.cpp abort.

llama.cpp b11434 reads hyperparameters in ``llama_model_base::load_hparams``
(src/llama-model.cpp) and guards several of them with ``GGML_ASSERT``, which kills the
process instead of failing the load: a ``block_count`` outside 1..``LLAMA_MAX_LAYERS``
(512), more experts than ``LLAMA_MAX_EXPERTS`` (1024) or inconsistent expert counts, an
unknown ``rope.scaling.type``. Others pass the loader and abort later: a NaN
``layer_norm_rms_epsilon`` at the first decode (``GGML_ASSERT(eps >= 0.0f)``), head counts
that do not divide (GQA broadcasting asserts). Each is a `ModelLoadError` naming the key.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ModelLoadError

__all__ = ["check_hparams", "LLAMA_MAX_LAYERS", "LLAMA_MAX_EXPERTS"]

#: src/llama-hparams.h at b11434.
LLAMA_MAX_LAYERS = 512
LLAMA_MAX_EXPERTS = 1024
_ROPE_SCALING_TYPES = ("none", "linear", "yarn", "longrope")


def _fail(where: str, key: str, value: Any, need: str) -> ModelLoadError:
    shown = repr(value) if not isinstance(value, list) else f"an array of {len(value)}"
    return ModelLoadError(f"{where}: the hyperparameter {key} is {shown}; llama.cpp needs {need} "
                          "(it would abort the process on this file)")


def _ints(value: Any) -> list[int] | None:
    """A scalar or per-layer array of integers, as a list (None if it is not one)."""
    items = value if isinstance(value, list) else [value]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return items
    return None


def check_hparams(metadata: dict[str, Any], where: str) -> None:
    """Raise `ModelLoadError` for hyperparameters llama.cpp would abort on; `where` names the file."""
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise _fail(where, "general.architecture", arch, "a string")
    prefix = arch + "."
    _check_finite(metadata, prefix, where)
    if arch == "clip":  # llama.cpp reads no hyperparameters for these
        return
    n_layer = _check_layers(metadata, prefix, where)
    _check_experts(metadata, prefix, where)
    _check_heads(metadata, prefix, where, n_layer)
    scaling = metadata.get(prefix + "rope.scaling.type")
    if scaling is not None and scaling not in _ROPE_SCALING_TYPES:
        raise _fail(where, prefix + "rope.scaling.type", scaling, f"one of {', '.join(_ROPE_SCALING_TYPES)}")


def _check_finite(metadata: dict[str, Any], prefix: str, where: str) -> None:
    """Every floating-point hyperparameter is finite; epsilons are not negative."""
    for key, value in metadata.items():
        if not key.startswith(prefix):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise _fail(where, key, item, "a finite number")
            if isinstance(item, float) and "epsilon" in key and item < 0:
                raise _fail(where, key, item, "a number >= 0")


def _check_layers(metadata: dict[str, Any], prefix: str, where: str) -> int | None:
    key = prefix + "block_count"
    if key not in metadata:
        return None  # llama.cpp reports the missing key itself (an exception, not an abort)
    n_layer = metadata[key]
    if not (isinstance(n_layer, int) and 0 < n_layer <= LLAMA_MAX_LAYERS):
        raise _fail(where, key, n_layer, f"1 to {LLAMA_MAX_LAYERS} (LLAMA_MAX_LAYERS)")
    nextn = metadata.get(prefix + "nextn_predict_layers", 0)
    if not (isinstance(nextn, int) and 0 <= nextn <= n_layer):
        raise _fail(where, prefix + "nextn_predict_layers", nextn, f"0 to block_count ({n_layer})")
    for sub in ("posnet.block_count", "convnext.block_count"):
        value = metadata.get(prefix + sub, 0)
        if not (isinstance(value, int) and 0 <= value <= n_layer):
            raise _fail(where, prefix + sub, value, f"0 to block_count ({n_layer})")
    return n_layer


def _check_experts(metadata: dict[str, Any], prefix: str, where: str) -> None:
    """The expert counts ``load_hparams`` asserts on."""
    n_expert = metadata.get(prefix + "expert_count", 0)
    if not (isinstance(n_expert, int) and 0 <= n_expert <= LLAMA_MAX_EXPERTS):
        raise _fail(where, prefix + "expert_count", n_expert, f"0 to {LLAMA_MAX_EXPERTS} (LLAMA_MAX_EXPERTS)")
    used_key = prefix + "expert_used_count"
    used = _ints(metadata.get(used_key, 0))
    if used is None:
        raise _fail(where, used_key, metadata.get(used_key), "whole numbers")
    used_max = max(used, default=0)
    groups = metadata.get(prefix + "expert_group_count", 0)
    group_used = metadata.get(prefix + "expert_group_used_count", 0)
    if n_expert == 0:
        if used_max:
            raise _fail(where, used_key, used_max, "0 when the model has no experts")
        if groups:
            raise _fail(where, prefix + "expert_group_count", groups, "0 when the model has no experts")
        return
    if not 0 < used_max <= n_expert:
        raise _fail(where, used_key, used_max, f"1 to expert_count ({n_expert})")
    if not (isinstance(groups, int) and 0 <= groups < n_expert):
        raise _fail(where, prefix + "expert_group_count", groups, f"0 to expert_count - 1 ({n_expert - 1})")
    if groups > 1:
        if n_expert % groups:
            raise _fail(where, prefix + "expert_group_count", groups, f"a divisor of expert_count ({n_expert})")
        if not (isinstance(group_used, int) and 0 < group_used < groups):
            raise _fail(where, prefix + "expert_group_used_count", group_used, f"1 to {groups - 1}")


def _check_heads(metadata: dict[str, Any], prefix: str, where: str, n_layer: int | None) -> None:
    """Head counts: whole numbers, at most one per layer, KV heads dividing the heads."""
    for sub in ("attention.key_length", "attention.value_length", "context_length", "embedding_length"):
        value = metadata.get(prefix + sub)
        if value is not None and not (isinstance(value, int) and value > 0):
            raise _fail(where, prefix + sub, value, "a whole number > 0")
    heads_key, kv_key = prefix + "attention.head_count", prefix + "attention.head_count_kv"
    heads = _ints(metadata.get(heads_key, 0))
    kv_heads = _ints(metadata.get(kv_key, metadata.get(heads_key, 0)))
    for key, values in ((heads_key, heads), (kv_key, kv_heads)):
        if values is None or any(v < 0 for v in values):
            raise _fail(where, key, metadata.get(key), "whole numbers >= 0")
        if n_layer is not None and len(values) > n_layer:
            raise _fail(where, key, values, f"at most one value per layer ({n_layer})")
    assert heads is not None and kv_heads is not None
    if len(heads) == 1 and len(kv_heads) > 1:
        heads = heads * len(kv_heads)
    if len(kv_heads) == 1 and len(heads) > 1:
        kv_heads = kv_heads * len(heads)
    for n_head, n_kv in zip(heads, kv_heads):
        if n_kv > n_head or (n_kv and n_head % n_kv):
            raise _fail(where, kv_key, metadata.get(kv_key), f"a divisor of head_count ({n_head})")
    n_embd = metadata.get(prefix + "embedding_length")
    n_head_max = max(heads, default=0)
    has_key_length = prefix + "attention.key_length" in metadata
    if n_head_max and isinstance(n_embd, int) and not has_key_length and n_head_max > n_embd:
        raise _fail(where, heads_key, n_head_max, f"at most embedding_length ({n_embd}) heads")
