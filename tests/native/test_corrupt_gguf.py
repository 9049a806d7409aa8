"""Untrusted model files: every corrupt or hostile GGUF raises a `LlamaError` subclass, never a signal.

Valid tiny models (tests/fixtures/tiny_gguf.py) are corrupted on disk: truncated at many
offsets, header bytes flipped, counts and lengths made huge, a wrong version, arrays nested
5,000 deep, tensor offsets beyond the file, and the hyperparameters llama.cpp asserts on
(``block_count`` 0 and 1000, a NaN ``rms_epsilon``, head counts that do not divide). All
files are loaded in ONE subprocess (one model load each, then one decode for those that
load), which reports per file; a signal kills it and fails the test. ~3 s in all.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tiny_gguf import write_tiny_model

LOADER = r"""
import json, sys
import llamactypes
from llamactypes import Model
for path in sys.argv[1:]:
    try:
        with Model(path, n_ctx=64, n_threads=1) as model:
            model.generate("hi", max_tokens=1, temperature=0)
        result = "loaded"
    except llamactypes.LlamaError as exc:
        result = type(exc).__name__ + ": " + str(exc)[:300]
    except BaseException as exc:  # anything else is a bug: report it by name
        result = "NOT A LlamaError " + type(exc).__name__ + ": " + str(exc)[:300]
    print(json.dumps([path, result]), flush=True)
"""


class Gguf:
    """Byte offsets of a tiny model's fields, to corrupt a copy in place."""

    def __init__(self, path: Path) -> None:
        import gguf

        self.data = path.read_bytes()
        self.reader = gguf.GGUFReader(str(path))

    def value_offset(self, key: str) -> int:
        field = self.reader.fields[key]
        return field.offset + sum(part.nbytes for part in field.parts[:3])

    def patched(self, offset: int, raw: bytes) -> bytes:
        data = bytearray(self.data)
        data[offset:offset + len(raw)] = raw
        return bytes(data)

    def tensor_offset_field(self, index: int) -> int:
        field = self.reader.tensors[index].field
        return field.offset + sum(part.nbytes for part in field.parts[:-1])


def nested_arrays(depth: int) -> bytes:
    """A GGUF header whose second key is an array of arrays of ... `depth` deep."""
    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    out += string("general.architecture") + struct.pack("<I", 8) + string("llama")
    out += string("deep") + struct.pack("<I", 9)
    out += struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 1) + struct.pack("<I", 7)
    return out


