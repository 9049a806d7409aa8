"""`Vocab`: tokenization and token pieces through llama.cpp's own tokenizer."""

from __future__ import annotations

import ctypes
from typing import Any, Sequence

from ..api import model as capi
from ..api.types import LLAMA_TOKEN_ATTR_CONTROL, LLAMA_TOKEN_ATTR_USER_DEFINED, LLAMA_TOKEN_NULL, llama_token
from ..errors import InvalidRequestError, NativeError
from ..limits import DEFAULT_LIMITS, Limits, limit_message

__all__ = ["Vocab"]


class Vocab:
    """The vocabulary of a loaded model. Valid while its owner (the model) is open."""

    def __init__(self, handle: int, owner: Any) -> None:
        self._handle = handle
        self._owner = owner  # keeps the model alive as long as the vocab is used
        self.n_tokens: int = capi.llama_vocab_n_tokens(handle)
        self._pieces: list[bytes] | None = None
        self._eog: frozenset[int] | None = None
        self._special_texts: dict[bool, list[bytes]] = {}

    @property
    def handle(self) -> int:
        self._owner.handle  # raises ClosedError once the model is closed
        return self._handle

    def _special(self, token: int) -> int | None:
        return None if token == LLAMA_TOKEN_NULL or token < 0 else token

    @property
    def bos(self) -> int | None:
        return self._special(capi.llama_vocab_bos(self.handle))

    @property
    def eos(self) -> int | None:
        return self._special(capi.llama_vocab_eos(self.handle))

    @property
    def eot(self) -> int | None:
        return self._special(capi.llama_vocab_eot(self.handle))

    @property
    def nl(self) -> int | None:
        return self._special(capi.llama_vocab_nl(self.handle))

    @property
    def add_bos(self) -> bool:
        return capi.llama_vocab_get_add_bos(self.handle)

    @property
    def add_eos(self) -> bool:
        return capi.llama_vocab_get_add_eos(self.handle)

    def is_eog(self, token: int) -> bool:
        return capi.llama_vocab_is_eog(self.handle, token)

    def is_control(self, token: int) -> bool:
        return bool(capi.llama_vocab_get_attr(self.handle, token) & LLAMA_TOKEN_ATTR_CONTROL)

    @property
    def eog_tokens(self) -> frozenset[int]:
        """Every end-of-generation token id (computed once)."""
        if self._eog is None:
            h = self.handle
            self._eog = frozenset(t for t in range(self.n_tokens) if capi.llama_vocab_is_eog(h, t))
        return self._eog

    def text(self, token: int) -> str:
        """The token's stored text (as in the GGUF vocabulary, not its decoded bytes)."""
        self._check(token)
        raw = capi.llama_vocab_get_text(self.handle, token)
        return (raw or b"").decode("utf-8", errors="replace")

    def _check(self, token: int) -> None:
        if not 0 <= token < self.n_tokens:
            raise InvalidRequestError(f"token id {token} is outside the vocabulary (0..{self.n_tokens - 1})",
                                      param="tokens")

    def tokenize(self, text: str | bytes, *, add_special: bool = True, parse_special: bool = False,
                 limits: Limits | None = None) -> list[int]:
        """Text to token ids with llama.cpp's tokenizer (the model's own rules).

        Its cost is bounded before C sees the text (`check_cost`): an `InvalidRequestError`
        past ``Limits.tokenize_max_bytes`` or ``Limits.tokenize_max_special``.
        """
        try:
            data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        except UnicodeEncodeError as exc:  # lone surrogates
            raise InvalidRequestError(f"the text is not valid Unicode: {exc.reason} at index {exc.start}",
                                      param="text") from None
        self.check_cost(data, parse_special, limits or DEFAULT_LIMITS)
        capacity = len(data) + 8
        for _ in range(2):
            buf = (llama_token * capacity)()
            n = capi.llama_tokenize(self.handle, data, len(data), buf, capacity, add_special, parse_special)
            if n >= 0:
                return buf[:n]
            if n == -(2**31):
                raise InvalidRequestError("text too long to tokenize", param="text")
            capacity = -n  # negative: the number of tokens needed
        raise NativeError("llama_tokenize kept asking for a larger buffer", code=n)

    def check_cost(self, data: bytes, parse_special: bool, limits: Limits = DEFAULT_LIMITS) -> None:
        """Refuse text whose tokenization would cost too much time or memory (see `Limits`)."""
        if len(data) > limits.tokenize_max_bytes:
            raise InvalidRequestError(limit_message(
                "the text to tokenize (bytes)", len(data), limits.tokenize_max_bytes,
                "raise Limits.tokenize_max_bytes, see docs/limits.md"), param="text")
        most = limits.tokenize_max_special
        if len(data) <= most * 2:  # a special token takes at least one byte; short texts are cheap anyway
            return
        texts = self.special_texts(parse_special)
        if not texts:
            return
        # cheap upper bound first: every place where some special text could start
        starts = {t[:1] for t in texts}
        if sum(data.count(b) for b in starts) <= most:
            return
        found = sum(data.count(t) for t in texts)
        if found > most:
            raise InvalidRequestError(limit_message(
                "the number of special-token texts in the text to tokenize", found, most,
                "raise Limits.tokenize_max_special, see docs/limits.md"), param="text")

    def special_texts(self, parse_special: bool) -> list[bytes]:
        """The texts llama.cpp splits a text at before tokenizing it (its ``cache_special_tokens``:
        control and user-defined tokens; only the latter without `parse_special`)."""
        texts = self._special_texts.get(parse_special)
        if texts is None:
            h = self.handle
            wanted = LLAMA_TOKEN_ATTR_USER_DEFINED | (LLAMA_TOKEN_ATTR_CONTROL if parse_special else 0)
            texts = []
            for token in range(self.n_tokens):
                if capi.llama_vocab_get_attr(h, token) & wanted:
                    raw = capi.llama_vocab_get_text(h, token)
                    if raw:
                        texts.append(bytes(raw))
            self._special_texts[parse_special] = texts
        return texts

    def piece(self, token: int, *, special: bool = True) -> bytes:
        """The exact bytes a token emits (special tokens rendered when `special`)."""
        self._check(token)
        size = 32
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = capi.llama_token_to_piece(self.handle, token, buf, size, 0, special)
            if n >= 0:
                return buf.raw[:n]
            size = -n
        raise NativeError("llama_token_to_piece kept asking for a larger buffer", code=n)

    def pieces(self) -> list[bytes]:
        """Every token's bytes, special tokens rendered (built once, then cached)."""
        if self._pieces is None:
            self._pieces = [self.piece(t) for t in range(self.n_tokens)]
        return self._pieces

    def detokenize(self, tokens: Sequence[int], *, remove_special: bool = False,
                   unparse_special: bool = False) -> bytes:
        """Token ids back to bytes with llama.cpp's detokenizer (byte-exact)."""
        for t in tokens:
            self._check(t)
        n_tokens = len(tokens)
        arr = (llama_token * max(1, n_tokens))(*tokens)
        size = max(16, n_tokens * 8)
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = capi.llama_detokenize(self.handle, arr, n_tokens, buf, size, remove_special, unparse_special)
            if n >= 0:
                return buf.raw[:n]
            size = -n
        raise NativeError("llama_detokenize kept asking for a larger buffer", code=n)
