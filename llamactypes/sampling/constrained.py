"""Grammar constraints for the token loop: eager, lazy (triggered), or armed after a marker.

Lazy semantics are llama.cpp b11434's (`llama_grammar_accept_impl`): until a trigger
fires, every token is free. A trigger token fires on itself; a trigger pattern fires
when it matches the text produced so far (`^…$` patterns must match all of it, others
anywhere); the grammar then applies from the first non-empty capture group (or the
match start), and the tokens already produced from that point on are replayed into
it. Trigger words are literal patterns. A trigger split across tokens still fires.

Unlike llama.cpp, scanning is incremental: a search pattern is re-run only over the
tail that could hold a new match (the pattern's maximum width), and the usual
full-match form `^[\\s\\S]*?(X)[\\s\\S]*$` is reduced to a search for `X`. Only a
full pattern that cannot be reduced is re-matched against the whole text.

`grammar_after` (e.g. "</think>") holds everything back until that marker has been
produced, so a thinking model reasons freely and its answer is constrained.
"""

from __future__ import annotations

import codecs
import logging
import re
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import GrammarError, InvalidRequestError
from ..grammar import Grammar, GrammarMatcher, TokenVocab
from ..grammar._cache import ByteLRU
from ..grammar.matcher import cache_limits

__all__ = ["GrammarConstraint", "TriggerScanner", "build_constraint"]

log = logging.getLogger("llamactypes")

_LAZY_ANY_PREFIXES = (r"[\s\S]*?", r"[\S\s]*?", r".*?", r"(?:.|\n)*?")
_ANY_SUFFIXES = (r"[\s\S]*", r"[\S\s]*", r".*", r"(?:.|\n)*")
_UNBOUNDED = 1 << 30


def _max_width(regex: re.Pattern[str]) -> int:
    """The longest text the pattern can match, or _UNBOUNDED."""
    try:
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # Python < 3.11
        import sre_parse  # type: ignore[no-redef]
    try:
        hi = sre_parse.parse(regex.pattern, regex.flags).getwidth()[1]
    except Exception:
        return _UNBOUNDED
    return _UNBOUNDED if hi >= 65535 else int(hi)


