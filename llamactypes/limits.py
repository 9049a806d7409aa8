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
    max_json_depth: int = 64  # nesting of arrays/objects in a request body (tool schemas need ~10)
    http_read_timeout: float = 30.0  # seconds one read of a request head/body may wait (slow-loris)
    http_head_timeout: float = 30.0  # seconds the whole request line + headers may take (a trickling client)
    # --- request counts (server/, checked before queueing) ---------------------
    max_stop_strings: int = 64  # `stop` / `stop_sequences` entries
    max_stop_length: int = 1024  # characters of one stop string
    max_tools: int = 512  # tools offered in one request (Claude Code sends 24, MCP setups more)
    max_embedding_inputs: int = 2048  # inputs of one /v1/embeddings request (OpenAI's own bound)
    max_logit_bias: int = 4096  # entries of `logit_bias`
    # --- pre-queue work (server/) ----------------------------------------------
    max_preparing: int = 8  # requests rendered/tokenized/grammar-compiled at once on request threads
    prepare_wait: float = 2.0  # seconds a request waits for a preparing place before 503 + Retry-After


DEFAULT_LIMITS = Limits()


def limit_message(what: str, value: object, limit: object, how: str) -> str:
    """One wording for every limit error: what was too large, the bound, how to raise it."""
    return f"{what} is {value}, over the limit of {limit} ({how})"
