"""A literal, slow Python transcription of llama.cpp's grammar sampler (src/llama-grammar.cpp).

It runs on the element lists llama.cpp itself would build (`GrammarIR.llama_elements`, which
the parser tests check against llama.cpp's own expectations), with stacks of (rule, index)
positions, and keeps every quirk: partial UTF-8 across tokens, the NUL-terminated pieces,
the shortcut in ``match_partial_char``, and token terminals checked even in mid-token.
The fast matcher is compared against it on random walks; the native oracle tests (later)
compare llama.cpp itself against the same walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llamactypes.grammar import Grammar, TokenVocab

Pos = tuple[int, int]  # (rule id, element index)
Stack = tuple[Pos, ...]
_LOOKUP = (1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4)


def decode_utf8(src: bytes, partial: tuple[int, int]) -> tuple[list[int], tuple[int, int]]:
    """``decode_utf8(std::string, llama_partial_utf8)``; the list ends with the 0 terminator."""
    src = src.split(b"\0", 1)[0]
    pos, cps = 0, []
    value, n_remain = partial
    while pos < len(src) and n_remain > 0:
        if src[pos] >> 6 != 2:
            return [0], (0, -1)
        value = (value << 6) + (src[pos] & 0x3F)
        pos += 1
        n_remain -= 1
    if partial[1] > 0 and n_remain == 0:
        cps.append(value)
    while pos < len(src):
        first = src[pos]
        n_remain = _LOOKUP[first >> 4] - 1
        if n_remain < 0:
            return [0], (0, n_remain)
        value = first & ((1 << (7 - n_remain)) - 1)
        pos += 1
        while pos < len(src) and n_remain > 0:
            value = (value << 6) + (src[pos] & 0x3F)
            pos += 1
            n_remain -= 1
        if n_remain == 0:
            cps.append(value)
    cps.append(0)
    return cps, (value, n_remain)


@dataclass
class LlamaReference:
    """One ``llama_grammar``: rules, stacks, partial UTF-8 state."""

    grammar: Grammar
    vocab: TokenVocab
    rules: list[list[tuple[str, int]]] = field(init=False)
    stacks: list[Stack] = field(init=False)
    partial: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        ir = self.grammar.ir
        self.rules = [ir.llama_elements(i) for i in range(len(ir.rules))]
        self.stacks = []
        root = ir.root
        idx = 0
        while True:
            stack: Stack = () if self.is_end((root, idx)) else ((root, idx),)
            self.advance_stack(stack, self.stacks)
            while not self.is_end((root, idx)):
                idx += 1
            if self.el((root, idx))[0] == "ALT":
                idx += 1
            else:
                break

    # --- helpers ----------------------------------------------------------------------------
    def el(self, pos: Pos) -> tuple[str, int]:
        return self.rules[pos[0]][pos[1]]

    def is_end(self, pos: Pos) -> bool:
        return self.el(pos)[0] in ("END", "ALT")

    def match_char(self, pos: Pos, chr_: int) -> tuple[bool, Pos]:
        kind, _ = self.el(pos)
        positive = kind in ("CHAR", "CHAR_ANY")
        found = False
        rule, i = pos
        while True:
            kind, value = self.rules[rule][i]
            if self.rules[rule][i + 1][0] == "CHAR_RNG_UPPER":
                found = found or value <= chr_ <= self.rules[rule][i + 1][1]
                i += 2
            elif kind == "CHAR_ANY":
                found = True
                i += 1
            else:
                found = found or value == chr_
                i += 1
            if self.rules[rule][i][0] != "CHAR_ALT":
                break
        return found == positive, (rule, i)

    def match_partial_char(self, pos: Pos, partial: tuple[int, int]) -> bool:
        kind, _ = self.el(pos)
        positive = kind in ("CHAR", "CHAR_ANY")
        value, n_remain = partial
        if n_remain < 0 or (n_remain == 1 and value < 2):
            return False
        low = value << (n_remain * 6)
        high = low | ((1 << (n_remain * 6)) - 1)
        if low == 0:
            low = {2: 1 << 11, 3: 1 << 16}.get(n_remain, low)
        rule, i = pos
        while True:
            kind, val = self.rules[rule][i]
            if self.rules[rule][i + 1][0] == "CHAR_RNG_UPPER":
                if val <= high and low <= self.rules[rule][i + 1][1]:
                    return positive
                i += 2
            elif kind == "CHAR_ANY":
                return True
            else:
                if low <= val <= high:
                    return positive
                i += 1
            if self.rules[rule][i][0] != "CHAR_ALT":
                break
        return not positive

    def advance_stack(self, stack: Stack, new_stacks: list[Stack]) -> None:
        todo, seen = [stack], set()
        while todo:
            cur = todo.pop()
            if cur in seen:
                continue
            seen.add(cur)
            if not cur:
                if cur not in new_stacks:
                    new_stacks.append(cur)
                continue
            pos = cur[-1]
            kind, value = self.el(pos)
            if kind == "RULE_REF":
                sub = (value, 0)
                while True:
                    nxt = cur[:-1]
                    after = (pos[0], pos[1] + 1)
                    if not self.is_end(after):
                        nxt = nxt + (after,)
                    if not self.is_end(sub):
                        nxt = nxt + (sub,)
                    todo.append(nxt)
                    while not self.is_end(sub):
                        sub = (sub[0], sub[1] + 1)
                    if self.el(sub)[0] == "ALT":
                        sub = (sub[0], sub[1] + 1)
                    else:
                        break
            else:
                assert kind in ("CHAR", "CHAR_NOT", "CHAR_ANY", "TOKEN", "TOKEN_NOT"), kind
                if cur not in new_stacks:
                    new_stacks.append(cur)

    def match_token(self, pos: Pos, token: int) -> bool:
        kind, value = self.el(pos)
        return value == token if kind == "TOKEN" else value != token

    # --- sampling -----------------------------------------------------------------------
    def reject_for_stack(self, stack: Stack, candidates: list[tuple[int, list[int], int, tuple[int, int]]]):
        """``llama_grammar_reject_candidates_for_stack``; a candidate is (token, cps, i, partial)."""
        rejects = []
        if not stack:
            return [c for c in candidates if c[1][c[2]] != 0 or c[3][1] != 0]
        pos = stack[-1]
        kind, _ = self.el(pos)
        if kind in ("TOKEN", "TOKEN_NOT"):
            for tok, cps, i, partial in candidates:
                if cps[i] == 0:
                    if partial[1] != 0:
                        rejects.append((tok, cps, i, partial))
                elif not self.match_token(pos, tok):
                    rejects.append((tok, cps, i, partial))
            return rejects
        nxt = []
        for tok, cps, i, partial in candidates:
            if cps[i] == 0:
                if partial[1] != 0 and not self.match_partial_char(pos, partial):
                    rejects.append((tok, cps, i, partial))
            elif self.match_char(pos, cps[i])[0]:
                nxt.append((tok, cps, i + 1, partial))
            else:
                rejects.append((tok, cps, i, partial))
        after = self.match_char(pos, 0)[1]
        stack_after = stack[:-1] + (() if self.is_end(after) else (after,))
        next_stacks: list[Stack] = []
        self.advance_stack(stack_after, next_stacks)
        for tok, cps, i, partial in self.reject(next_stacks, nxt):
            rejects.append((tok, cps, i - 1, partial))
        return rejects

    def reject(self, stacks: list[Stack], candidates):
        if not candidates:
            return []
        rejects = self.reject_for_stack(stacks[0], candidates)
        for stack in stacks[1:]:
            rejects = self.reject_for_stack(stack, rejects)
        return rejects

    def allowed(self) -> set[int]:
        """``llama_grammar_apply_impl``: the ids left with a finite logit."""
        allow_eog = any(not s for s in self.stacks)
        allowed, candidates = set(), []
        for tok, piece in enumerate(self.vocab.pieces):
            if tok in self.vocab.eog:
                if allow_eog:
                    allowed.add(tok)
            elif piece and piece[0] != 0:
                cps, partial = decode_utf8(piece, self.partial)
                candidates.append((tok, cps, 0, partial))
        rejected = {c[0] for c in self.reject(self.stacks, candidates)}
        return allowed | ({c[0] for c in candidates} - rejected)

    def accept(self, token: int) -> None:
        """``llama_grammar_accept_impl`` (raises RuntimeError where llama.cpp throws/aborts)."""
        if token in self.vocab.eog:
            if any(not s for s in self.stacks):
                return
            raise RuntimeError("EOG while the grammar is incomplete")
        cps, partial = decode_utf8(self.vocab.pieces[token], self.partial)
        new: list[Stack] = []
        for stack in self.stacks:
            if not stack:
                continue
            pos = stack[-1]
            if self.el(pos)[0] in ("TOKEN", "TOKEN_NOT"):
                if self.match_token(pos, token):
                    after = (pos[0], pos[1] + 1)
                    self.advance_stack(stack[:-1] + (() if self.is_end(after) else (after,)), new)
                continue
            current = [stack]
            for cp in cps[:-1]:
                nxt: list[Stack] = []
                for cur in current:
                    self.accept_chr(cur, cp, nxt)
                current = nxt
                if not current:
                    break
            for s in current:
                if s not in new:
                    new.append(s)
        self.stacks, self.partial = new, partial
        if not new:
            raise RuntimeError("Unexpected empty grammar stack")

    def accept_chr(self, stack: Stack, cp: int, out: list[Stack]) -> None:
        if not stack:
            return
        pos = stack[-1]
        if self.el(pos)[0] in ("TOKEN", "TOKEN_NOT"):
            return
        ok, after = self.match_char(pos, cp)
        if ok:
            self.advance_stack(stack[:-1] + (() if self.is_end(after) else (after,)), out)
