"""Our numpy sampler chain: exact semantics, constraint equivalence, determinism (no native library)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llamactypes import InvalidRequestError
from llamactypes.sampling import Sampler, SamplingParams


class SetFilter:
    """A constraint that allows a fixed set of token ids (counts how often it is asked)."""

    def __init__(self, allowed: set[int], n_vocab: int) -> None:
        self.allowed = allowed
        self.n = n_vocab
        self.mask_calls = 0

    def allows(self, token: int) -> bool:
        return token in self.allowed

    def mask(self) -> np.ndarray:
        self.mask_calls += 1
        m = np.zeros(self.n, dtype=bool)
        m[list(self.allowed)] = True
        return m


class CachedFilter(SetFilter):
    """A constraint whose mask is already cached (a grammar position seen before)."""

    def __init__(self, allowed: set[int], n_vocab: int) -> None:
        super().__init__(allowed, n_vocab)
        self.allows_calls = 0
        self._mask = super().mask()
        self.mask_calls = 0

    def allows(self, token: int) -> bool:
        self.allows_calls += 1
        return super().allows(token)

    def known_mask(self) -> np.ndarray:
        return self._mask


def _logits(seed: int, n: int = 5000, scale: float = 3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def _masked(logits: np.ndarray, allowed: set[int]) -> np.ndarray:
    out = np.full_like(logits, -np.inf)
    idx = list(allowed)
    out[idx] = logits[idx]
    return out


def test_greedy_is_argmax() -> None:
    x = _logits(0)
    assert Sampler(SamplingParams(temperature=0), x.size).sample(x) == int(np.argmax(x))


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0),
    SamplingParams(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05),
    SamplingParams(temperature=1.3, top_k=5, top_p=1.0, min_p=0.0),
    SamplingParams(temperature=0.7, top_k=0, top_p=0.9, min_p=0.0),
    SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.1),
])
@pytest.mark.parametrize("density", [0.9, 0.3, 0.01, 0.001])
@pytest.mark.parametrize("scale", [3.0, 8.0, 0.5])
@pytest.mark.parametrize("filter_cls", [SetFilter, CachedFilter])
def test_constrained_equals_masking_first(params: SamplingParams, density: float, scale: float,
                                          filter_cls: type) -> None:
    """The fast paths (check the chosen token, walk in logit order, stop early when the rest
    cannot change the draw, use a cached mask) give exactly what a full mask gives."""
    for trial in range(15):
        x = _logits(100 + trial, scale=scale)
        rng = np.random.default_rng(trial)
        allowed = set(np.flatnonzero(rng.random(x.size) < density).tolist()) or {7}
        if trial % 5 == 0:
            x[rng.choice(x.size, x.size // 2, replace=False)] = -np.inf  # e.g. ignore_eos, logit bias
            x[min(allowed)] = 1.0  # at least one allowed token stays possible
        seed = 1000 + trial
        p = SamplingParams(**{**params.__dict__, "seed": seed})
        fast = Sampler(p, x.size).sample(x.copy(), filter_cls(allowed, x.size))
        reference = Sampler(p, x.size).sample(_masked(x, allowed))
        assert fast == reference
        assert fast in allowed


@pytest.mark.parametrize("top_p, min_p", [(0.95, 0.05), (0.9, 0.0), (1.0, 0.05), (0.5, 0.2)])
def test_sequences_equal_masking_first(top_p: float, min_p: float) -> None:
    """Whole draw sequences (one RNG draw per step on every path) stay identical to masking first."""
    p = SamplingParams(temperature=1.0, top_k=40, top_p=top_p, min_p=min_p, seed=3)
    fast, ref = Sampler(p, 3000), Sampler(p, 3000)
    rng = np.random.default_rng(9)
    for step in range(300):
        x = _logits(step, n=3000, scale=float(rng.choice([0.5, 2.0, 6.0])))
        allowed = set(np.flatnonzero(rng.random(x.size) < rng.choice([0.002, 0.02, 0.5])).tolist()) or {1}
        assert fast.sample(x.copy(), SetFilter(allowed, x.size)) == ref.sample(_masked(x, allowed))


def test_walk_stops_early_without_the_mask() -> None:
    """Few allowed tokens near the top and a peaked distribution: the unlisted rest cannot
    reach min-p's floor nor move top-p's cut, so no mask is built."""
    x = _logits(11, scale=1.0)
    order = np.argsort(-x)
    x[order[:3]] += 20.0  # three clear favourites, all far above the rest
    allowed = {int(order[0]), int(order[2])} | set(order[3000:].tolist())
    filt = SetFilter(allowed, x.size)
    p = SamplingParams(temperature=1.0, top_k=40, top_p=0.95, min_p=0.05, seed=2)
    token = Sampler(p, x.size).sample(x.copy(), filt)
    assert token in (int(order[0]), int(order[2]))
    assert filt.mask_calls == 0


def test_cached_mask_replaces_per_token_checks() -> None:
    x = _logits(12)
    allowed = set(np.flatnonzero(np.random.default_rng(3).random(x.size) < 0.2).tolist())
    filt = CachedFilter(allowed, x.size)
    Sampler(SamplingParams(temperature=0.8, seed=1), x.size).sample(x.copy(), filt)
    assert filt.allows_calls == 0 and filt.mask_calls == 0


def test_fast_path_rarely_builds_the_mask() -> None:
    x = _logits(5)
    allowed = set(range(x.size)) - {int(np.argmax(x))}
    filt = SetFilter(allowed, x.size)
    Sampler(SamplingParams(temperature=0), x.size).sample(x, filt)
    Sampler(SamplingParams(top_k=40, seed=1), x.size).sample(x, filt)
    assert filt.mask_calls == 0


def test_top_k_only_draws_from_the_k_best() -> None:
    x = _logits(1)
    best = set(np.argsort(-x)[:3].tolist())
    s = Sampler(SamplingParams(temperature=5.0, top_k=3, top_p=1.0, min_p=0.0, seed=0), x.size)
    seen = {s.sample(x) for _ in range(300)}
    assert seen == best


def test_distribution_matches_softmax_with_temperature() -> None:
    x = np.array([2.0, 1.0, 0.0, -1.0] + [-50.0] * 10, dtype=np.float32)
    t = 0.7
    s = Sampler(SamplingParams(temperature=t, top_k=0, top_p=1.0, min_p=0.0, seed=3), x.size)
    n = 20000
    counts = np.bincount([s.sample(x) for _ in range(n)], minlength=x.size)
    expected = np.exp(x / t) / np.exp(x / t).sum()
    assert np.allclose(counts / n, expected, atol=0.015)


def test_top_p_and_min_p_truncate() -> None:
    x = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    top_p = Sampler(SamplingParams(temperature=1.0, top_k=0, top_p=0.8, min_p=0.0, seed=1), 4)
    assert {top_p.sample(x) for _ in range(500)} == {0, 1}
    min_p = Sampler(SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.25, seed=1), 4)
    assert {min_p.sample(x) for _ in range(500)} == {0, 1, 2}


def test_same_seed_same_choices() -> None:
    x = _logits(2)
    a = Sampler(SamplingParams(seed=9), x.size)
    b = Sampler(SamplingParams(seed=9), x.size)
    assert [a.sample(x) for _ in range(50)] == [b.sample(x) for _ in range(50)]


def test_penalties_follow_llama_cpp_formula() -> None:
    x = np.array([2.0, -2.0, 1.0, 0.5], dtype=np.float32)
    p = SamplingParams(repeat_penalty=2.0, presence_penalty=0.5, frequency_penalty=0.25, repeat_last_n=3, seed=0)
    s = Sampler(p, 4, history=[0, 1, 1, 0])  # last 3: 1, 1, 0
    y = x.copy()
    s.prepare(y)
    assert y[0] == pytest.approx(2.0 / 2.0 - 0.25 * 1 - 0.5)
    assert y[1] == pytest.approx(-2.0 * 2.0 - 0.25 * 2 - 0.5)
    assert y[2] == 1.0 and y[3] == 0.5


def test_logit_bias_applied_in_place() -> None:
    x = np.zeros(10, dtype=np.float32)
    s = Sampler(SamplingParams(logit_bias={3: 5.0, 4: -math.inf}, temperature=0), 10)
    s.prepare(x)
    assert x[3] == 5.0 and x[4] == -np.inf and s.sample(x) == 3


def test_nothing_allowed_is_reported() -> None:
    x = _logits(3, n=50)
    with pytest.raises(Sampler.NoCandidate):  # type: ignore[attr-defined]
        Sampler(SamplingParams(temperature=0), 50).sample(x, SetFilter(set(), 50))


@pytest.mark.parametrize("bad", [dict(top_p=1.5), dict(min_p=-0.1), dict(repeat_penalty=0.0),
                                 dict(temperature=float("nan")), dict(seed=-1)])
def test_invalid_params(bad: dict) -> None:
    with pytest.raises(InvalidRequestError):
        SamplingParams(**bad)


def test_long_history_counts_only_the_penalty_window() -> None:
    history = list(np.random.default_rng(4).integers(0, 500, 5000))
    p = SamplingParams(repeat_penalty=1.3, frequency_penalty=0.4, repeat_last_n=64, seed=1)
    x = _logits(13, n=500)
    a, b = x.copy(), x.copy()
    Sampler(p, x.size, history=history).prepare(a)
    Sampler(p, x.size, history=history[-64:]).prepare(b)
    assert np.array_equal(a, b) and not np.array_equal(a, x)


@pytest.mark.parametrize(("pattern", "text", "start"), [
    (r"<tool_call>", "Hi <tool_call>", 3),  # no group: the match
    (r"x(<a>)", "..x<a>", 3),  # the first non-empty group (llama.cpp's rule)
    (r"(\s*)(<a>)", "hi <a>", 2),  # the whitespace group is not empty here
    (r"(q*)b(c)", "bc", 1),  # an empty group inside the match is skipped (llama.cpp's rule)
    (r"<\|message\|>()", "<|channel|>final<|message|>", 27),  # an empty group ending the match: right after it
])
def test_trigger_pattern_start(pattern: str, text: str, start: int) -> None:
    from llamactypes.sampling.constrained import TriggerScanner

    scanner = TriggerScanner([pattern])
    found = None
    for char in text:  # as a stream feeds it
        found = scanner.feed(char) if found is None else found
    assert found == start
