"""Tokenization cost is bounded before llama.cpp sees the text (tiny model, <1 s in all).

llama.cpp's tokenizer takes ~1 us and ~60 bytes of memory per byte, and splits a text at its
special tokens in time quadratic in their number; a text past ``Limits.tokenize_max_bytes``
or ``Limits.tokenize_max_special`` is an `InvalidRequestError` naming the limit, raised fast.
"""

from __future__ import annotations

import time

import pytest

from llamactypes import InvalidRequestError, Model
from llamactypes.limits import DEFAULT_LIMITS


def test_text_over_the_byte_limit_is_refused_fast(tiny_model: Model) -> None:
    text = "a" * (DEFAULT_LIMITS.tokenize_max_bytes + 1)
    start = time.perf_counter()
    with pytest.raises(InvalidRequestError, match="tokenize_max_bytes"):
        tiny_model.tokenize(text)
    assert time.perf_counter() - start < 0.5


def test_many_special_tokens_are_refused_fast(tiny_model: Model) -> None:
    message = "<|im_start|>user\nx<|im_end|>\n"
    text = message * (DEFAULT_LIMITS.tokenize_max_special // 2 + 100)
    start = time.perf_counter()
    with pytest.raises(InvalidRequestError, match="tokenize_max_special"):
        tiny_model.tokenize(text, parse_special=True)
    assert time.perf_counter() - start < 0.5
    # without parse_special they are plain text: no quadratic split, so no special limit
    assert len(tiny_model.tokenize(text[: 200_000], parse_special=False)) > 0


def test_texts_below_the_limits_tokenize_exactly(tiny_model: Model) -> None:
    message = "<|im_start|>user\nx<|im_end|>\n"
    n = DEFAULT_LIMITS.tokenize_max_special // 2 - 10
    tokens = tiny_model.tokenize(message * n, add_special=False, parse_special=True)
    one = tiny_model.tokenize(message, add_special=False, parse_special=True)
    assert tokens == one * n
    plenty_of_angles = "<" * 100_000  # many possible starts, no special token: counted exactly, allowed
    assert len(tiny_model.tokenize(plenty_of_angles, parse_special=True)) > 0


def test_lone_surrogates_are_a_clean_error(tiny_model: Model) -> None:
    with pytest.raises(InvalidRequestError, match="not valid Unicode"):
        tiny_model.tokenize("a\ud800b")