class _Pattern:
    """One trigger pattern, in the cheapest form that keeps llama.cpp's meaning."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.full = False
        body = source
        if len(body) >= 2 and body.startswith("^") and body.endswith("$") and not body.endswith("\\$"):
            inner = body[1:-1]
            prefix = next((p for p in _LAZY_ANY_PREFIXES if inner.startswith(p)), None)
            suffix = next((s for s in _ANY_SUFFIXES if inner.endswith(s) and not inner.endswith("\\" + s)), None)
            if prefix is not None and suffix is not None and len(inner) > len(prefix) + len(suffix):
                body = inner[len(prefix): len(inner) - len(suffix)]  # search semantics, same groups
            else:
                self.full = True
        try:
            self.regex = re.compile(body, re.DOTALL)
        except re.error as exc:
            raise InvalidRequestError(f"invalid trigger pattern {source!r}: {exc}", param="trigger_patterns") from exc
        self.width = _UNBOUNDED if self.full else _max_width(self.regex)

    def find(self, text: str, new_from: int) -> int | None:
        """Character index where the constrained text starts, or None; `new_from` is where
        the text not yet scanned begins."""
        if self.full:
            match = self.regex.fullmatch(text)
        else:
            pos = 0 if self.width >= _UNBOUNDED else max(0, new_from - self.width + 1)
            match = self.regex.search(text, pos)
        if match is None:
            return None
        # the first non-empty capture group (llama.cpp's rule), or an empty one that ends the match:
        # `HEADER()` says "the constrained text starts right after HEADER", before any of it exists
        for i in range(1, (match.re.groups or 0) + 1):
            if match.start(i) >= 0 and (match.end(i) > match.start(i) or match.start(i) == match.end()):
                return match.start(i)
        return match.start()


class TriggerScanner:
    """Watches generated text for triggers; reports where the constrained part begins."""

    def __init__(self, patterns: Iterable[str] = (), words: Iterable[str] = (), tokens: Iterable[int] = ()) -> None:
        self.patterns = [_Pattern(p) for p in patterns] + [_Pattern(re.escape(w)) for w in words if w]
        self.tokens = frozenset(int(t) for t in tokens)
        self.text = ""
        self._scanned = 0

    def feed(self, text: str) -> int | None:
        """Add text; returns the character index in `self.text` where a trigger begins, or None."""
        self.text += text
        new_from, self._scanned = self._scanned, len(self.text)
        best = None
        for pattern in self.patterns:
            start = pattern.find(self.text, new_from)
            if start is not None and (best is None or start < best):
                best = start
        return best


class GrammarConstraint:
    """Per-generation grammar state that the token loop consults (see `generation.Constraint`)."""

    def __init__(self, matcher: GrammarMatcher, pieces: Sequence[bytes], *, lazy: bool = False,
                 scanner: TriggerScanner | None = None, after: str | None = None) -> None:
        self.matcher = matcher
        self.pieces = pieces
        self.n_vocab = len(pieces)
        self.scanner = scanner or TriggerScanner()
        self.lazy = lazy
        self.after = after or None
        self.active = not lazy and self.after is None
        self.failed = False
        # Invalid bytes decode to lone surrogates (one per byte), so a character offset in the
        # scanned text maps back to the exact byte offset in the output.
        self._buf = bytearray()  # every byte produced while not active
        self._spans: list[tuple[int, int, int]] = []  # (token, start, end) in _buf
        self._after_decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._after_text = ""
        self._scan_decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._armed_at: int | None = 0 if self.after is None else None  # where triggers may start

    # ------------------------------------------------------------ what the sampler asks

    def allows(self, token: int) -> bool:
        return self.matcher.allows(token) if self.active else True

    def mask(self) -> np.ndarray:
        return self.matcher.mask() if self.active else np.ones(self.n_vocab, dtype=bool)

    def known_mask(self) -> np.ndarray | None:
        """The full mask if it costs nothing now (cached for this grammar position), else None."""
        return self.matcher.known_mask() if self.active else None

    def is_dead_end(self) -> bool:
        return self.failed or (self.active and self.matcher.is_dead_end())

    # ------------------------------------------------------------ what the loop tells it

    def accept(self, token: int) -> None:
        if self.active:
            self.matcher.advance(token)
            return
        piece = self.pieces[token]
        start = len(self._buf)
        self._buf += piece
        self._spans.append((token, start, len(self._buf)))
        if self._armed_at is None:
            self._wait_for_marker(piece)
        elif token in self.scanner.tokens:
            self._activate_at_token(token)
        else:
            self._scan(piece)

    def _wait_for_marker(self, piece: bytes) -> None:
        assert self.after is not None
        self._after_text += self._after_decoder.decode(piece)
        i = self._after_text.find(self.after)
        if i < 0:
            return
        self._armed_at = len(self._after_text[: i + len(self.after)].encode("utf-8", "surrogateescape"))
        if not self.lazy:
            self._activate_at_byte(self._armed_at)
        else:
            self._scan(bytes(self._buf[self._armed_at:]))

    def _scan(self, data: bytes) -> None:
        found = self.scanner.feed(self._scan_decoder.decode(data))
        if found is not None:
            assert self._armed_at is not None
            self._activate_at_byte(self._armed_at + len(self.scanner.text[:found].encode("utf-8", "surrogateescape")))

    # ------------------------------------------------------------ activation and replay

    def _activate_at_token(self, token: int) -> None:
        self.active = True
        self._spans.clear()
        try:
            self.matcher.advance(token)
        except GrammarError as exc:
            self._fail(f"the trigger token {token} does not start the grammar: {exc}")

    def _activate_at_byte(self, start: int) -> None:
        """The grammar applies from byte `start`: replay the tokens from there on into it."""
        self.active = True
        spans, self._spans = self._spans, []
        for token, lo, hi in spans:
            if hi <= start:
                continue
            if lo >= start:
                ok = self.matcher.allows(token)
                if ok:
                    self.matcher.advance(token)
            else:
                ok = self.matcher.advance_bytes(self.pieces[token][start - lo:])
            if not ok:
                self._fail("the text after the trigger does not match the grammar")
                return

    def _fail(self, reason: str) -> None:
        log.warning("lazy grammar: %s; ending the generation", reason)
        self.failed = True


_PARSED: ByteLRU[Grammar] = ByteLRU(lambda: cache_limits().grammar_cache_bytes)


def _parsed(text: str) -> Grammar:
    """Grammars arrive as text with every request (tool schemas, JSON mode): parse each text
    once, so its compiled form, with the masks it has learned, is shared by later requests.
    The cache is bounded in bytes (``Limits.grammar_cache_bytes``), re-measured on each use
    because a grammar grows as it learns."""
    grammar = _PARSED.get(text)
    if grammar is not None and _worn(grammar):
        grammar = None  # start a fresh machine before the lifetime bounds turn into errors
    if grammar is None:
        grammar = Grammar.from_gbnf(text, limits=cache_limits())
    _PARSED.put(text, grammar, grammar.nbytes())
    return grammar


def _worn(grammar: Grammar) -> bool:
    """Has a cached grammar used half of a lifetime bound (states, work)? Real grammars learn
    a few dozen states; one that learned this much is replaced by a fresh parse rather than
    failing every later request."""
    machine = grammar.machine
    limits = grammar.limits
    return machine.n_states * 2 > limits.grammar_max_states or machine.budget.total * 2 > limits.grammar_max_work


def build_constraint(vocab: TokenVocab, *, grammar: str | Grammar, grammar_lazy: bool = False,
                     trigger_patterns: Sequence[str] = (), trigger_words: Sequence[str] = (),
                     trigger_tokens: Sequence[int] = (), grammar_after: str | None = None,
                     **_unused: Any) -> GrammarConstraint:
    """A fresh constraint for one generation (the compiled grammar is shared and cached)."""
    if isinstance(grammar, str):
        grammar = _parsed(grammar)
    if not isinstance(grammar, Grammar):
        raise InvalidRequestError("grammar must be GBNF text or a Grammar", param="grammar")
    if grammar_lazy and not (trigger_patterns or trigger_words or trigger_tokens):
        raise InvalidRequestError("a lazy grammar needs trigger_patterns, trigger_words or trigger_tokens",
                                  param="grammar_lazy")
    bad = [t for t in trigger_tokens if not 0 <= int(t) < vocab.n_vocab]
    if bad:
        raise InvalidRequestError(f"trigger token {bad[0]} is outside the vocabulary", param="trigger_tokens")
    scanner = TriggerScanner(trigger_patterns, trigger_words, trigger_tokens) if grammar_lazy else None
    return GrammarConstraint(grammar.compile(vocab).matcher(), vocab.pieces, lazy=grammar_lazy, scanner=scanner,
                             after=grammar_after)
