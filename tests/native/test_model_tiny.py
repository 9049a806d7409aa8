"""Model on tiny generated GGUF files: loading, tokens, the loop, errors, lifecycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llamactypes import ClosedError, ContextOverflowError, InvalidRequestError, Model, ModelLoadError

CHAT = "<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"


def test_properties(tiny_model: Model) -> None:
    assert tiny_model.n_vocab == 296
    assert tiny_model.n_ctx == 256
    assert tiny_model.n_ctx_train == 512
    assert tiny_model.eos == tiny_model.tokenize("<|im_end|>", add_special=False, parse_special=True)[0]
    assert tiny_model.eos in tiny_model.eog_tokens
    assert tiny_model.metadata["general.architecture"] == "llama"
    assert "<|im_start|>" in tiny_model.chat_template
    assert tiny_model.name == "tiny-chatml"


def test_tokenize_special_and_roundtrip(tiny_model: Model) -> None:
    text = "Hello, wörld! 🦙 the and"
    tokens = tiny_model.tokenize(text, add_special=False)
    assert tiny_model.detokenize(tokens) == text
    parsed = tiny_model.tokenize("<|im_start|>x", add_special=False, parse_special=True)
    plain = tiny_model.tokenize("<|im_start|>x", add_special=False, parse_special=False)
    assert len(parsed) == 2 and len(plain) > 2
    # merges are applied: " the" is one token
    assert len(tiny_model.tokenize(" the", add_special=False)) == 1


def test_token_piece_is_exact_bytes(tiny_model: Model) -> None:
    tokens = tiny_model.tokenize("é🦙", add_special=False)
    assert b"".join(tiny_model.token_piece(t) for t in tokens) == "é🦙".encode()


def test_greedy_generation_is_deterministic_and_stream_joins(tiny_model: Model) -> None:
    a = tiny_model.generate(CHAT, max_tokens=24, temperature=0)
    gen = tiny_model.stream(CHAT, max_tokens=24, temperature=0)
    pieces = list(gen)
    assert "".join(pieces) == a == gen.text
    assert gen.finish_reason in ("stop", "length")
    assert gen.n_prompt == len(tiny_model.tokenize(CHAT, parse_special=True))


def test_seeded_sampling_is_reproducible(tiny_model: Model) -> None:
    runs = [tiny_model.generate(CHAT, max_tokens=24, temperature=1.0, seed=s) for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    other = [tiny_model.generate(CHAT, max_tokens=24, temperature=1.0, seed=s) for s in range(9, 13)]
    assert any(o != runs[0] for o in other)


def test_prefix_reuse_decodes_only_the_suffix(tiny_model: Model) -> None:
    first = tiny_model.stream(CHAT, max_tokens=8, temperature=0)
    text = first.read()
    second = tiny_model.stream(CHAT + text + "<|im_end|>\n<|im_start|>user\nmore<|im_end|>\n", max_tokens=4,
                               temperature=0)
    second.read()
    assert second.n_cached >= first.n_prompt
    # an unrelated prompt shares nothing (or only a few leading tokens)
    third = tiny_model.stream("zzz unrelated", max_tokens=2, temperature=0)
    third.read()
    assert third.n_cached <= 1


def test_max_tokens_and_finish_reason(tiny_model: Model) -> None:
    gen = tiny_model.stream(CHAT, max_tokens=3, temperature=0, ignore_eos=True)
    gen.read()
    assert gen.n_generated == 3 and gen.finish_reason == "length"
    zero = tiny_model.stream(CHAT, max_tokens=0, temperature=0)
    assert zero.read() == "" and zero.finish_reason == "length"


def test_generation_clamped_to_context(tiny_model: Model) -> None:
    prompt = tiny_model.tokenize("a" * 50, add_special=False)[:250]
    prompt = (prompt * 10)[:250]
    gen = tiny_model.stream(prompt, max_tokens=1000, temperature=0, ignore_eos=True)
    gen.read()
    assert gen.finish_reason == "length"
    assert gen.n_prompt + gen.n_generated <= tiny_model.n_ctx


def test_stop_strings_never_leak(tiny_model: Model) -> None:
    full = tiny_model.generate(CHAT, max_tokens=40, temperature=0, ignore_eos=True)
    assert len(full) > 6
    stop = full[4:7]
    gen = tiny_model.stream(CHAT, max_tokens=40, temperature=0, ignore_eos=True, stop=[stop])
    pieces = list(gen)
    assert "".join(pieces) == full[: full.index(stop)]
    assert gen.finish_reason == "stop_sequence" and gen.stop_sequence == stop


def test_logit_bias_forces_a_token(tiny_model: Model) -> None:
    token = tiny_model.tokenize("Q", add_special=False)[0]
    out = tiny_model.generate(CHAT, max_tokens=5, temperature=0, logit_bias={token: 100.0}, ignore_eos=True)
    assert out == "QQQQQ"


def test_prompt_longer_than_context(tiny_model: Model) -> None:
    with pytest.raises(ContextOverflowError) as info:
        tiny_model.generate(list(range(10)) * 30, max_tokens=1)
    assert info.value.n_prompt == 300 and info.value.n_ctx == 256
    assert "300" in str(info.value) and "256" in str(info.value)


def test_bad_arguments(tiny_model: Model) -> None:
    with pytest.raises(InvalidRequestError):
        tiny_model.generate(CHAT, top_p=2.0)
    with pytest.raises(InvalidRequestError):
        tiny_model.generate(CHAT, bogus=1)
    with pytest.raises(InvalidRequestError):
        tiny_model.generate([99999])
    with pytest.raises(InvalidRequestError):
        tiny_model.generate("")


def test_second_open_generation_in_same_thread_is_an_error(tiny_model: Model) -> None:
    first = tiny_model.stream(CHAT, max_tokens=5, temperature=0)
    next(first, None)
    with pytest.raises(InvalidRequestError):
        tiny_model.generate(CHAT, max_tokens=1)
    first.close()
    assert tiny_model.generate(CHAT, max_tokens=1, temperature=0) is not None


def test_cancel_midway(tiny_model: Model) -> None:
    gen = tiny_model.stream(CHAT, max_tokens=50, temperature=0, ignore_eos=True)
    for i, _ in enumerate(gen):
        if i == 2:
            gen.close()
            break
    assert gen.finish_reason == "cancelled"
    assert gen.n_generated < 50


def test_embed_shapes_and_norm(tiny_model_path: Path) -> None:
    with Model(tiny_model_path, n_ctx=128, n_threads=1, embedding=True) as model:
        one = model.embed("hello")
        many = model.embed(["hello", "something else entirely"])
        assert one.shape == (64,) and many.shape == (2, 64)
        assert np.allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)
        assert np.allclose(one, many[0], atol=1e-5)


def test_not_gguf_is_rejected_before_c(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not a model at all")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        Model(bad)
    with pytest.raises(ModelLoadError, match="not found"):
        Model(tmp_path / "missing.gguf")
    truncated = tmp_path / "trunc.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00\x05")
    with pytest.raises(ModelLoadError):
        Model(truncated)
    assert issubclass(ModelLoadError, OSError)


def test_truncated_real_file_is_rejected(tiny_model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model_path.read_bytes()[:2000])
    with pytest.raises(ModelLoadError):
        Model(cut)


def test_close_is_idempotent_and_use_after_close_is_clear(tiny_model_path: Path) -> None:
    model = Model(tiny_model_path, n_ctx=64, n_threads=1)
    model.close()
    model.close()
    with pytest.raises(ClosedError):
        model.generate("hi")
    with pytest.raises(ClosedError):
        model.tokenize("hi")


def test_missing_library_names_fetch_lib(tmp_path: Path) -> None:
    code = ("import os; os.environ['LLAMACTYPES_LIB']=%r\n"
            "from llamactypes import Model, LibraryNotFoundError\n"
            "try:\n    Model(%r)\nexcept LibraryNotFoundError as e:\n    print('ERR', e)\n") % (
        str(tmp_path / "nolib"), str(Path(__file__)))
    (tmp_path / "x.gguf").write_bytes(b"")
    code = code.replace(str(Path(__file__)), str(_write_min_gguf(tmp_path)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "ERR" in out.stdout and "fetch_lib.py" in out.stdout, out.stdout + out.stderr


def _write_min_gguf(tmp_path: Path) -> Path:
    from tests.fixtures.tiny_gguf import write_tiny_model

    return write_tiny_model(tmp_path / "m.gguf", n_layer=1)
