"""The batched engine's decisions, as pure logic over small slot objects (no native code).

A `Slot` is one sequence of the shared context: what its memory holds (`cached`),
the request it serves, and the tokens it still has to feed (`pending`: the prompt
not yet read, or the one token just sampled). Every step of the worker is one
`llama_decode` that carries, in this order:

- one token with logits for every slot whose `pending` is a single token (a
  generating slot's last sample, or the last token of a prompt: that one is always
  decoded alone in its row, as `Model.stream` does, so a cached prefix never
  changes what is sampled);
- then, within what the batch and the time budget leave, a chunk of the oldest
  unread prompts (chunked prefill).

The chunk is sized by time (`ChunkSizer`), not by a fixed count: reading a prompt
token costs more the more context its sequence already holds, and the point is
that no generating stream waits longer than one step.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

__all__ = ["Slot", "Entry", "ChunkSizer", "IDLE", "PROMPT", "GENERATING", "common_prefix", "choose_slot",
           "plan_step", "cells", "choose_donor"]

IDLE, PROMPT, GENERATING = "idle", "prompt", "generating"

_runs = itertools.count(1)  # ids of runs of KV cells (see `Slot.segs`)


@dataclass(eq=False)
class Slot:
    """One sequence id of the shared context and the request it serves (None: idle)."""

    id: int
    cached: list[int] = field(default_factory=list)  # the tokens its memory holds, in order
    work: Any = None
    pending: list[int] = field(default_factory=list)
    n_cached: int = 0  # prompt tokens reused when the current request was admitted
    n_prompt: int = 0  # the length of the last prompt it read (where a saved state should end)
    last_used: float = 0.0
    admitted: int = 0  # admission order: older prompts are read first
    #: where the cells of `cached` live: [run id, start, end) spans. A run is cells one slot decoded; a
    #: prefix borrowed from another slot (`borrow`) keeps the donor's run ids, so the cells that
    #: sequences share are counted once (`cells`).
    segs: list[list[int]] = field(default_factory=list)
    run: int = field(default_factory=lambda: next(_runs))

    @property
    def state(self) -> str:
        if self.work is None:
            return IDLE
        return GENERATING if getattr(self.work, "generating", False) else PROMPT

    def extend(self, tokens: Sequence[int]) -> None:
        """Tokens decoded into this slot's own new cells."""
        if not tokens:
            return
        start = len(self.cached)
        self.cached.extend(tokens)
        last = self.segs[-1] if self.segs else None
        if last is not None and last[0] == self.run and last[2] == start:
            last[2] = len(self.cached)
        else:
            self.segs.append([self.run, start, len(self.cached)])

    def keep(self, n: int) -> None:
        """The memory now holds only the first `n` tokens (cells past them are freed)."""
        if n >= len(self.cached):
            return
        del self.cached[n:]
        self.segs = [[r, a, min(b, n)] for r, a, b in self.segs if a < n]
        self.run = next(_runs)  # cells decoded from here on are new ones, even where a borrower keeps old ones

    def reset(self, tokens: Sequence[int] = ()) -> None:
        """The memory was replaced: it holds `tokens` in cells of its own (a restored state), or nothing."""
        self.cached = list(tokens)
        self.run = next(_runs)
        self.segs = [[self.run, 0, len(self.cached)]] if self.cached else []

    def borrow(self, donor: Slot, n: int) -> None:
        """The memory now holds the donor's first `n` tokens in the donor's own cells (shared)."""
        self.cached = list(donor.cached[:n])
        self.segs = [[r, a, min(b, n)] for r, a, b in donor.segs if a < n]
        self.run = next(_runs)

    def describe(self) -> dict[str, Any]:
        """The `/slots` view of this slot."""
        return {"id": self.id, "state": self.state, "n_cached": len(self.cached), "last_used": self.last_used}


@dataclass(frozen=True)
class Entry:
    """What one slot puts into a step: `tokens` from position `pos`, logits kept for the last one or not."""

    slot: Slot
    tokens: Sequence[int]
    pos: int
    logits: bool


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def choose_slot(slots: Iterable[Slot], prompt: Sequence[int]) -> tuple[Slot, int] | None:
    """The idle slot for `prompt` and how many of its tokens it can reuse, or None when all are busy.

    Each idle slot scores what it keeps minus what it loses: the prefix it shares with the
    prompt (at most len(prompt) - 1: the last prompt token is always decoded) minus the cached
    tokens past it, which the new request overwrites. So a conversation that comes back finds
    its slot, while a short request that only shares a chat template's opening goes to an empty
    slot, or the one whose loss is smallest, instead of wiping a long conversation. A request
    that holds the slot's whole last prompt is that conversation again (retried, or continued
    after another answer): it loses nothing worth keeping and takes the slot back, instead of
    spreading one client's turns over every slot (each kept slot widens the unified cache that
    every step attends over). Ties go to the least recently used slot.
    """
    best: tuple[tuple[int, int, float], Slot, int] | None = None
    limit = max(len(prompt) - 1, 0)
    for slot in slots:
        if slot.work is not None:
            continue
        n = min(common_prefix(slot.cached, prompt), limit)
        same = slot.n_prompt > 0 and n >= min(slot.n_prompt, len(slot.cached)) - 1
        lost = 0 if same else len(slot.cached) - n
        key = (n - lost, 1 if not slot.cached else 0, -slot.last_used)
        if best is None or key > best[0]:
            best = (key, slot, n)
    return None if best is None else (best[1], best[2])


