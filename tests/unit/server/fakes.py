"""A scripted stand-in for `Model`: just what the engine and the chat layer use, no native code.

`FakeModel.script` decides what each generation produces: a list of text pieces,
or a callable taking the prompt text and returning one. `delay` sleeps before
each piece; `gate` (a threading.Event) holds the first piece until set, so tests
can line requests up in the queue deterministically.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


class FakeGeneration:
    """Iterates scripted pieces; honours max_tokens (one piece = one token), stop strings and cancel."""

    def __init__(self, model: FakeModel, prompt: Sequence[int], pieces: list[str], options: dict[str, Any]) -> None:
        self.model = model
        self.n_prompt = len(prompt)
        self.n_cached = model.shared_prefix(prompt)
        self.options = options
        self.pieces = pieces
        self.finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.tokens: list[int] = []
        self.text = ""
        self._cancel = threading.Event()
        self._gen = self._run()

    def __iter__(self) -> FakeGeneration:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    @property
    def n_generated(self) -> int:
        return len(self.tokens)

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        self._cancel.set()
        try:
            self._gen.close()
        except ValueError:
            pass

    def _run(self) -> Iterator[str]:
        with self.model.lock:
            self.model.running += 1
            try:
                yield from self._loop()
            finally:
                self.model.running -= 1
                if self.finish_reason is None:
                    self.finish_reason = "cancelled"

    def _loop(self) -> Iterator[str]:
        budget = self.options.get("max_tokens")
        stops = [s for s in self.options.get("stop", ()) if s]
        if self.model.gate is not None:
            while not self.model.gate.wait(0.01):
                if self._cancel.is_set():
                    self.finish_reason = "cancelled"
                    return
        for piece in self.pieces:
            if self._cancel.is_set():
                self.finish_reason = "cancelled"
                return
            if budget is not None and len(self.tokens) >= budget:
                self.finish_reason = "length"
                return
            if self.model.delay:
                time.sleep(self.model.delay)
            self.tokens.append(len(self.tokens))
            for stop in stops:
                if stop in self.text + piece:
                    cut = (self.text + piece).index(stop)
                    rest = (self.text + piece)[len(self.text):cut]
                    self.text += rest
                    if rest:
                        yield rest
                    self.finish_reason, self.stop_sequence = "stop_sequence", stop
                    return
            self.text += piece
            yield piece
        self.finish_reason = "stop"


class FakeModel:
    """Duck-types `llamactypes.Model` for the engine and `chat_build` (ChatML template, byte tokens)."""

    name = "fake-model"
    n_vocab = 256 + len(SPECIALS)
    n_ctx_train = 4096
    n_embd = 4

    def __init__(self, script: list[str] | Callable[[str], list[str]] | None = None, *, n_ctx: int = 4096,
                 delay: float = 0.0) -> None:
        self.script = script if script is not None else ["Hello", " there", "!"]
        self.n_ctx = n_ctx
        self.delay = delay
        self.gate: threading.Event | None = None
        self.chat_template = CHATML
        self.chat_templates: dict[str, str] = {}
        self.metadata: dict[str, Any] = {"tokenizer.ggml.add_bos_token": False}
        self.bos = None
        self.eos = 0
        self.lock = threading.Lock()
        self.running = 0
        self.calls: list[dict[str, Any]] = []
        self.prompts: list[str] = []
        self.cache: list[int] = []
        self.closed = False

    # tokens: one per byte, specials parsed when asked
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        out: list[int] = []
        i = 0
        while i < len(text):
            for k, special in enumerate(SPECIALS):
                if parse_special and text.startswith(special, i):
                    out.append(256 + k)
                    i += len(special)
                    break
            else:
                out.extend(text[i].encode())
                i += 1
        return out

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> str:
        data = b"".join(SPECIALS[t - 256].encode() if t >= 256 else bytes([t]) for t in tokens)
        return data.decode("utf-8", errors="replace")

    def token_piece(self, token: int, special: bool = True) -> bytes:
        return SPECIALS[token - 256].encode() if token >= 256 else bytes([token])

    def shared_prefix(self, prompt: Sequence[int]) -> int:
        n = 0
        while n < min(len(self.cache), len(prompt) - 1) and self.cache[n] == prompt[n]:
            n += 1
        self.cache = list(prompt)
        return n

    def stream(self, prompt: Sequence[int], **options: Any) -> FakeGeneration:
        text = self.detokenize(prompt)
        self.prompts.append(text)
        self.calls.append(options)
        pieces = self.script(text) if callable(self.script) else list(self.script)
        return FakeGeneration(self, prompt, pieces, options)

    def embed(self, texts: Sequence[str], should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        with self.lock:
            rows = [[len(t), sum(map(ord, t)) % 7, 1.0, 0.5] for t in texts]
        out = np.array(rows, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)
