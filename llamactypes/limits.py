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
    # open connections, each holding a thread (idle keep-alives and slow clients included); past it a new
    # connection gets 503 at once and is closed; `serve --max-connections`
    http_max_connections: int = 512
    # --- request counts (server/, checked before queueing) ---------------------
    max_stop_strings: int = 64  # `stop` / `stop_sequences` entries
    max_stop_length: int = 1024  # characters of one stop string
    max_tools: int = 512  # tools offered in one request (Claude Code sends 24, MCP setups more)
    max_embedding_inputs: int = 2048  # inputs of one /v1/embeddings request (OpenAI's own bound)
    max_logit_bias: int = 4096  # entries of `logit_bias`
    # --- pre-queue work (server/) ----------------------------------------------
    max_preparing: int = 8  # requests rendered/tokenized/grammar-compiled at once on request threads
    prepare_wait: float = 2.0  # seconds a request waits for a preparing place before 503 + Retry-After

    # --- grammars (grammar/) ---------------------------------------------------
    # GBNF text size (bytes, UTF-8): bounds the parser's time and memory.
    grammar_max_bytes: int = 1024 * 1024  # the parser reads ~200 KB/s: 1 MiB is ~5 s of a request thread
    # Parentheses nested inside each other: the parser and its tree walk recurse.
    grammar_max_nesting: int = 100
    # Elements after expanding every repetition (llama.cpp's rule list, END slots included):
    # `root ::= "<4,000 chars>"{2000}` would be 8 million.
    grammar_max_elements: int = 250_000
    # Pushdown stacks alive at once (one state): an ambiguous grammar doubles them per character.
    grammar_max_stacks: int = 8_192
    # Distinct matcher states one grammar may learn over its lifetime (each costs a table row).
    grammar_max_states: int = 50_000
    # Pushdown work (stacks expanded, ~3 us each) one grammar may do over its lifetime: bounds
    # the memory a shared grammar accumulates. Transitions are memoized, so real grammars
    # stop learning early; the ambiguous `root ::= "a" root "b" | "a" root "c" | "d"` never does.
    grammar_max_work: int = 5_000_000
    # Pushdown work of one matcher call (a token's mask, advance, ...): keeps one step of one
    # request from stalling the worker (~0.6 s at most); past it the request fails.
    grammar_max_step_work: int = 200_000
    # Memory of the cache of parsed request grammars (estimated bytes, LRU).
    grammar_cache_bytes: int = 256 * 1024 * 1024
    # Memory of the allowed-token masks kept for all grammars together (bytes, LRU; one mask
    # costs n_vocab / 8 bytes, ~19 KiB at a 150k vocabulary).
    grammar_mask_cache_bytes: int = 128 * 1024 * 1024

    # --- chat templates (chat/template) -----------------------------------------
    # Wall-clock time one rendering may take (seconds): a template from a model file can loop
    # 10^10 times; a watchdog interrupts it within a few ms of the budget.
    template_max_seconds: float = 5.0
    # Characters one rendering may output, and the size of any one string or list it builds
    # (`*`, `+`, `~`, `%`, format, center, indent, join, replace, ...): doubling a string is refused
    # before it reaches this size, not after.
    template_max_output_chars: int = 16 * 1024 * 1024

    # --- tokenization (native/vocab) ---------------------------------------------
    # Bytes of text one llama_tokenize call may take: ~1 us a byte and ~60 bytes of memory a
    # byte in llama.cpp (20 MB took 17 s and 1.2 GB). 4 MiB is ~8 times a 128k-token prompt.
    tokenize_max_bytes: int = 4 * 1024 * 1024
    # Special-token texts (<|im_start|>, ...) in one text: llama.cpp splits the text at each in
    # time quadratic in their number (20,000 chat messages: 40,000 of them, 3.6 s).
    tokenize_max_special: int = 16_384

    # --- JSON schemas (grammar/json_schema) -------------------------------------
    # Nesting of schemas inside schemas (properties, items, anyOf, ...).
    schema_max_depth: int = 64
    # Properties of one object schema (optional ones make llama.cpp's rules grow quadratically).
    schema_max_properties: int = 500
    # Decimal digits of a numeric bound (minimum, maximum, ...).
    schema_max_number_digits: int = 100

    # --- chat dialects (chat/derive/) -------------------------------------------
    # Not errors: past these, model output is not read as a call and stays content.
    tool_call_name_chars: int = 128  # a function name or call id in a derived dialect's call
    tool_call_key_chars: int = 256  # an argument key in a derived dialect's key/value arguments
    derived_formats: int = 256  # derived dialects kept by id for `get_format` (one per distinct template)

    # --- RPC (native/rpc.py) -----------------------------------------------------
    # seconds to connect to an RPC worker and get its handshake answer before giving up on it
    # (llama.cpp itself would wait forever on a port that accepts but never answers)
    rpc_probe_timeout_s: float = 10.0
    # RPC endpoints one model may use (llama.cpp's GGML_RPC_MAX_SERVERS)
    rpc_max_servers: int = 16

    # --- Responses API (server/response_store.py) ---------------------------------
    max_stored_responses: int = 256  # responses kept for previous_response_id / GET (oldest dropped first)

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
