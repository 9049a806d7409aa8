"""`TokenVocab`, the grammar engine's view of a model vocabulary, and its decoded index.

A vocabulary is just the bytes each token emits (`pieces`) and the end-of-generation ids.
The grammar works on code points, so every piece is decoded once, the way llama.cpp's
``decode_utf8`` does it (a piece may end in, or start with, part of a multi-byte character;
decoding stops at a NUL byte; malformed bytes make the token unusable). The result
(`VocabIndex`) is cached per vocabulary object and shared by every grammar compiled for it.
"""

from __future__ import annotations

import threading
import weakref
from itertools import chain
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TokenVocab", "VocabIndex", "decode_utf8", "vocab_index"]

# llama.cpp's table: bytes 0x80-0xBF cannot start a character (0 = invalid)
_LOOKUP = (1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4)

Partial = tuple[int, int]  # (value so far, bytes still missing), n_remain > 0


class TokenVocab:
    """The vocabulary contract between a model and the grammar engine.

    `pieces[i]` is the exact byte string token ``i`` emits (special tokens rendered, empty
    for control tokens that emit nothing); `eog` holds the end-of-generation token ids.
    Compare and cache by identity: a model builds its `TokenVocab` once.
    """

    __slots__ = ("pieces", "eog", "__weakref__")

    def __init__(self, pieces: Sequence[bytes], eog: frozenset[int] | set[int] = frozenset()) -> None:
        """Copy `pieces` (bytes-like) and `eog` (ids outside the vocabulary are an error)."""
        self.pieces: tuple[bytes, ...] = tuple(bytes(p) for p in pieces)
        self.eog: frozenset[int] = frozenset(int(t) for t in eog)
        bad = [t for t in self.eog if not 0 <= t < len(self.pieces)]
        if bad:
            raise ValueError(f"end-of-generation ids outside the vocabulary: {sorted(bad)}")

    @property
    def n_vocab(self) -> int:
        """Number of tokens."""
        return len(self.pieces)

    def __len__(self) -> int:
        return len(self.pieces)

    def __repr__(self) -> str:
        return f"<TokenVocab n_vocab={len(self.pieces)} eog={sorted(self.eog)}>"


def decode_utf8(data: bytes, partial: Partial | None = None) -> tuple[list[int], Partial | None] | None:
    """Decode `data` like llama.cpp's ``decode_utf8(src, partial_start)``.

    Returns the complete code points and the unfinished sequence at the end (or None), or
    None for the whole result when the bytes are invalid (a continuation byte where a
    character should start, or a non-continuation byte where one should continue). Like
    llama.cpp it trusts lead bytes: the bytes after a lead are taken as its continuation.
    `data` must already be cut at its first NUL byte.
    """
    pos, n = 0, len(data)
    cps: list[int] = []
    value, n_remain = partial if partial else (0, 0)
    while pos < n and n_remain > 0:
        byte = data[pos]
        if byte >> 6 != 2:
            return None
        value = (value << 6) + (byte & 0x3F)
        pos += 1
        n_remain -= 1
    if partial and n_remain == 0:
        cps.append(value)
    while pos < n:
        byte = data[pos]
        n_remain = _LOOKUP[byte >> 4] - 1
        if n_remain < 0:
            return None
        value = byte & ((1 << (7 - n_remain)) - 1)
        pos += 1
        while pos < n and n_remain > 0:
            value = (value << 6) + (data[pos] & 0x3F)
            pos += 1
            n_remain -= 1
        if n_remain == 0:
            cps.append(value)
    return cps, ((value, n_remain) if n_remain > 0 else None)


def cut_at_nul(piece: bytes) -> bytes:
    """llama.cpp reads pieces as C strings: everything from a NUL byte on is ignored."""
    nul = piece.find(0)
    return piece if nul < 0 else piece[:nul]


@dataclass(frozen=True)
class TrieLevel:
    """The nodes at depth ``k`` of the code point trie of the vocabulary.

    Node ``i`` is a distinct prefix of ``k + 1`` code points: `parent[i]` is its node at
    depth ``k - 1``, `cps[i]` its last code point, and ``order[lo[i]:hi[i]]`` the tokens
    that start with it. `child_start` (length n + 1) delimits its children at depth k + 1.
    """

    parent: np.ndarray
    cps: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    child_start: np.ndarray


@dataclass(frozen=True)
class VocabIndex:
    """Every piece decoded once (from a clean start), in the shapes the matcher needs.

    * `usable[t]`: not EOG, not empty, does not start with NUL (llama.cpp masks those out).
    * `cps[t]`: code points of token ``t`` (None if its bytes are invalid from a clean start);
      `end_partial[t]`: the unfinished character it ends with, or None; `partial_id[t]`
      numbers those (0: none) and `partials[i]` lists them.
    * `order`: the usable tokens with at least one whole character, sorted by code points,
      so the tokens sharing a prefix are a contiguous run; `levels` is their trie and
      `token_node[j]` the global node (``level_offsets[depth] + i``) where ``order[j]`` ends.
    * `partial_only`: tokens that are nothing but the start of a character (e.g. byte 0xE3).
    * `continuations`: tokens starting with a continuation byte, the only candidates while a
      character is unfinished.
    * `has_cps[t]`: usable and decodes to at least one whole character.
    * `flat_cps[offsets[t]:offsets[t + 1]]`: the code points of token ``t`` in one array.
    """

    n_vocab: int
    eog_ids: np.ndarray
    usable: np.ndarray
    cps: tuple[tuple[int, ...] | None, ...]
    end_partial: tuple[Partial | None, ...]
    partial_id: np.ndarray
    partials: tuple[Partial, ...]
    order: np.ndarray
    levels: tuple[TrieLevel, ...]
    level_offsets: np.ndarray
    token_node: np.ndarray
    partial_only: tuple[int, ...]
    continuations: tuple[int, ...]
    has_cps: np.ndarray
    flat_cps: np.ndarray
    offsets: np.ndarray


