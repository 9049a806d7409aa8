"""A hostile grammar fails its request cleanly and quickly; the engine goes on serving (tiny model).

`logit_bias` forces the character "a" into the ambiguous grammar
``root ::= "a" root "b" | "a" root "c" | "d"``, whose stacks double on every "a": the request
ends with a `GrammarError` naming ``grammar_max_stacks`` within 2 s (before the limits it
stalled the worker for seconds per token and grew without bound), and the next request on
the same engine is served. ~1 s.
"""

from __future__ import annotations

import time

import pytest

from llamactypes import GrammarError, Model
from llamactypes.engine import CompletionRequest, Engine, Sampling

AMBIGUOUS = 'root ::= "a" root "b" | "a" root "c" | "d"\n'


def test_ambiguous_grammar_ends_the_request_not_the_worker(tiny_model_path: str) -> None:
    with Model(tiny_model_path, n_ctx=256, n_threads=1) as model, Engine(model) as engine:
        a_token = model.tokenize("a", add_special=False)[0]
        request = CompletionRequest("x", max_tokens=64, grammar=AMBIGUOUS,
                                    sampling=Sampling(temperature=0.0, logit_bias={a_token: 50.0}))
        start = time.perf_counter()
        with pytest.raises(GrammarError, match="grammar_max_stacks"):
            for _ in engine.complete(request).events(heartbeat=None):
                pass
        assert time.perf_counter() - start < 2.0
        ok = CompletionRequest("x", max_tokens=4, grammar='root ::= "yes" | "no"\n',
                               sampling=Sampling(temperature=0.0))
        text = "".join(getattr(e, "text", "") or "" for e in engine.complete(ok).events(heartbeat=None))
        assert text in ("yes", "no")
