"""Per-call costs of the grammar matcher on a 49k-token vocabulary (pure Python, no model).

    python bench/bench_grammar.py                 # synthetic byte-level-BPE-like vocabulary
    python bench/bench_grammar.py --gguf PATH     # the vocabulary of a GGUF file (via gguf-py)

A JSON document is tokenized greedily with the vocabulary, then each step is timed:
`allows` (the per-token fast path), `mask` and `advance`, in three passes: cold (first
visit of every state: transitions and masks computed on the way), uncached (transitions
known, every mask walks the whole vocabulary) and cached (masks of repeated states).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llamactypes.grammar import Grammar, TokenVocab  # noqa: E402
from llamactypes.paths import source_dir  # noqa: E402

DOC = (
    '{"name": "Alice", "age": 30, "tags": ["a", "b", {"x": [1, 2, 3.5e3]}], "ok": true, "none": null, '
    '"text": "hello world, this is a longer string with words and numbers 12345", "nested": {"deep": '
    '{"deeper": [{"k": "v"}, {"k": "w"}], "count": -17}}, "unicode": "caf\u00e9 \u65e5\u672c \U0001F600 \\u00e9"}'
)


def synthetic_vocab(n: int = 49152, seed: int = 0) -> TokenVocab:
    """Byte tokens, words with and without a leading space, punctuation runs, digits,
    whitespace runs, CJK characters and split multi-byte sequences, special tokens."""
    rng = random.Random(seed)
    pieces: list[bytes] = [b"<|endoftext|>", b"<|im_start|>", b"<|im_end|>"]
    pieces += [bytes([b]) for b in range(256)]
    seen = set(pieces)

    def add(piece: bytes) -> None:
        if piece and piece not in seen:
            seen.add(piece)
            pieces.append(piece)

    for text in ['{"', '":', '", "', '"}', "},", "[{", "}]", "\n\n", "    ", "        ", "\t\t", "::", "->",
                 "==", "!=", "</", "/>", "()", "();", "{}", "[]", '":"', '","', '":{"', "\\n", "\\\"", "...", "--"]:
        add(text.encode())
    for d in range(1000):
        add(str(d).encode())
    cjk = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]
    for ch in cjk[:1500]:
        add(ch.encode())
        add(ch.encode()[:2])
        add(ch.encode()[1:])
    syllables = [a + b for a in "bcdfghjklmnprstvwz" for b in "aeiou"] + list("aeiouy")
    while len(pieces) < n:
        word = "".join(rng.choice(syllables) for _ in range(rng.choice((1, 1, 2, 2, 3, 4))))
        style = rng.random()
        if style < 0.45:
            word = " " + word
        elif style < 0.55:
            word = word.capitalize()
        elif style < 0.6:
            word = " " + word.capitalize()
        elif style < 0.65:
            word = rng.choice(["_", ".", "(", '"', "'", "-", "/"]) + word
        elif style < 0.68:
            word = " " * rng.randint(2, 24)
        elif style < 0.7:
            word = rng.choice("=-#*~") * rng.randint(2, 64)
        add(word.encode())
    return TokenVocab(pieces[:n], frozenset({0, 2}))


def gguf_vocab(path: Path) -> TokenVocab:
    """The vocabulary of a GGUF file (GPT-2 byte-level BPE), read with gguf-py."""
    sys.path.insert(0, str(source_dir() / "gguf-py"))
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields

    def array(name: str) -> list:
        field = fields[name]
        return [field.parts[i] for i in field.data]

    tokens = [bytes(t).decode("utf-8") for t in array("tokenizer.ggml.tokens")]
    types = [int(t[0]) for t in array("tokenizer.ggml.token_type")]
    eos = int(fields["tokenizer.ggml.eos_token_id"].parts[-1][0])
    byte_chars = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    mapping, extra = {}, 0
    for b in range(256):
        if b in byte_chars:
            mapping[chr(b)] = b
        else:
            mapping[chr(256 + extra)] = b
            extra += 1
    pieces = [t.encode() if ty in (3, 4) else bytes(mapping[c] for c in t) for t, ty in zip(tokens, types)]
    return TokenVocab(pieces, frozenset({eos}))


def tokenize(vocab: TokenVocab, text: str) -> list[int]:
    """Greedy longest-match tokenization (good enough to drive the matcher)."""
    by_piece: dict[bytes, int] = {}
    for i, piece in enumerate(vocab.pieces):
        if i not in vocab.eog and piece and not piece.startswith(b"<|"):
            by_piece.setdefault(piece, i)
    longest = max(len(p) for p in by_piece)
    data, pos, out = text.encode(), 0, []
    while pos < len(data):
        for size in range(min(longest, len(data) - pos), 0, -1):
            token = by_piece.get(data[pos:pos + size])
            if token is not None:
                out.append(token)
                pos += size
                break
        else:
            raise ValueError(f"cannot tokenize at byte {pos}")
    return out


def run(vocab: TokenVocab, grammar_text: str) -> None:
    t0 = time.perf_counter()
    grammar = Grammar.from_gbnf(grammar_text)
    compiled = grammar.compile(vocab)
    print(f"vocabulary {len(vocab)} tokens; parse + compile {1e3 * (time.perf_counter() - t0):.0f} ms")
    tokens = tokenize(vocab, DOC)
    print(f"document: {len(tokens)} tokens")
    for label in ("cold", "uncached", "cached"):
        matcher = compiled.matcher()
        t_allow, t_mask, t_adv = [], [], []
        for token in tokens:
            t = time.perf_counter()
            ok = matcher.allows(token)
            t_allow.append(time.perf_counter() - t)
            assert ok, vocab.pieces[token]
            if label == "uncached":
                compiled._masks.clear()  # every mask walks the vocabulary (transitions known)
            t = time.perf_counter()
            mask = matcher.mask()
            t_mask.append(time.perf_counter() - t)
            assert mask[token]
            t = time.perf_counter()
            matcher.advance(token)
            t_adv.append(time.perf_counter() - t)
        assert matcher.is_complete()
        us = 1e6
        print(f"{label:>6}: allows median {statistics.median(t_allow) * us:5.1f} us | "
              f"mask median {statistics.median(t_mask) * 1e3:5.2f} ms, max {max(t_mask) * 1e3:5.2f} ms | "
              f"advance median {statistics.median(t_adv) * us:5.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, help="take the vocabulary from this GGUF file")
    args = parser.parse_args()
    vocab = gguf_vocab(args.gguf) if args.gguf else synthetic_vocab()
    run(vocab, (source_dir() / "grammars" / "json.gbnf").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
