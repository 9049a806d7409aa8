"""Every bound llamactypes enforces, in one place.

Limits are data, not literals scattered through the code: each layer reads the
bound it needs from here, and an error that hits one names it (`limit_message`)
and says how to raise it. Pure module (layer 0): imports nothing of ours.

Add a field per bound, with a comment that says what it protects and the unit.
A server option that raises a bound (`--max-body`, ...) builds a `Limits` with
`dataclasses.replace(DEFAULT_LIMITS, ...)`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_LIMITS", "limit_message"]


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request, grammar, template or model file may cost."""

    # --- HTTP (server/) --------------------------------------------------------
    max_body_bytes: int = 32 * 1024 * 1024  # request body; `serve --max-body`

    # --- sequence memory (native/memory.py, engine/prompt_cache.py) ------------
    # checkpoints kept per sequence of a memory that cannot be cut (recurrent, hybrid, small SWA cache):
    # each is one partial state (bytes); the oldest goes first. Fewer means more re-reading.
    seq_checkpoints: int = 8
    seq_checkpoint_bytes: int = 256 * 1024 * 1024  # all checkpoints of one sequence together, bytes
    # one state file of the prompt cache's --cache-dir (a bigger one is refused, not read into memory)
    cache_file_bytes: int = 4 * 1024 * 1024 * 1024
    # all of one model's state files in --cache-dir together; the least recently used go first
    cache_dir_bytes: int = 32 * 1024 * 1024 * 1024


DEFAULT_LIMITS = Limits()


def limit_message(what: str, value: object, limit: object, how: str) -> str:
    """One wording for every limit error: what was too large, the bound, how to raise it."""
    return f"{what} is {value}, over the limit of {limit} ({how})"
