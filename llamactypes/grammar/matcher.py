"""Token-level matching: `CompiledGrammar` (grammar x vocabulary) and `GrammarMatcher`.

The semantics are llama.cpp's grammar sampler (``llama_grammar_apply_impl`` /
``llama_grammar_accept_impl``): a token may come next if its bytes, decoded together with
any unfinished UTF-8 character left by the previous token, can be consumed by some stack;
a piece may end in the middle of a character if some stack could take that character; an
end-of-generation token is allowed only when the grammar is complete; empty pieces (control
tokens) never are. Token terminals (``<[id]>``, ``!<[id]>``, ``<text>``) match whole tokens.

Where llama.cpp and we differ (all deliberate, all corner cases):
* EOG is refused while a character is unfinished (llama.cpp would end on broken UTF-8);
* a token terminal reached in the *middle* of a token's characters does not match (llama.cpp
  lets the mask pass such a token and then fails when accepting it);
* a piece decoding to code point 0 without a NUL byte (overlong ``C0 80``) is matched as the
  character U+0000 (llama.cpp's mask reads it as the end of the token, then fails to accept).

Speed: `allows` walks the token's character classes through the memoized transition rows
(a few list lookups per character); `mask` walks the whole vocabulary at once with numpy,
column by column (all tokens' k-th character together), and is cached per state.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GrammarError
from ..limits import DEFAULT_LIMITS, Limits
from ._cache import ByteLRU
from ._ir import TokenSpec
from ._machine import DEAD, Machine
from .vocab import Partial, TokenVocab, cut_at_nul, decode_utf8, vocab_index

if TYPE_CHECKING:
    from .parser import Grammar

__all__ = ["CompiledGrammar", "GrammarMatcher", "set_cache_limits", "cache_limits", "mask_cache"]

_cache_limits: list[Limits] = [DEFAULT_LIMITS]
#: Every grammar's masks, packed 8 tokens a byte, in one LRU bounded by
#: ``Limits.grammar_mask_cache_bytes``: the memory is bounded however many grammars there are.
_MASKS: ByteLRU[np.ndarray] = ByteLRU(lambda: _cache_limits[0].grammar_mask_cache_bytes)
_serials = itertools.count()


def set_cache_limits(limits: Limits) -> None:
    """Use `limits` for the process-wide grammar caches (masks, parsed request grammars)."""
    _cache_limits[0] = limits


def cache_limits() -> Limits:
    """The limits the process-wide grammar caches follow (`set_cache_limits` changes them)."""
    return _cache_limits[0]


def mask_cache() -> ByteLRU[np.ndarray]:
    """The process-wide mask cache (its ``nbytes`` is what the masks cost now)."""
    return _MASKS


#: Below this many tokens still alive, `mask` finishes them one by one in Python.
_FEW_TOKENS = 256


class CompiledGrammar:
    """A grammar bound to one vocabulary: immutable to its users, shared by all sequences.

    Holds the vocabulary's characters mapped to the grammar's character classes and the
    token terminals resolved to ids. Internally it memoizes (transitions, masks per state),
    which is safe to share between threads. Make per-sequence state with `matcher`.
    """

    def __init__(self, grammar: Grammar, vocab: TokenVocab) -> None:
        """Prefer ``grammar.compile(vocab)``, which caches one per vocabulary."""
        self.grammar = grammar
        self.vocab = vocab
        self.machine: Machine = grammar.machine
        self.index = vocab_index(vocab)
        self.n_vocab = self.index.n_vocab
        machine, index = self.machine, self.index
        self._level_classes = tuple(machine.classes_of(lv.cps).astype(np.int32) for lv in index.levels)
        self._flat_classes = machine.classes_of(index.flat_cps).astype(np.int32)
        self._token_classes: list[tuple[int, ...] | None] = [None] * self.n_vocab
        self._spec_ids = [self._resolve(spec) for spec in machine.token_specs]
        # per token: 0 = ordinary, 1 = end of generation, 2 = never allowed
        kind = np.where(index.usable, 0, 2).astype(np.int8)
        kind[index.eog_ids] = 1
        self._kind = kind.tolist()
        self._serial = next(_serials)  # names this grammar's masks in the shared cache

    def matcher(self) -> GrammarMatcher:
        """A fresh matcher at the start of the grammar."""
        return GrammarMatcher(self)

    # --- token terminals --------------------------------------------------------------------
    def _resolve(self, spec: TokenSpec) -> int:
        """The id of a token terminal; ``<text>`` must be exactly one piece of the vocabulary."""
        if spec.id is not None:
            return spec.id
        wanted = str(spec.text).encode("utf-8")
        for tok, piece in enumerate(self.vocab.pieces):
            if piece == wanted:
                return tok
        raise GrammarError(
            f"token {spec.text} is not a single token of this vocabulary (use <[id]> or a string literal)"
        )

    def _token_matches(self, spec_index: int, token: int) -> bool:
        spec_id = self._spec_ids[spec_index]
        return (token != spec_id) if self.machine.token_specs[spec_index].negated else (token == spec_id)

    # --- one token --------------------------------------------------------------------------
    def _classes(self, token: int) -> tuple[int, ...]:
        """The character classes of a token's code points (from a clean start), memoized."""
        cls = self._token_classes[token]
        if cls is None:
            offsets = self.index.offsets
            cls = tuple(self._flat_classes[offsets[token]:offsets[token + 1]].tolist())
            self._token_classes[token] = cls
        return cls

    def _char_step(self, state: int, partial: Partial | None, token: int) -> tuple[int, Partial | None] | None:
        """Where the characters of `token` lead from (`state`, `partial`); None if invalid."""
        machine = self.machine
        if partial is None:
            if self.index.cps[token] is None:
                return None
            end = self.index.end_partial[token]
            nxt = machine.walk(state, self._classes(token))
        else:
            decoded = decode_utf8(cut_at_nul(self.vocab.pieces[token]), partial)
            if decoded is None:
                return None
            cps, end = decoded
            nxt = machine.walk(state, [machine.cp_class(cp) for cp in cps])
        if nxt != DEAD and end is not None and not machine.partial_ok(nxt, *end):
            nxt = DEAD
        return nxt, end

    def _has_chars(self, partial: Partial | None, token: int) -> bool:
        """Does `token` decode to at least one whole character (token terminals need that)?"""
        if partial is None:
            return bool(self.index.has_cps[token])
        decoded = decode_utf8(cut_at_nul(self.vocab.pieces[token]), partial)
        return decoded is not None and bool(decoded[0])

    def allows(self, state: int, partial: Partial | None, token: int) -> bool:
        """May `token` come next in (`state`, `partial`)?"""
        self.machine.budget.start_call()
        return self._allows(state, partial, token)

    def _allows(self, state: int, partial: Partial | None, token: int) -> bool:
        kind = self._kind[token] if 0 <= token < self.n_vocab else 2
        if kind:
            return kind == 1 and partial is None and self.machine.complete[state]
        machine = self.machine
        if machine.has_chars[state]:
            step = self._char_step(state, partial, token)
            if step is not None and step[0] != DEAD:
                return True
        tops = machine.token_tops[state]
        if tops and self._has_chars(partial, token):
            return any(self._token_matches(spec, token) for spec, _ in tops)
        return False

    def advance(self, state: int, partial: Partial | None, token: int) -> tuple[int, Partial | None]:
        """The (`state`, `partial`) after `token`; raises `GrammarError` if it is not allowed."""
        kind = self._kind[token] if 0 <= token < self.n_vocab else 2
        machine = self.machine
        machine.budget.start_call()
        if kind == 1 and partial is None and machine.complete[state]:
            return state, partial
        if kind:
            raise GrammarError(f"token {token} is not allowed here ({self._describe(token)})")
        step = self._char_step(state, partial, token) if machine.has_chars[state] else None
        nxt, end = step if step is not None else (DEAD, None)
        tops = machine.token_tops[state]
        if tops and self._has_chars(partial, token):
            matched = [sid for spec, sid in tops if self._token_matches(spec, token)]
            if matched:
                extra = machine.after_tokens(state, matched)
                nxt = machine.state_of(extra | set(machine.state_stacks[nxt]))
                if step is None:
                    decoded = decode_utf8(cut_at_nul(self.vocab.pieces[token]), partial)
                    end = decoded[1] if decoded else None
        if nxt == DEAD:
            raise GrammarError(f"token {token} is not allowed here ({self._describe(token)})")
        return nxt, end

    def _describe(self, token: int) -> str:
        if not 0 <= token < self.n_vocab:
            return f"outside the vocabulary of {self.n_vocab}"
        return f"piece {self.vocab.pieces[token]!r}"

    # --- the whole vocabulary ---------------------------------------------------------------
    def mask(self, state: int, partial: Partial | None) -> np.ndarray:
        """Boolean array over the vocabulary: which tokens may come next (a fresh copy)."""
        key = (self._serial, state) if partial is None else (self._serial, state, partial)
        packed = _MASKS.get(key)
        if packed is None:
            self.machine.budget.start_call()
            fresh = self._fresh_mask(state) if partial is None else self._partial_mask(state, partial)
            packed = np.packbits(fresh)
            _MASKS.put(key, packed, packed.nbytes + 100)
            return fresh
        return np.unpackbits(packed, count=self.n_vocab).view(bool)

    def known_mask(self, state: int, partial: Partial | None) -> np.ndarray | None:
        """`mask` when it is already cached for this position, else None (never computes one:
        samplers use it to skip per-token checks where a lookup is all it costs)."""
        key = (self._serial, state) if partial is None else (self._serial, state, partial)
        packed = _MASKS.get(key)
        return None if packed is None else np.unpackbits(packed, count=self.n_vocab).view(bool)

    def _partial_mask(self, state: int, partial: Partial) -> np.ndarray:
        """While a character is unfinished only tokens starting with continuation bytes fit."""
        out = np.zeros(self.n_vocab, dtype=bool)
        for token in self.index.continuations:
            out[token] = self._allows(state, partial, token)
        return out

    def _fresh_mask(self, state: int) -> np.ndarray:
        machine, index = self.machine, self.index
        out = np.zeros(self.n_vocab, dtype=bool)
        if machine.has_chars[state]:
            self._walk_vocab(state, out)
            for token in index.partial_only:
                end = index.end_partial[token]
                out[token] = machine.partial_ok(state, *end)  # type: ignore[misc]
        for spec, _ in machine.token_tops[state]:
            spec_id = self._spec_ids[spec]
            if machine.token_specs[spec].negated:
                keep = out[spec_id] if 0 <= spec_id < self.n_vocab else None
                out |= index.has_cps
                if keep is not None:
                    out[spec_id] = keep
            elif 0 <= spec_id < self.n_vocab and index.has_cps[spec_id]:
                out[spec_id] = True
        if machine.complete[state]:
            out[index.eog_ids] = True
        return out

    def _walk_vocab(self, state: int, out: np.ndarray) -> None:
        """Run the vocabulary's code point trie through the transition table, a level a step.

        All tokens sharing a prefix share its state, so each trie node is computed once;
        a level is computed whole while most of its parents live (dead parents lead to the
        dead state for free), and only below the live ones otherwise. When few tokens are
        left under the live nodes, they are finished one by one in Python.
        """
        machine, index, classes = self.machine, self.index, self._level_classes
        levels = index.levels
        for cls in range(machine.n_classes):  # level 0 needs the whole row of `state`
            machine.step(state, cls)
        if not levels:
            return
        states = [machine.table()[state][classes[0]]]
        tail: list[tuple[int, int]] = []
        for k in range(1, len(levels)):
            prev, above = states[-1], levels[k - 1]
            n_alive = int(np.count_nonzero(prev))
            if not n_alive:
                break
            if n_alive <= _FEW_TOKENS:
                alive = np.flatnonzero(prev)
                if int((above.hi[alive] - above.lo[alive]).sum()) <= _FEW_TOKENS:
                    self._walk_tail(alive, prev[alive], k, tail)
                    break
            if n_alive * 3 >= prev.size:
                states.append(self._lookup(prev[levels[k].parent], classes[k]))
                continue
            alive = np.flatnonzero(prev)
            starts = above.child_start[alive]
            counts = above.child_start[alive + 1] - starts
            total = int(counts.sum())
            if not total:
                break
            children = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total, dtype=np.int32)
            level = np.zeros(levels[k].parent.size, dtype=np.int32)
            level[children] = self._lookup(np.repeat(prev[alive], counts), classes[k][children])
            states.append(level)
        nodes = np.zeros(int(index.level_offsets[-1]), dtype=np.int32)
        computed = np.concatenate(states)
        nodes[: computed.size] = computed
        final = nodes[index.token_node]
        for position, end_state in tail:
            final[position] = end_state
        self._judge(final, out)

    def _walk_tail(self, alive: np.ndarray, states: np.ndarray, k: int, tail: list[tuple[int, int]]) -> None:
        """Finish, one by one, the tokens longer than `k` under the live nodes of level k-1."""
        machine, index = self.machine, self.index
        above, order, cps = index.levels[k - 1], index.order, index.cps
        for node, state in zip(alive.tolist(), states.tolist()):
            for position in range(int(above.lo[node]), int(above.hi[node])):
                token = int(order[position])
                if len(cps[token]) > k:  # type: ignore[arg-type]
                    tail.append((position, machine.walk(state, self._classes(token)[k:])))

    def _judge(self, final: np.ndarray, out: np.ndarray) -> None:
        """Mark the tokens (in `index.order`) that ended in a live state.

        A token ending in an unfinished character also needs a stack that could take it;
        those are checked once per distinct (state, unfinished character).
        """
        index = self.index
        live = final != DEAD
        tokens = index.order[live]
        pid = index.partial_id[tokens]
        plain = pid == 0
        out[tokens[plain]] = True
        if plain.all():
            return
        n_partials = len(index.partials)
        keys = final[live][~plain].astype(np.int64) * n_partials + pid[~plain]
        unique, inverse = np.unique(keys, return_inverse=True)
        partial_ok, partials = self.machine.partial_ok, index.partials
        ok = np.array([partial_ok(key // n_partials, *partials[key % n_partials]) for key in unique.tolist()])
        out[tokens[~plain]] = ok[inverse]

    def _lookup(self, cur: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """``table[cur, cls]``, computing the transitions not built yet."""
        machine = self.machine
        n_classes = machine.n_classes
        flat = cur * n_classes + cls
        nxt = machine.table().ravel()[flat]
        if nxt.min() < 0:
            unknown = nxt < 0
            for pair in np.unique(flat[unknown]).tolist():
                machine.step(pair // n_classes, pair % n_classes)
            nxt = machine.table().ravel()[flat]
        return nxt


class GrammarMatcher:
    """Per-sequence matching state: where in the grammar, and any unfinished character.

    Cheap to create and to `copy`; all heavy data lives in the shared `CompiledGrammar`.
    """

    __slots__ = ("compiled", "_state", "_partial")

    def __init__(self, compiled: CompiledGrammar) -> None:
        """Start at the beginning of `compiled`'s grammar (prefer ``compiled.matcher()``)."""
        self.compiled = compiled
        self._state = compiled.machine.initial
        self._partial: Partial | None = None

    def allows(self, token: int) -> bool:
        """May `token` come next? EOG ids only when the grammar is complete."""
        return self.compiled.allows(self._state, self._partial, token)

    def mask(self) -> np.ndarray:
        """A fresh boolean array of length n_vocab: every token that may come next."""
        return self.compiled.mask(self._state, self._partial)

    def known_mask(self) -> np.ndarray | None:
        """`mask()` if it is already cached for this position (no work to get it), else None."""
        return self.compiled.known_mask(self._state, self._partial)

    def advance(self, token: int) -> None:
        """Consume `token`; raises `GrammarError` (state unchanged) if it is not allowed."""
        self._state, self._partial = self.compiled.advance(self._state, self._partial, token)

    def advance_bytes(self, data: bytes) -> bool:
        """Consume raw output bytes (e.g. text generated before a lazy grammar triggered).

        Returns False, leaving the state unchanged, if the grammar cannot take them.
        """
        if not data:
            return True
        machine = self.compiled.machine
        machine.budget.start_call()
        decoded = decode_utf8(cut_at_nul(bytes(data)), self._partial)
        if decoded is None:
            return False
        cps, end = decoded
        nxt = machine.walk(self._state, [machine.cp_class(cp) for cp in cps])
        if nxt == DEAD or (end is not None and not machine.partial_ok(nxt, *end)):
            return False
        self._state, self._partial = nxt, end
        return True

    def is_complete(self) -> bool:
        """May the output end here (an EOG token would be allowed)?"""
        return self._partial is None and self.compiled.machine.complete[self._state]

    def is_dead_end(self) -> bool:
        """Is nothing but ending possible (no character and no token can follow)?"""
        machine = self.compiled.machine
        return not machine.has_chars[self._state] and not machine.token_tops[self._state]

    def copy(self) -> GrammarMatcher:
        """An independent matcher at the same position."""
        twin = GrammarMatcher.__new__(GrammarMatcher)
        twin.compiled, twin._state, twin._partial = self.compiled, self._state, self._partial
        return twin

    def reset(self) -> None:
        """Back to the start of the grammar."""
        self._state = self.compiled.machine.initial
        self._partial = None

    def __repr__(self) -> str:
        flags = "complete" if self.is_complete() else "open"
        return f"<GrammarMatcher state={self._state} {flags}>"
