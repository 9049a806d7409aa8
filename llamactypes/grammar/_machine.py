"""The grammar as a lazily built automaton: llama.cpp's set of pushdown stacks, memoized.

llama.cpp keeps a list of stacks (each a list of pointers into the rule elements, the top
always a terminal) and, for every character, pops matching terminals and re-expands
(``llama_grammar_advance_stack``). We do the same, but

* positions are ints into one flat element array, stacks are interned tuples of positions,
  and a *state* is an interned frozenset of stack ids;
* characters are first mapped to *classes*: code points that every character set of the
  grammar treats alike (json.gbnf needs about 20), so a state's transitions fit a small row;
* transitions ``state x class -> state`` are computed on first use and kept, both as Python
  lists (the per-token fast path) and as a numpy table (the whole-vocabulary mask).

States repeat constantly in real output (every string character of JSON at one depth is the
same state), so after warm-up almost every step is a table lookup. The machine knows nothing
about vocabularies; `CompiledGrammar` (matcher.py) adds those.

Bounds (`Limits`): a state holds at most ``grammar_max_stacks`` stacks, a grammar learns at
most ``grammar_max_states`` states, and learning is charged to a `Budget` (per call and per
lifetime), so an ambiguous grammar whose stacks double on every character fails with a
`GrammarError` instead of stalling its thread or exhausting memory. A refused transition is
not memoized: every later request that reaches it fails the same way.
"""

from __future__ import annotations

import threading
from bisect import bisect_right

import numpy as np

from ..limits import DEFAULT_LIMITS, Limits
from ._ir import CHAR, REF, TOKEN, CharSet, GrammarIR, TokenSpec
from ._limits import Budget, limit_error

__all__ = ["Machine", "END", "DEAD"]

END = 3
#: The state with no stacks: nothing can follow.
DEAD = 0