_cache: weakref.WeakKeyDictionary[TokenVocab, VocabIndex] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def vocab_index(vocab: TokenVocab) -> VocabIndex:
    """The decoded index of `vocab`, built on first use and cached per vocabulary object."""
    with _cache_lock:
        index = _cache.get(vocab)
    if index is None:
        index = _build_index(vocab)
        with _cache_lock:
            index = _cache.setdefault(vocab, index)
    return index


def _decode_piece(piece: bytes) -> tuple[tuple[int, ...] | None, Partial | None]:
    """Code points and trailing partial of one NUL-free piece from a clean start."""
    try:
        return tuple(map(ord, piece.decode("utf-8"))), None
    except UnicodeDecodeError:
        decoded = decode_utf8(piece)
        if decoded is None:
            return None, None
        return tuple(decoded[0]), decoded[1]


def _build_trie(
    cps: list[tuple[int, ...] | None], order: list[int]
) -> tuple[tuple[TrieLevel, ...], np.ndarray, np.ndarray]:
    """The trie of the (sorted) tokens in `order`, level by level, with numpy.

    In sorted order the tokens under one prefix are a run, so a new node starts wherever
    the parent node or the code point at this depth changes from the previous token.
    """
    n = len(order)
    lengths = np.fromiter((len(cps[t]) for t in order), dtype=np.int64, count=n)  # type: ignore[arg-type]
    chars = chain.from_iterable(cps[t] for t in order)  # type: ignore[arg-type]
    flat = np.fromiter(chars, dtype=np.int64, count=int(lengths.sum()))
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    prev_node = np.zeros(n, dtype=np.int64)
    token_node = np.zeros(n, dtype=np.int64)
    raw_levels = []
    level_start = 0
    for k in range(int(lengths.max()) if n else 0):
        sel = np.flatnonzero(lengths > k)
        parent, cp = prev_node[sel], flat[offsets[sel] + k]
        new = np.ones(sel.size, dtype=bool)
        new[1:] = (parent[1:] != parent[:-1]) | (cp[1:] != cp[:-1])
        node = np.cumsum(new) - 1
        last = np.ones(sel.size, dtype=bool)
        last[:-1] = new[1:]
        raw_levels.append((parent[new], cp[new], sel[new], sel[last] + 1))
        prev_node[sel] = node
        ending = lengths[sel] == k + 1
        token_node[sel[ending]] = level_start + node[ending]
        level_start += int(new.sum())
    levels = []
    for k, (parent, cp, lo, hi) in enumerate(raw_levels):
        nxt_parent = raw_levels[k + 1][0] if k + 1 < len(raw_levels) else np.zeros(0, dtype=np.int64)
        child_start = np.searchsorted(nxt_parent, np.arange(parent.size + 1)).astype(np.int32)
        levels.append(TrieLevel(parent.astype(np.int32), cp, lo.astype(np.int32), hi.astype(np.int32), child_start))
    level_offsets = np.concatenate(([0], np.cumsum([lv.parent.size for lv in levels]))).astype(np.int64)
    return tuple(levels), level_offsets, token_node


def _build_index(vocab: TokenVocab) -> VocabIndex:
    n = len(vocab.pieces)
    usable = np.ones(n, dtype=bool)
    cps: list[tuple[int, ...] | None] = [None] * n
    ends: list[Partial | None] = [None] * n
    continuations = []
    for tok, raw in enumerate(vocab.pieces):
        piece = cut_at_nul(raw)
        if tok in vocab.eog or not piece:
            usable[tok] = False
            continue
        if piece[0] >> 6 == 2:
            continuations.append(tok)
        cps[tok], ends[tok] = _decode_piece(piece)
    order = sorted((t for t in range(n) if usable[t] and cps[t]), key=cps.__getitem__)  # type: ignore[arg-type]
    levels, level_offsets, token_node = _build_trie(cps, order)
    partials = sorted({e for e in ends if e is not None})
    numbering = {e: i + 1 for i, e in enumerate(partials)}
    has_cps = np.zeros(n, dtype=bool)
    sizes = np.fromiter((len(c or ()) for c in cps), dtype=np.int64, count=n)
    has_cps[order] = True
    return VocabIndex(
        n_vocab=n,
        eog_ids=np.array(sorted(vocab.eog), dtype=np.int64),
        usable=usable,
        cps=tuple(cps),
        end_partial=tuple(ends),
        partial_id=np.array([numbering.get(e, 0) for e in ends], dtype=np.int32),  # type: ignore[arg-type]
        partials=((0, 0), *partials),
        order=np.array(order, dtype=np.int64),
        levels=levels,
        level_offsets=level_offsets,
        token_node=token_node,
        partial_only=tuple(t for t in range(n) if usable[t] and cps[t] == () and ends[t] is not None),
        continuations=tuple(continuations),
        has_cps=has_cps,
        flat_cps=np.fromiter(chain.from_iterable(c or () for c in cps), dtype=np.int64, count=int(sizes.sum())),
        offsets=np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
    )
