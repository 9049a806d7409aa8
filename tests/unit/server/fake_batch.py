"""A scripted multi-sequence decoder for the batched engine's unit tests (no native code).

`FakeBackend` keeps, per sequence, the tokens its "memory" holds and checks every batch as
llama.cpp would (positions follow on, no sequence past the context, at most n_batch tokens).
The logits of a row say, deterministically, "the next token is (last token + 1) mod 256":
so a sequence's continuation depends on its own tokens only, and anything mixed between
sequences shows. Each decode advances a fake clock by a cost that grows with the prompt
tokens read and with the depth they are read at, like the real thing.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from llamactypes.engine.batching import SlotRequest
from llamactypes.engine.job import Job
from llamactypes.engine.scheduler import Scheduler
from llamactypes.errors import DecodeError
from llamactypes.generation import GenerateOptions, TokenStep
from llamactypes.native.batch import Aborted
from llamactypes.sampling import SamplingParams

N_VOCAB = 256


class FakeBackend:
    def __init__(self, n_ctx: int = 4096, n_batch: int = 512, n_seq: int = 4, *, single_cost: float = 0.005,
                 token_cost: float = 0.001, depth_cost: float = 1e-6, can_cut: bool = True) -> None:
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.memory: dict[int, list[int]] = {i: [] for i in range(n_seq)}
        #: the cell each of a sequence's tokens lives in (a shared prefix: the same cells in two sequences)
        self.cells: dict[int, list[int]] = {i: [] for i in range(n_seq)}
        self._next_cell = 0
        self.now = 0.0
        self.single_cost = single_cost
        self.token_cost = token_cost
        self.depth_cost = depth_cost
        self.can_cut = can_cut
        self.batches: list[list[tuple[int, int, int, bool]]] = []  # (seq, pos, token, logits)
        self.durations: list[float] = []
        self.abort_after: int | None = None  # abort the next decode after this many tokens
        self.checkpoints = 0
        self._rows: list[int] = []
        self.lock = threading.Lock()

    @property
    def used(self) -> int:
        """Cells in use, each once however many sequences hold it (llama.cpp's unified KV cache)."""
        return len({c for held in self.cells.values() for c in held})

    def _cut(self, seq: int, n: int) -> None:
        del self.memory[seq][n:]
        del self.cells[seq][n:]

    def clock(self) -> float:
        return self.now

    def decode(self, tokens: Sequence[int], pos: Sequence[int], seq: Sequence[int], logits: Sequence[bool]) -> None:
        assert 0 < len(tokens) <= self.n_batch
        if self.used + len(tokens) > self.n_ctx:
            raise DecodeError("no KV slot for the batch", code=1)
        self.batches.append(list(zip(seq, pos, tokens, logits)))
        cost = 0.0
        self._rows = []
        for i, (s, p, t, want) in enumerate(zip(seq, pos, tokens, logits)):
            if self.abort_after is not None and i >= self.abort_after:
                self.abort_after = None
                self.now += cost
                raise Aborted("aborted", code=2)
            assert p == len(self.memory[s]), f"seq {s}: position {p} after {len(self.memory[s])} tokens"
            self.memory[s].append(int(t))
            self.cells[s].append(self._next_cell)
            self._next_cell += 1
            cost += self.single_cost if want else self.token_cost + self.depth_cost * p
            self._rows.append(int(t))
        self.durations.append(cost)
        self.now += cost

    def logits(self, row: int) -> np.ndarray:
        out = np.zeros(N_VOCAB, dtype=np.float32)
        out[(self._rows[row] + 1) % N_VOCAB] = 10.0
        return out

    def prepare(self, seq: int, prompt: Sequence[int]) -> int:
        held = self.memory[seq]
        n = 0
        while n < min(len(held), len(prompt) - 1) and held[n] == prompt[n]:
            n += 1
        if n < len(held):
            if self.can_cut:
                self._cut(seq, n)
            else:  # like a recurrent state without checkpoints: read it all again
                self._cut(seq, 0)
                n = 0
        return n

    def truncate(self, seq: int, n_keep: int) -> int:
        held = self.memory[seq]
        if n_keep < len(held):
            self._cut(seq, n_keep if self.can_cut else 0)
        return len(held)

    def checkpoint(self, seq: int) -> None:
        self.checkpoints += 1

    def clear(self, seq: int) -> None:
        self._cut(seq, 0)

    def share(self, dst: int, src: int, n: int) -> int:
        if not self.can_cut:
            return 0
        self.memory[dst] = self.memory[src][:n]
        self.cells[dst] = self.cells[src][:n]
        return len(self.memory[dst])

    def seq_pos_max(self, seq: int) -> int:
        return len(self.memory[seq]) - 1

    can_save = True

    def save(self, seq: int) -> bytes:
        return bytes(self.memory[seq])

    def restore(self, seq: int, tokens: Sequence[int], data: bytes) -> bool:
        assert list(data) == list(tokens)
        self.memory[seq] = list(data)
        self.cells[seq] = list(range(self._next_cell, self._next_cell + len(data)))
        self._next_cell += len(data)
        return True


class DictCache:
    """A prompt cache with the PromptCache interface, unbounded (the bounds are memory's tests)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, ...], bytes] = {}
        self.puts = 0
        self.bytes = 0
        self.evictions = 0

    def put(self, tokens: Sequence[int], state: bytes) -> None:
        self.puts += 1
        self.entries[tuple(tokens)] = state
        self.bytes = sum(len(v) for v in self.entries.values())

    def __contains__(self, tokens: Sequence[int]) -> bool:
        return tuple(tokens) in self.entries

    def lookup(self, tokens: Sequence[int]) -> tuple[int, bytes] | None:
        best = None
        for key, state in self.entries.items():
            if len(key) <= len(tokens) and tuple(tokens[:len(key)]) == key and (best is None or len(key) > best[0]):
                best = (len(key), state)
        return best


class Collected:
    """What a slot request sent back: text pieces and how it ended."""

    def __init__(self) -> None:
        self.text = ""
        self.n_cached: int | None = None
        self.step: TokenStep | None = None


def slot_job(scheduler: Scheduler[Job], prompt: str | Sequence[int], max_tokens: int | None = 8,
             stop: Sequence[str] = ()) -> tuple[Job, Collected]:
    """A queued job for the batched worker with a greedy TokenStep over byte tokens."""
    tokens = list(prompt.encode()) if isinstance(prompt, str) else list(prompt)
    step = TokenStep(prompt=tokens, options=GenerateOptions(max_tokens=max_tokens, stop=tuple(stop),
                                                            sampling=SamplingParams(temperature=0.0)),
                     n_vocab=N_VOCAB, pieces=lambda t: bytes([t]), eog=frozenset(), budget=10**9)
    out = Collected()
    out.step = step
    job = Job("chat", None, scheduler, len(tokens))

    def on_text(text: str) -> None:
        out.text += text

    def on_end(n_cached: int) -> None:
        out.n_cached = n_cached

    job.work = SlotRequest(job, tokens, step, on_text, on_end)
    scheduler.submit(job)
    return job, out


def alone(prompt: str, max_tokens: int) -> str:
    """What the fake model continues `prompt` with: each byte + 1."""
    last = prompt.encode()[-1]
    return bytes((last + 1 + i) % N_VOCAB for i in range(max_tokens)).decode("latin-1")