class Machine:
    """Flattened rules, interned stacks and states, and their memoized transitions."""

    def __init__(self, ir: GrammarIR, limits: Limits = DEFAULT_LIMITS) -> None:
        self._lock = threading.RLock()
        self.limits = limits
        self.budget = Budget(limits)
        self.charsets: list[CharSet] = []
        self.token_specs: list[TokenSpec] = []
        self._flatten(ir)
        self._build_classes()
        # stacks
        self._stack_ids: dict[tuple[int, ...], int] = {}
        self.stacks: list[tuple[int, ...]] = []
        self._closure_cache: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._after: list[tuple[int, ...] | None] = []
        # states; 0 is the dead state
        self._state_ids: dict[frozenset[int], int] = {}
        self.state_stacks: list[tuple[int, ...]] = []
        self.char_groups: list[list[tuple[int, tuple[int, ...]]]] = []
        self.token_tops: list[tuple[tuple[int, int], ...]] = []
        self.complete: list[bool] = []
        self.has_chars: list[bool] = []
        self.rows: list[list[int]] = []
        self._table = np.full((64, self.n_classes), -1, dtype=np.int32)
        self._partial_cache: dict[tuple[int, int, int], bool] = {}
        self._cs_partial_cache: dict[tuple[int, int, int], bool] = {}
        self._intern_state(frozenset())
        self.initial = self._initial_state(ir.root)

    # --- construction -----------------------------------------------------------------------
    def _flatten(self, ir: GrammarIR) -> None:
        """One element array for all rules; each alternative ends with an END slot."""
        kinds: list[int] = []
        args: list[int] = []
        cs_index: dict[CharSet, int] = {}
        tok_index: dict[TokenSpec, int] = {}
        self.rule_alts: list[tuple[int, ...]] = []
        for alts in ir.rules:
            starts = []
            for alt in alts:
                starts.append(len(kinds))
                for kind, value in alt:
                    kinds.append(kind)
                    if kind == CHAR:
                        args.append(cs_index.setdefault(value, len(cs_index)))
                    elif kind == TOKEN:
                        args.append(tok_index.setdefault(value, len(tok_index)))
                    else:
                        args.append(value)
                kinds.append(END)
                args.append(0)
            self.rule_alts.append(tuple(starts))
        self.kinds, self.args = kinds, args
        self.charsets = list(cs_index)
        self.token_specs = list(tok_index)

    def _build_classes(self) -> None:
        """Split all code points into intervals, and intervals into equivalence classes."""
        cuts = {0}
        for cs in self.charsets:
            for lo, hi in cs.ranges:
                cuts.add(lo)
                cuts.add(hi + 1)
        self.bounds = sorted(c for c in cuts if c <= 0xFFFFFFFF)
        signatures: dict[tuple[bool, ...], int] = {}
        interval_class = []
        for lo in self.bounds:
            sig = tuple(cs.contains(lo) for cs in self.charsets)
            interval_class.append(signatures.setdefault(sig, len(signatures)))
        self.n_classes = max(1, len(signatures))
        self.interval_class = interval_class
        self._bounds_np = np.asarray(self.bounds, dtype=np.int64)
        self._interval_class_np = np.asarray(interval_class, dtype=np.int32)
        # member[cs][cls]: does character set `cs` contain the characters of class `cls`?
        self.member = [[False] * self.n_classes for _ in self.charsets]
        for sig, cls in signatures.items():
            for cs, inside in enumerate(sig):
                self.member[cs][cls] = inside
        self._class_cache: dict[int, int] = {}

    def _initial_state(self, root: int) -> int:
        """The stacks llama.cpp starts with: each alternative of the root rule, expanded."""
        sids: set[int] = set()
        for start in self.rule_alts[root]:
            sids.update(self._closure((start,) if self.kinds[start] != END else ()))
        return self._intern_state(frozenset(sids))

    # --- stacks -----------------------------------------------------------------------------
    def _intern_stack(self, stack: tuple[int, ...]) -> int:
        sid = self._stack_ids.get(stack)
        if sid is None:
            sid = self._stack_ids[stack] = len(self.stacks)
            self.stacks.append(stack)
            self._after.append(None)
        return sid

    def _closure(self, stack: tuple[int, ...]) -> tuple[int, ...]:
        """``llama_grammar_advance_stack``: expand rule refs until every top is a terminal."""
        cached = self._closure_cache.get(stack)
        if cached is not None:
            return cached
        kinds, args, rule_alts = self.kinds, self.args, self.rule_alts
        todo, seen, out = [stack], set(), []
        most = self.limits.grammar_max_stacks
        while todo:
            cur = todo.pop()
            if cur in seen:
                continue
            seen.add(cur)
            if not cur or kinds[cur[-1]] != REF:
                out.append(self._intern_stack(cur))
                if len(out) > most:
                    raise limit_error("the number of pushdown stacks one position expands to", len(out),
                                      "grammar_max_stacks", self.limits)
                continue
            if len(seen) > 8 * most:
                raise limit_error("the rule references expanded at one position (stacks)", len(seen),
                                  "grammar_max_stacks", self.limits)
            pos = cur[-1]
            base = cur[:-1] + ((pos + 1,) if kinds[pos + 1] != END else ())
            for start in rule_alts[args[pos]]:
                todo.append(base + (start,) if kinds[start] != END else base)
        result = tuple(sorted(set(out)))
        self.budget.charge(len(seen))
        self._closure_cache[stack] = result
        return result

    def after(self, sid: int) -> tuple[int, ...]:
        """The stacks after the terminal on top of stack `sid` has matched."""
        res = self._after[sid]
        if res is None:
            stack = self.stacks[sid]
            pos = stack[-1]
            popped = stack[:-1] + ((pos + 1,) if self.kinds[pos + 1] != END else ())
            res = self._after[sid] = self._closure(popped)
        return res

    # --- states -----------------------------------------------------------------------------
    def _intern_state(self, key: frozenset[int]) -> int:
        state = self._state_ids.get(key)
        if state is not None:
            return state
        if len(key) > self.limits.grammar_max_stacks:
            raise limit_error("the number of pushdown stacks alive at once (an ambiguous grammar?)", len(key),
                              "grammar_max_stacks", self.limits)
        state = len(self.state_stacks)
        if state >= self.limits.grammar_max_states:
            raise limit_error("the number of matcher states this grammar has learned", state + 1,
                              "grammar_max_states", self.limits)
        self.budget.charge(len(key))
        groups: dict[int, list[int]] = {}
        tokens = []
        complete = False
        for sid in sorted(key):
            stack = self.stacks[sid]
            if not stack:
                complete = True
            elif self.kinds[stack[-1]] == CHAR:
                groups.setdefault(self.args[stack[-1]], []).append(sid)
            else:
                tokens.append((self.args[stack[-1]], sid))
        self.state_stacks.append(tuple(sorted(key)))
        self.char_groups.append([(cs, tuple(sids)) for cs, sids in groups.items()])
        self.token_tops.append(tuple(tokens))
        self.complete.append(complete)
        self.has_chars.append(bool(groups))
        self.rows.append([DEAD] * self.n_classes if state == DEAD else [-1] * self.n_classes)
        if state >= self._table.shape[0]:
            grown = np.full((self._table.shape[0] * 2, self.n_classes), -1, dtype=np.int32)
            grown[: self._table.shape[0]] = self._table
            self._table = grown
        if state == DEAD:
            self._table[DEAD] = DEAD
        self._state_ids[key] = state
        return state

    def state_of(self, sids: set[int] | frozenset[int]) -> int:
        """The state for a set of stack ids (interned)."""
        with self._lock:
            return self._intern_state(frozenset(sids))

    def step(self, state: int, cls: int) -> int:
        """The state after one character of class `cls` (computed once, then a lookup)."""
        nxt = self.rows[state][cls]
        if nxt >= 0:
            return nxt
        with self._lock:
            member = self.member
            sids: set[int] = set()
            for cs, group in self.char_groups[state]:
                if member[cs][cls]:
                    self.budget.charge(len(group))
                    for sid in group:
                        sids.update(self.after(sid))
            nxt = self._intern_state(frozenset(sids))
            self.rows[state][cls] = nxt
            self._table[state, cls] = nxt
        return nxt

    def table(self) -> np.ndarray:
        """The transition table ``[state, class] -> state`` (-1: not computed yet)."""
        return self._table

    # --- characters -------------------------------------------------------------------------
    def cp_class(self, cp: int) -> int:
        """The class of code point `cp`."""
        cls = self._class_cache.get(cp)
        if cls is None:
            cls = self._class_cache[cp] = self.interval_class[bisect_right(self.bounds, cp) - 1]
        return cls

    def classes_of(self, cps: np.ndarray) -> np.ndarray:
        """Vectorized `cp_class` for an array of code points."""
        if cps.size == 0:
            return np.zeros(0, dtype=np.int32)
        return self._interval_class_np[np.searchsorted(self._bounds_np, cps, side="right") - 1]

    def walk(self, state: int, classes: tuple[int, ...] | list[int]) -> int:
        """Feed a run of character classes; DEAD as soon as nothing matches."""
        rows = self.rows
        for cls in classes:
            nxt = rows[state][cls]
            if nxt < 0:
                nxt = self.step(state, cls)
            state = nxt
            if state == DEAD:
                return DEAD
        return state

    def walk_text(self, state: int, text: str) -> int:
        """Feed the characters of `text`."""
        return self.walk(state, [self.cp_class(ord(ch)) for ch in text])

    def partial_ok(self, state: int, value: int, n_remain: int) -> bool:
        """May an unfinished UTF-8 sequence still match a terminal on top of some stack?"""
        key = (state, value, n_remain)
        ok = self._partial_cache.get(key)
        if ok is None:
            ok = any(self._cs_partial(cs, value, n_remain) for cs, _ in self.char_groups[state])
            self._partial_cache[key] = ok
        return ok

    def _cs_partial(self, cs: int, value: int, n_remain: int) -> bool:
        """`CharSet.matches_partial` of character set `cs`, memoized."""
        key = (cs, value, n_remain)
        ok = self._cs_partial_cache.get(key)
        if ok is None:
            ok = self._cs_partial_cache[key] = self.charsets[cs].matches_partial(value, n_remain)
        return ok

    def after_tokens(self, state: int, matched: list[int]) -> frozenset[int]:
        """Stacks after token terminals (stack ids in `matched`) of `state` consumed a token."""
        sids: set[int] = set()
        with self._lock:
            self.budget.charge(len(matched))
            for sid in matched:
                sids.update(self.after(sid))
        return frozenset(sids)

    @property
    def n_states(self) -> int:
        """How many states have been built so far."""
        return len(self.state_stacks)
