"""`GET /metrics` in the Prometheus text format (version 0.0.4), from `Engine.metrics()`.

Pure translation, like the rest of server/: the engine counts, this module writes.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["prometheus_text", "METRICS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: engine key -> (type, help); written as `llamactypes_<key>`
METRICS: dict[str, tuple[str, str]] = {
    "requests_total": ("counter", "Generation requests finished (including cancelled ones)."),
    "prompt_tokens_total": ("counter", "Prompt tokens of finished requests."),
    "prompt_tokens_cached_total": ("counter", "Prompt tokens reused from a slot's cache or the prompt cache."),
    "generated_tokens_total": ("counter", "Tokens generated."),
    "slots_busy": ("gauge", "Slots reading a prompt or generating."),
    "slots_total": ("gauge", "Slots (parallel sequences of the context)."),
    "queue_length": ("gauge", "Requests waiting for a slot."),
    "cache_bytes": ("gauge", "Bytes of slot states held by the prompt cache."),
    "cache_evictions_total": ("counter", "Prompt-cache entries evicted to stay within --cache-ram."),
}


def prometheus_text(values: Mapping[str, int | float]) -> str:
    """The exposition text: HELP and TYPE lines, then the value, for each known metric present."""
    lines = []
    for key, (kind, text) in METRICS.items():
        if key not in values:
            continue
        name = f"llamactypes_{key}"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {values[key]}"]
    return "\n".join(lines) + "\n"
