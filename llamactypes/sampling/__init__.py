"""Token selection: sampling parameters, our numpy sampler chain, grammar constraints, triggers."""

from __future__ import annotations

from .params import SamplingParams
from .samplers import Sampler, TokenFilter

__all__ = ["SamplingParams", "Sampler", "TokenFilter"]
