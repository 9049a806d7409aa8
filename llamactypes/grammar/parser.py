"""`Grammar`: a parsed, checked GBNF grammar, ready to match text or compile for a vocabulary.

``Grammar.from_gbnf(text)`` reads GBNF exactly as llama.cpp b11434 does (``gbnf.lark``),
builds llama.cpp's rule list (`GrammarIR`), and checks what it means: undefined rules, a
missing root, character ranges and repetitions that can never match, left recursion.
Every problem is a `GrammarError` with a 1-based ``line``/``column`` and a caret snippet.

Deliberate differences from llama.cpp (each one turns a silent failure into an error):
``[]`` / ``[^]`` (llama.cpp: matches the empty string), ``[z-a]`` (llama.cpp: a class that
never matches), ``x{3,1}`` (llama.cpp: crashes), and left recursion that llama.cpp's own
check misses but that would make it loop forever.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..limits import DEFAULT_LIMITS, Limits
from ._build import build_ir
from ._ir import GrammarIR
from ._limits import check_text
from ._machine import DEAD, Machine
from ._syntax import parse_tree
from ._validate import check_left_recursion

if TYPE_CHECKING:
    from .matcher import CompiledGrammar
    from .vocab import TokenVocab

__all__ = ["Grammar"]


class Grammar:
    """A GBNF grammar: immutable, shareable between threads and requests.

    Build one with `from_gbnf` (or `from_json_schema`); use `accepts` to test a whole text,
    and `compile` to get the per-vocabulary form that constrains token sampling.
    """

    __slots__ = ("text", "root", "ir", "limits", "_machine", "_compiled", "_lock")

    def __init__(self, text: str, root: str, ir: GrammarIR, limits: Limits = DEFAULT_LIMITS) -> None:
        """Use `from_gbnf`; this only stores an already checked rule list."""
        self.text = text
        self.root = root
        self.ir = ir
        self.limits = limits
        self._machine: Machine | None = None
        self._compiled: weakref.WeakKeyDictionary[TokenVocab, CompiledGrammar] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @classmethod
    def from_gbnf(cls, text: str, root: str = "root", *, limits: Limits | None = None) -> Grammar:
        """Parse and check GBNF `text`; `root` names the start rule.

        Raises `GrammarError` (with ``line``, ``column`` and ``context``) for any mistake, and
        for a grammar past one of `limits` (size, nesting, expanded elements); the matching
        limits (stacks, states, work per step) apply later, while it runs.
        """
        limits = limits or DEFAULT_LIMITS
        check_text(text, limits)
        tree = parse_tree(text)
        ir = build_ir(tree, text, root, limits)
        check_left_recursion(ir, text)
        return cls(text, root, ir, limits)

    @classmethod
    def from_json_schema(cls, schema: dict[str, Any], *, limits: Limits | None = None) -> Grammar:
        """The grammar of JSON documents valid under `schema` (see `json_schema_to_gbnf`)."""
        from .json_schema import json_schema_to_gbnf

        return cls.from_gbnf(json_schema_to_gbnf(schema, limits=limits), limits=limits)

    @property
    def machine(self) -> Machine:
        """The lazily built automaton shared by `accepts` and every compiled vocabulary."""
        machine = self._machine
        if machine is None:
            with self._lock:
                if self._machine is None:
                    self._machine = Machine(self.ir, self.limits)
                machine = self._machine
        return machine

    def accepts(self, text: str) -> bool:
        """True if the whole of `text` matches the grammar (token terminals never match text)."""
        machine = self.machine
        machine.budget.start_call()
        return machine.complete[machine.walk_text(machine.initial, text)]

    def accepts_prefix(self, text: str) -> bool:
        """True if `text` can be continued (possibly with nothing) into a match."""
        machine = self.machine
        machine.budget.start_call()
        return machine.walk_text(machine.initial, text) != DEAD

    def compile(self, vocab: TokenVocab) -> CompiledGrammar:
        """The grammar bound to `vocab`: built once per vocabulary object, then shared.

        Raises `GrammarError` if a ``<text>`` token terminal is not exactly one token of `vocab`.
        """
        compiled = self._compiled.get(vocab)
        if compiled is None:
            from .matcher import CompiledGrammar

            with self._lock:
                compiled = self._compiled.get(vocab)
            if compiled is None:
                compiled = CompiledGrammar(self, vocab)
                with self._lock:
                    compiled = self._compiled.setdefault(vocab, compiled)
        return compiled

    def nbytes(self) -> int:
        """A rough estimate of the memory this grammar holds now (text, rules, learned states).

        Used to bound the cache of request grammars in bytes; it grows as the machine learns.
        """
        n_elements = sum(len(alt) + 1 for alts in self.ir.rules for alt in alts)
        size = 2 * len(self.text) + 64 * n_elements + 1024
        machine = self._machine
        if machine is not None:
            n_states = machine.n_states
            size += n_states * (machine.n_classes * 12 + 300) + machine.budget.total * 40
        return size

    @property
    def rule_names(self) -> list[str]:
        """The user-written rule names, in order of first appearance."""
        return list(self.ir.symbols)

    def __repr__(self) -> str:
        return f"<Grammar root={self.root!r} rules={len(self.ir.symbols)}>"
