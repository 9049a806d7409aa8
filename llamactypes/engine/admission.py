"""Checks a request must pass before it is queued (run on the request's own thread).

Everything `Model.stream` would refuse when the worker starts a job is checked
here first, so a bad request is an error *before* any response starts: a
streaming client gets a 4xx status, not `200` and then an error event after
waiting its turn. `check_generation` validates the sampler settings, the prompt
token ids and the grammar with its triggers; the grammar is parsed and compiled
for the model's vocabulary now (both are cached, so the worker's own
`build_constraint` finds them ready and the request costs the worker nothing
extra).

The engine calls these from `chat()` / `complete()`; nothing here touches the
queue or the worker.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import GrammarError, InvalidRequestError, SchemaError
from ..sampling.params import SamplingParams

__all__ = ["check_generation", "check_prompt_tokens", "schema_grammar"]

_SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n",
                  "presence_penalty", "frequency_penalty", "seed", "logit_bias")
_TRIGGER_KEYS = ("trigger_patterns", "trigger_words", "trigger_tokens")


def check_prompt_tokens(tokens: Sequence[int], n_vocab: int) -> None:
    """Token ids given by a client must be in the vocabulary (llama.cpp reads out of bounds otherwise)."""
    for i, token in enumerate(tokens):
        if not 0 <= token < n_vocab:
            raise InvalidRequestError(f"token id {token} at position {i} is outside the vocabulary "
                                      f"(0..{n_vocab - 1})", param="prompt")


def check_generation(model: Any, options: Mapping[str, Any]) -> None:
    """Raise what `model.stream(tokens, **options)` would raise for these options, now."""
    sampling = {k: options[k] for k in _SAMPLING_KEYS if options.get(k) is not None}
    SamplingParams(**sampling)  # range checks (e.g. repeat_penalty must be > 0)
    grammar = options.get("grammar")
    if grammar is None:
        if any(options.get(k) for k in _TRIGGER_KEYS):
            raise InvalidRequestError("triggers need a grammar", param="grammar")
        return
    vocab = getattr(model, "vocab", None)
    try:
        if vocab is None:  # a stand-in model without a vocabulary: parse only
            from ..grammar import Grammar

            if isinstance(grammar, str):
                Grammar.from_gbnf(grammar)
            return
        from ..sampling.constrained import build_constraint

        build_constraint(vocab(), **{k: v for k, v in options.items()
                                     if k in ("grammar", "grammar_lazy", "grammar_after", *_TRIGGER_KEYS)
                                     and v is not None})
    except RecursionError:
        raise GrammarError("the grammar is nested too deeply to compile") from None


def schema_grammar(schema: Mapping[str, Any]) -> str:
    """GBNF for a client's JSON schema; a schema too deep to convert is a `SchemaError`."""
    from ..grammar import json_schema_to_gbnf

    if not isinstance(schema, Mapping):
        raise SchemaError("a JSON schema must be an object", "#")
    try:
        return json_schema_to_gbnf(dict(schema))
    except RecursionError:
        raise SchemaError("the schema is nested too deeply to convert", "#") from None
