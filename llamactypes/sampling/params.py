"""`SamplingParams`: how the next token is chosen, validated once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from ..errors import InvalidRequestError

__all__ = ["SamplingParams"]


@dataclass(frozen=True)
class SamplingParams:
    """The sampler chain's settings, applied in llama.cpp's default order:
    logit bias → penalties → top-k → top-p → min-p → temperature → draw.

    `temperature <= 0` is greedy (argmax). `seed=None` draws a fresh seed.
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    logit_bias: Mapping[int, float] | None = field(default=None)

    def __post_init__(self) -> None:
        checks = [
            ("temperature", math.isfinite(self.temperature), "a finite number"),
            ("top_p", 0.0 <= self.top_p <= 1.0, "between 0 and 1"),
            ("min_p", 0.0 <= self.min_p <= 1.0, "between 0 and 1"),
            ("repeat_penalty", self.repeat_penalty > 0 and math.isfinite(self.repeat_penalty), "positive"),
            ("repeat_last_n", self.repeat_last_n >= -1, ">= -1 (-1: the whole context)"),
            ("presence_penalty", math.isfinite(self.presence_penalty), "a finite number"),
            ("frequency_penalty", math.isfinite(self.frequency_penalty), "a finite number"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise InvalidRequestError(f"{name} must be {what}, got {getattr(self, name)!r}", param=name)
        if self.seed is not None and not (isinstance(self.seed, int) and self.seed >= 0):
            raise InvalidRequestError(f"seed must be a non-negative integer, got {self.seed!r}", param="seed")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @property
    def uses_penalties(self) -> bool:
        return self.repeat_last_n != 0 and (self.repeat_penalty != 1.0 or self.presence_penalty != 0.0
                                            or self.frequency_penalty != 0.0)