def corrupt_files(tiny: Path, out: Path) -> dict[str, bytes]:
    g = Gguf(tiny)
    size = len(g.data)
    files: dict[str, bytes] = {}
    u32 = lambda v: struct.pack("<I", v)  # noqa: E731
    u64 = lambda v: struct.pack("<Q", v)  # noqa: E731
    for value in (0, 1000, 513):
        files[f"block_count_{value}"] = g.patched(g.value_offset("llama.block_count"), u32(value))
    files["rms_eps_nan"] = g.patched(g.value_offset("llama.attention.layer_norm_rms_epsilon"),
                                     struct.pack("<f", float("nan")))
    files["rms_eps_inf"] = g.patched(g.value_offset("llama.attention.layer_norm_rms_epsilon"),
                                     struct.pack("<f", float("inf")))
    files["rms_eps_negative"] = g.patched(g.value_offset("llama.attention.layer_norm_rms_epsilon"),
                                          struct.pack("<f", -1.0))
    files["head_count_kv_3"] = g.patched(g.value_offset("llama.attention.head_count_kv"), u32(3))
    files["head_count_kv_0"] = g.patched(g.value_offset("llama.attention.head_count_kv"), u32(0))
    files["head_count_1024"] = g.patched(g.value_offset("llama.attention.head_count"), u32(1024))
    files["context_length_0"] = g.patched(g.value_offset("llama.context_length"), u32(0))
    files["embedding_length_0"] = g.patched(g.value_offset("llama.embedding_length"), u32(0))
    for version in (0, 1, 4, 0xFFFFFFFF):
        files[f"version_{version}"] = g.patched(4, u32(version))
    files["n_tensors_huge"] = g.patched(8, u64(2**63))
    files["n_kv_huge"] = g.patched(16, u64(2**40))
    files["key_length_huge"] = g.patched(24, u64(2**62))
    tokens = g.reader.fields["tokenizer.ggml.tokens"]
    files["array_count_huge"] = g.patched(tokens.offset + 8 + tokens.parts[1].nbytes + 4 + 4, u64(2**61))
    files["tensor_offset_beyond"] = g.patched(g.tensor_offset_field(0), u64(size * 4))
    files["tensor_offset_unaligned"] = g.patched(g.tensor_offset_field(1), u64(3))
    files["tensor_type_removed"] = g.patched(g.tensor_offset_field(0) - 4, u32(4))
    files["tensor_type_huge"] = g.patched(g.tensor_offset_field(0) - 4, u32(0xFFFF))
    files["nested_arrays_5000"] = nested_arrays(5000)
    files["nested_arrays_2"] = nested_arrays(2)
    data_start = g.reader.tensors[0].data_offset
    cuts = sorted({0, 3, 4, 7, 8, 15, 16, 23, 24, 40, 100, 200, 535, 1000, 3000, 5000, 5549, 5600,
                   data_start - 1, data_start, data_start + 1000, size // 2, size - 4096, size - 1})
    for cut in cuts:
        files[f"truncated_at_{cut}"] = g.data[:cut]
    for offset in range(0, 24):
        for mask in (0x01, 0x80):
            data = bytearray(g.data)
            data[offset] ^= mask
            files[f"flip_{offset}_{mask:02x}"] = bytes(data)
    return files


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, native_lock: None) -> dict[str, str]:
    root = tmp_path_factory.mktemp("corrupt")
    tiny = write_tiny_model(root / "tiny.gguf", n_ctx=128)
    paths = []
    for name, data in corrupt_files(tiny, root).items():
        path = root / f"{name}.gguf"
        path.write_bytes(data)
        paths.append(str(path))
    paths.append(str(tiny))  # the control: it must load
    proc = subprocess.run([sys.executable, "-c", LOADER, *paths], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"the loader died (rc {proc.returncode}): {proc.stderr[-3000:]}"
    out = dict(json.loads(line) for line in proc.stdout.splitlines() if line.startswith("["))
    assert len(out) == len(paths), proc.stderr[-3000:]
    return {Path(path).stem: result for path, result in out.items()}


def test_the_valid_file_loads(results: dict[str, str]) -> None:
    assert results["tiny"] == "loaded"


def test_no_file_kills_the_process_or_raises_anything_else(results: dict[str, str]) -> None:
    bad = {name: r for name, r in results.items() if r.startswith("NOT A LlamaError")}
    assert not bad


@pytest.mark.parametrize("name, key", [
    ("block_count_0", "llama.block_count"), ("block_count_1000", "llama.block_count"),
    ("block_count_513", "llama.block_count"),
    ("rms_eps_nan", "llama.attention.layer_norm_rms_epsilon"),
    ("rms_eps_inf", "llama.attention.layer_norm_rms_epsilon"),
    ("rms_eps_negative", "llama.attention.layer_norm_rms_epsilon"),
    ("head_count_kv_3", "llama.attention.head_count_kv"), ("head_count_1024", "llama.attention.head_count"),
    ("context_length_0", "llama.context_length"), ("embedding_length_0", "llama.embedding_length"),
    ("nested_arrays_5000", "'deep'"), ("nested_arrays_2", "'deep'"),
    ("array_count_huge", "tokenizer.ggml.tokens"),
    ("tensor_offset_beyond", "token_embd.weight"), ("tensor_offset_unaligned", "not aligned"),
    ("tensor_type_removed", "ggml type 4"), ("tensor_type_huge", "ggml type 65535"),
    ("n_tensors_huge", "tensors"), ("n_kv_huge", "metadata entries"), ("version_1", "version 1"),
])
def test_each_refusal_is_a_model_load_error_naming_the_key(results: dict[str, str], name: str, key: str) -> None:
    assert results[name].startswith("ModelLoadError"), results[name]
    assert key in results[name]


def test_truncated_and_flipped_files_are_refused_or_load(results: dict[str, str]) -> None:
    for name, result in results.items():
        if name.startswith("truncated_at_"):
            assert result.startswith("ModelLoadError"), (name, result)
        if name.startswith("flip_"):
            assert result == "loaded" or result.startswith(("ModelLoadError", "InvalidRequestError")), (name, result)
    magic_flips = [results[f"flip_{i}_{m}"] for i in range(4) for m in ("01", "80")]
    assert all("not a GGUF model file" in r for r in magic_flips)


def test_a_path_longer_than_path_max_is_a_model_load_error(tmp_path: Path) -> None:
    from llamactypes import Model, ModelLoadError

    with pytest.raises(ModelLoadError):
        Model(str(tmp_path / ("x" * 5000 + ".gguf")))
    with pytest.raises(ModelLoadError):
        Model(str(tmp_path / "a\0b.gguf"))