def choose_donor(slots: Iterable[Slot], slot: Slot, prompt: Sequence[int], n_have: int) -> tuple[Slot, int] | None:
    """Another slot (idle or busy) whose memory holds a longer prefix of `prompt` than `slot` has
    (`n_have`), and that prefix's length (at most len(prompt) - 1), or None."""
    best: tuple[Slot, int] | None = None
    limit = max(len(prompt) - 1, 0)
    for other in slots:
        if other is slot:
            continue
        n = min(common_prefix(other.cached, prompt), limit)
        if n > (best[1] if best else n_have):
            best = (other, n)
    return best


def cells(slots: Iterable[Slot], without: Iterable[Slot] = (), keep: dict[Slot, int] | None = None) -> int:
    """KV cells the slots' memories occupy, shared prefixes counted once; `without`: as if those
    slots were cleared, `keep`: as if those slots were cut to so many tokens."""
    gone = set(without)
    keep = keep or {}
    spans: dict[int, list[tuple[int, int]]] = {}
    for slot in slots:
        if slot in gone:
            continue
        n = keep.get(slot, len(slot.cached))
        for run, a, b in slot.segs:
            if a < n:
                spans.setdefault(run, []).append((a, min(b, n)))
    total = 0
    for ranges in spans.values():
        ranges.sort()
        end = 0
        for a, b in ranges:
            if b > end:
                total += b - max(a, end)
                end = b
    return total


def plan_step(active: Sequence[Slot], n_batch: int, prefill_budget: int) -> list[Entry]:
    """The entries of the next decode: every single pending token first (each with logits), then
    prompt chunks of the oldest admitted slots, at most `prefill_budget` tokens in all, never past
    `n_batch` tokens in the batch."""
    entries = [Entry(s, s.pending[:1], len(s.cached), True) for s in active if len(s.pending) == 1]
    room = min(n_batch - len(entries), prefill_budget)
    for slot in sorted((s for s in active if len(s.pending) > 1), key=lambda s: s.admitted):
        if room <= 0:
            break
        n = min(len(slot.pending) - 1, room)  # the last prompt token goes alone, with logits
        entries.append(Entry(slot, slot.pending[:n], len(slot.cached), False))
        room -= n
    return entries


class ChunkSizer:
    """How many prompt tokens one step may read so that it lasts about `target` seconds.

    It learns from the steps it sees: a step costs `base` (the one-token rows, from steps
    without prefill) plus, per prompt token, `a + b * depth` where depth is how much
    context that token's sequence already holds (attention reads all of it). `a` and `b`
    come from a least-squares fit over the recent chunks.
    """

    def __init__(self, target: float = 0.25, n_min: int = 16, n_max: int = 512, first: int = 64,
                 window: int = 32) -> None:
        self.target = target
        self.n_min = n_min
        self.n_max = n_max
        self.first = first
        self.base = 0.0
        self._samples: deque[tuple[float, float]] = deque(maxlen=window)

    def observe(self, n_single: int, n_prefill: int, depth: float, seconds: float) -> None:
        """Record one step: its one-token rows, prompt tokens read, their mean depth, its duration."""
        if n_prefill == 0:
            if n_single:
                self.base = seconds if self.base == 0 else 0.8 * self.base + 0.2 * seconds
            return
        per_token = max(seconds - (self.base if n_single else 0.0), 0.0) / n_prefill
        self._samples.append((depth, per_token))

    def cost(self) -> tuple[float, float]:
        """(a, b): seconds per prompt token at depth 0, and what each token of depth adds."""
        if not self._samples:
            return 0.0, 0.0
        # a step slowed by something else on the machine only ever looks slower: drop outliers
        cut = 4 * sorted(c for _, c in self._samples)[len(self._samples) // 2]
        kept = [(d, c) for d, c in self._samples if c <= cut] or list(self._samples)
        depths = [d for d, _ in kept]
        costs = [c for _, c in kept]
        mean_d = sum(depths) / len(depths)
        mean_c = sum(costs) / len(costs)
        var = sum((d - mean_d) ** 2 for d in depths)
        b = 0.0
        if var > 1e-9 and len(depths) > 2:
            b = max(sum((d - mean_d) * (c - mean_c) for d, c in zip(depths, costs)) / var, 0.0)
        a = max(mean_c - b * mean_d, mean_c * 0.1, 1e-7)
        return a, b

    def tokens(self, depth: int) -> int:
        """Prompt tokens the next step may read when the chunk starts at `depth`."""
        if not self._samples:
            return max(self.n_min, min(self.first, self.n_max))
        a, b = self.cost()
        budget = max(self.target - self.base, self.target * 0.2)
        # n * (a + b * (depth + n / 2)) = budget  (the cost grows along the chunk)
        k = a + b * depth
        if b > 0:
            n = (-k + math.sqrt(k * k + 2 * b * budget)) / b
        else:
            n = budget / k
        return int(max(self.n_min, min(self.n_max, n)))
