"""The grammar engine's bounds (from `llamactypes.limits`): checks and the errors they raise.

A grammar comes from a client (GBNF, a JSON schema, a tool list), so everything it can make
the engine do is bounded: the text's size and nesting before parsing, the elements its
repetitions expand to while building, and, while matching, the stacks of one state, the
states a grammar may learn and the work one call may do (`Budget`). Each bound is a field
of `Limits`; the `GrammarError` names it and says how to raise it.
"""

from __future__ import annotations

import re
import threading

from ..errors import GrammarError
from ..limits import DEFAULT_LIMITS, Limits, limit_message

__all__ = ["limit_error", "check_text", "Budget"]

# what can hold a parenthesis that does not nest: strings, classes, comments
_PAREN_SCAN = re.compile(r'"(?:\\.|[^"\\\n])*"?|\[(?:\\.|[^\]\\\n])*\]?|#[^\n]*|[()]')


def limit_error(what: str, value: object, field: str, limits: Limits) -> GrammarError:
    """A `GrammarError` saying `what` reached `value`, over ``limits.<field>``."""
    bound = getattr(limits, field)
    return GrammarError(limit_message(what, value, bound, f"raise Limits.{field}, see docs/limits.md"))


def check_text(text: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse GBNF text too large or nested too deep before any parser sees it."""
    if not isinstance(text, str):
        raise GrammarError(f"a grammar must be text, not {type(text).__name__}")
    if len(text) > limits.grammar_max_bytes or len(text.encode("utf-8", "surrogatepass")) > limits.grammar_max_bytes:
        raise limit_error("the grammar's size (bytes)", len(text.encode("utf-8", "surrogatepass")),
                          "grammar_max_bytes", limits)
    if "(" not in text:
        return
    depth = 0
    for match in _PAREN_SCAN.finditer(text):
        token = match.group()
        if token == "(":
            depth += 1
            if depth > limits.grammar_max_nesting:
                raise limit_error(f"the nesting of parentheses (at offset {match.start()})", depth,
                                  "grammar_max_nesting", limits)
        elif token == ")":
            depth = max(0, depth - 1)


class Budget:
    """How much pushdown work a grammar may still do: per call, and over its lifetime.

    `Machine` charges every stack it expands while learning a transition. The lifetime
    counts bound the memory a shared grammar accumulates; the per-call count (set by
    `start_call` in the thread that matches) bounds the time one matcher call can take,
    so a hostile grammar fails its request instead of stalling the worker.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self._local = threading.local()

    def start_call(self) -> None:
        """A matcher call begins in this thread: it gets a fresh per-call allowance."""
        self._local.left = self.limits.grammar_max_step_work

    def charge(self, n_stacks: int) -> None:
        """Spend `n_stacks` expansions; raise a `GrammarError` past either allowance."""
        self.total += n_stacks
        if self.total > self.limits.grammar_max_work:
            raise limit_error("the pushdown work this grammar has done (stacks expanded)", self.total,
                              "grammar_max_work", self.limits)
        left = getattr(self._local, "left", None)
        if left is not None:
            left -= n_stacks
            self._local.left = left
            if left < 0:
                raise limit_error("the pushdown work of one matching step (stacks expanded)",
                                  self.limits.grammar_max_step_work - left, "grammar_max_step_work", self.limits)
