"""Our sampler chain in numpy, with an optional grammar constraint.

The chain reads the context's logits as a numpy view and edits them in place
(bias and penalties touch only a few entries), so no step copies the 49k-wide
vector. Top-k never sorts the whole vocabulary: a threshold below the maximum
picks a small superset of the k best, which is then partitioned.

With a constraint the result is always exactly what masking the whole
vocabulary first would give, but the mask is rarely built: greedy checks the
argmax (then the next best, in order); top-k walks candidates in logit order
until k allowed tokens are found, or stops earlier once the allowed tokens it
has not reached (all below the last logit walked) could no longer change the
draw: too light to move top-p's cut, too low for min-p's floor. A grammar
position whose mask is already cached is one vectorized lookup instead; a
narrow position (most of the best tokens refused) builds its mask once, so
its next visit is a lookup. Only top-k off means a full mask every step.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter, deque
from typing import Protocol

import numpy as np

from .params import SamplingParams

__all__ = ["Sampler", "TokenFilter"]

_NEG_INF = np.float32(-np.inf)


class TokenFilter(Protocol):
    """What the sampler needs from a grammar constraint."""

    def allows(self, token: int) -> bool: ...

    def mask(self) -> np.ndarray: ...

    # optional: `known_mask() -> np.ndarray | None`, the mask when it is already cached


class Sampler:
    """Chooses tokens for one generation; owns its RNG and the penalty history."""

    #: how many candidates (in logit order) the constrained paths look at before masking everything
    WALK_LIMIT = 256

    def __init__(self, params: SamplingParams, n_vocab: int, history: list[int] | None = None) -> None:
        self.params = params
        self.n_vocab = n_vocab
        seed = params.seed if params.seed is not None else int(np.random.SeedSequence().entropy % (2**63))
        self.rng = np.random.default_rng(seed)
        last_n = params.repeat_last_n
        self._history: deque[int] = deque(maxlen=None if last_n < 0 else max(last_n, 0))
        self._counts: Counter[int] = Counter()
        self._deltas: dict[int, float] = {}  # per k: the pool width that worked last step
        if params.logit_bias:
            items = [(int(t), float(b)) for t, b in params.logit_bias.items() if 0 <= int(t) < n_vocab]
            self._bias_ids = np.array([t for t, _ in items], dtype=np.int64)
            self._bias_vals = np.array([b for _, b in items], dtype=np.float32)
        else:
            self._bias_ids = None
        if history and params.uses_penalties:
            keep = self._history.maxlen
            for token in (history if keep is None else history[len(history) - keep:] if keep else ()):
                self.accept(token)  # only the window counts: a 20k-token prompt costs 64 steps

    # ------------------------------------------------------------ state

    def accept(self, token: int) -> None:
        """Record a chosen token for the repetition penalties."""
        if not self.params.uses_penalties or self._history.maxlen == 0:
            return
        if self._history.maxlen is not None and len(self._history) == self._history.maxlen:
            old = self._history[0]
            self._counts[old] -= 1
            if self._counts[old] <= 0:
                del self._counts[old]
        self._history.append(token)
        self._counts[token] += 1

    # ------------------------------------------------------------ chain

    def prepare(self, logits: np.ndarray) -> None:
        """Apply logit bias and repetition penalties in place (only the touched entries)."""
        if self._bias_ids is not None:
            logits[self._bias_ids] += self._bias_vals
        if self._counts:
            p = self.params
            ids = np.fromiter(self._counts.keys(), dtype=np.int64, count=len(self._counts))
            counts = np.fromiter(self._counts.values(), dtype=np.float32, count=len(self._counts))
            vals = logits[ids]
            if p.repeat_penalty != 1.0:
                vals = np.where(vals > 0, vals / p.repeat_penalty, vals * p.repeat_penalty)
            vals = vals - counts * p.frequency_penalty - p.presence_penalty
            logits[ids] = vals

    def sample(self, logits: np.ndarray, constraint: TokenFilter | None = None) -> int:
        """Choose the next token from (prepared) logits, honouring `constraint` exactly."""
        p = self.params
        u = self.rng.random()  # one draw per step, whichever path below is taken
        if p.greedy:
            token = int(np.argmax(logits))
            if constraint is None or constraint.allows(token):
                return token
            return self._greedy_constrained(logits, constraint)
        if p.top_k > 0:
            k = min(p.top_k, self.n_vocab)
            if constraint is not None:
                return self._sample_top_k_allowed(logits, k, constraint, u)
            cand = self._top_k(logits, k)
        else:
            if constraint is not None:
                logits = np.where(constraint.mask(), logits, _NEG_INF)
            cand = self._nucleus(logits)
        return self._draw_sure(logits, cand, u)

    # ------------------------------------------------------------ pieces

    def _top_k(self, logits: np.ndarray, k: int) -> np.ndarray:
        """Indices of the k largest logits, sorted descending (ties: lower id first)."""
        pool = self._pool(logits, k)
        if pool.size > k:
            pool = pool[np.argpartition(-logits[pool], k - 1)[:k]]
        return pool[np.lexsort((pool, -logits[pool]))]

    def _pool(self, logits: np.ndarray, k: int) -> np.ndarray:
        """A small superset of the top-k ids: everything within `delta` of the maximum."""
        n = logits.size
        if k >= n:
            return np.arange(n)
        top = logits.max()
        if not np.isfinite(top):
            return np.flatnonzero(np.isfinite(logits))
        delta = self._deltas.get(k, 8.0)
        for _ in range(6):
            pool = np.flatnonzero(logits >= top - delta)
            if pool.size >= k:
                # Too wide (a flat distribution): narrow it by filtering the pool itself,
                # far cheaper than partitioning thousands of candidates.
                while pool.size > 16 * k and delta > 1 / 64:
                    narrower = pool[logits[pool] >= top - delta / 2]
                    if narrower.size < k:
                        break
                    pool, delta = narrower, delta / 2
                self._deltas[k] = min(delta, 64.0)  # a good start for the next step (per k)
                return pool
            delta *= 4
        return np.argpartition(logits, n - k)[n - k:]

    def _ordered(self, logits: np.ndarray, limit: int) -> np.ndarray:
        """Up to `limit` best ids in descending logit order."""
        return self._top_k(logits, min(limit, logits.size))

    def _greedy_constrained(self, logits: np.ndarray, constraint: TokenFilter) -> int:
        mask = _known_mask(constraint)
        if mask is None:
            for token in self._ordered(logits, self.WALK_LIMIT):
                if not np.isfinite(logits[token]):
                    break
                if constraint.allows(int(token)):
                    return int(token)
            mask = constraint.mask()
        ids = np.flatnonzero(mask)
        if ids.size == 0:
            raise _NoCandidate()
        token = int(ids[np.argmax(logits[ids])])  # first maximum: the lowest id, as argmax gives
        if not np.isfinite(logits[token]):
            raise _NoCandidate()
        return token

    def _sample_top_k_allowed(self, logits: np.ndarray, k: int, constraint: TokenFilter, u: float) -> int:
        """Draw as top-k after a full mask would, building the mask only when it must.

        Cheap paths first: one vectorized lookup when the grammar position's mask is already
        cached; else a walk down the logit order checking tokens one by one, which stops as
        soon as the tokens not yet seen cannot change the draw (see `_draw`'s `hidden`).
        """
        mask = _known_mask(constraint)
        if mask is not None:
            return self._draw_sure(logits, self._top_k_in(logits, k, mask, walk=True), u)
        allowed: list[int] = []
        seen: set[int] = set()
        for limit in (k, max(self.WALK_LIMIT, 4 * k)):
            ordered = self._ordered(logits, limit)
            for token in ordered.tolist():
                if token in seen:
                    continue
                seen.add(token)
                if not logits[token] > _NEG_INF:  # the rest is -inf: every candidate was seen
                    return self._draw_sure(logits, np.array(allowed, dtype=np.int64), u)
                if constraint.allows(token):
                    allowed.append(token)
                    if len(allowed) == k:
                        return self._draw_sure(logits, np.array(allowed, dtype=np.int64), u)
            if ordered.size >= logits.size:
                return self._draw_sure(logits, np.array(allowed, dtype=np.int64), u)
            if allowed:  # the unseen allowed ones lie at or below the last logit walked
                token = self._draw(logits, np.array(allowed, dtype=np.int64), u,
                                   hidden=(k - len(allowed), float(logits[ordered[-1]])))
                if token is not None:
                    return token
            if len(allowed) * 2 < len(seen):
                # Most of the best tokens are refused: a narrow grammar position, which tends
                # to recur (JSON punctuation, keys). Its mask, built once and cached, makes
                # the next visit one lookup.
                break
        return self._draw_sure(logits, self._top_k_in(logits, k, constraint.mask(), walk=True), u)

    def _draw_sure(self, logits: np.ndarray, cand: np.ndarray, u: float) -> int:
        if cand.size == 0:
            raise _NoCandidate()
        token = self._draw(logits, cand, u)
        assert token is not None  # nothing hidden: always decided
        return token

    def _top_k_in(self, logits: np.ndarray, k: int, mask: np.ndarray, *, walk: bool) -> np.ndarray:
        """The k best finite ids where `mask` is True, in descending logit order."""
        if walk:
            for limit in (k, max(self.WALK_LIMIT, 4 * k)):
                ordered = self._ordered(logits, limit)
                hits = ordered[mask[ordered]]
                if hits.size >= k or ordered.size >= logits.size:
                    hits = hits[:k]
                    return hits[np.isfinite(logits[hits])]
        ids = np.flatnonzero(mask)
        vals = logits[ids]
        if ids.size > k:
            part = np.argpartition(-vals, k - 1)[:k]
            ids, vals = ids[part], vals[part]
        order = np.lexsort((ids, -vals))
        ids = ids[order]
        return ids[np.isfinite(logits[ids])]

    def _nucleus(self, logits: np.ndarray) -> np.ndarray:
        """Without top-k: the top-p nucleus (then min-p), sorted, without sorting the vocabulary.

        Everything outside a threshold pool has a lower logit than everything inside it, so
        once the pool holds `top_p` of the probability mass, the nucleus lies within it.
        """
        p = self.params
        top = float(logits.max())
        if not math.isfinite(top):
            return np.empty(0, dtype=np.int64)
        if p.top_p >= 1.0:
            if p.min_p <= 0.0:  # nothing truncates: draw from everything, no order needed
                return np.flatnonzero(np.isfinite(logits))
            ids = np.flatnonzero(logits >= top + math.log(p.min_p))
            return ids[np.lexsort((ids, -logits[ids]))]
        weights = np.exp((logits - top).astype(np.float64))
        target = p.top_p * float(weights.sum())
        delta = 4.0
        while True:
            pool = np.flatnonzero(logits >= top - delta)
            if float(weights[pool].sum()) >= target or pool.size == logits.size or delta > 1e4:
                break
            delta *= 2
        pool = pool[np.lexsort((pool, -logits[pool]))]
        keep = int(np.searchsorted(np.cumsum(weights[pool]), target) + 1)
        return pool[:keep]

    def _draw(self, logits: np.ndarray, cand: np.ndarray, u: float,
              hidden: tuple[int, float] | None = None) -> int | None:
        """top-p → min-p → temperature → draw, on candidates sorted by descending logit.

        `hidden` = (count, bound): up to `count` more top-k members exist, none above logit
        `bound`, not listed (a constrained walk that stopped early). Their weight can only
        move the top-p cut; when the cut after min-p is the same whether they weigh nothing
        or the most they could, the draw is exactly the full one, else None is returned.
        The candidate list is short (top-k), so plain floats beat a dozen tiny numpy calls.
        """
        p = self.params
        if cand.size > 256:
            return None if hidden is not None and hidden[0] > 0 else self._draw_large(logits, cand, u)
        ids = cand.tolist()
        vals = [v for v in logits[cand].tolist() if v != -math.inf]
        if not vals:
            raise _NoCandidate()
        ids = ids[: len(vals)]
        top = vals[0]
        lo = hi = len(vals)
        hidden_weight = 0.0
        if hidden is not None and hidden[0] > 0:
            # an upper bound on their summed weight, a little generous against rounding
            hidden_weight = hidden[0] * math.exp(min(hidden[1], top) - top) * (1 + 1e-9)
            hi = None
        if p.top_p < 1.0 and (len(vals) > 1 or hidden_weight):
            weights = [math.exp(v - top) for v in vals]
            total = sum(weights)
            lo = _top_p_cut(weights, p.top_p * total)
            hi = _top_p_cut(weights, p.top_p * (total + hidden_weight)) if hidden_weight else lo
        if p.min_p > 0.0 and (len(vals) > 1 or hidden_weight):
            floor = top + math.log(p.min_p)
            n_floor = sum(1 for v in vals if v >= floor)
            lo = max(1, min(lo, n_floor))
            if hi is not None:
                hi = max(1, min(hi, n_floor))
            elif hidden is not None and hidden[1] < floor:  # the unlisted ones fall under min-p
                hi = max(1, n_floor)
        if hi != lo:
            return None
        vals, ids = vals[:lo], ids[:lo]
        inv_t = 1.0 / p.temperature
        cdf = list(itertools.accumulate(math.exp((v - top) * inv_t) for v in vals))
        idx = bisect.bisect_right(cdf, u * cdf[-1])
        return ids[min(idx, len(ids) - 1)]

    def _draw_large(self, logits: np.ndarray, cand: np.ndarray, u: float) -> int:
        """The same chain as `_draw`, vectorized, for large candidate sets (no top-k)."""
        p = self.params
        vals = logits[cand].astype(np.float64)
        finite = np.isfinite(vals)
        vals, cand = vals[finite], cand[finite]
        top = vals.max()
        if p.min_p > 0.0:
            keep = max(1, int(np.count_nonzero(vals >= top + math.log(p.min_p))))
            vals, cand = vals[:keep], cand[:keep]
        cdf = np.cumsum(np.exp((vals - top) / p.temperature))
        idx = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
        return int(cand[min(idx, cand.size - 1)])


def _known_mask(constraint: TokenFilter) -> np.ndarray | None:
    """The constraint's full mask when it is free to get (cached), else None."""
    known = getattr(constraint, "known_mask", None)
    return known() if known is not None else None


def _top_p_cut(weights: list[float], target: float) -> int | None:
    """How many leading candidates top-p keeps: the first prefix whose weight reaches
    `target` (None: the listed ones do not reach it)."""
    acc = 0.0
    for keep, w in enumerate(weights, 1):
        acc += w
        if acc >= target:
            return keep
    return None


class _NoCandidate(Exception):
    """Every token was excluded (e.g. a grammar allows nothing the model can emit)."""


Sampler.NoCandidate = _NoCandidate  # type: ignore[attr-defined]
