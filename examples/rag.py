#!/usr/bin/env python3
"""Answer questions about a folder of text files with a local model (retrieval-augmented generation).

    python examples/rag.py docs/ "How do I start the server?"                 # the demo model
    python examples/rag.py notes/ "What did we decide?" --model model.gguf --manual
    python examples/rag.py notes/ "What did we decide?" --url http://127.0.0.1:11434/v1

1. Index: every .txt/.md/.rst file under the folder is cut into chunks of about
   `--chunk` characters, embedded through the server's /v1/embeddings, and stored in a
   SQLite file (`--db`, default FOLDER/.rag.sqlite) with the vectors as numpy float32
   bytes. Files are re-embedded only when they change.
2. Retrieve: the question's embedding against every stored vector (cosine), best `--k`.
3. Answer, two ways:
   - tools (default): the model gets a `retrieve(query)` tool and decides what to look up;
   - manual (`--manual`): we retrieve for the question ourselves and put the chunks in the
     prompt. Models too small to call tools reliably (the 135M demo model) need this; in the
     default mode a reply that never called the tool, or that ends in a tool call written as
     text, falls back to it automatically (`--tools`: no fallback).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from llamactypes import Chat, LlamaError
from llamactypes.paths import demo_model_path

SUFFIXES = {".txt", ".md", ".rst"}
SYSTEM_TOOLS = ("You answer questions about the user's documents. Call the retrieve tool to look up "
                "the relevant passages before answering, then answer briefly and cite the file names.")
SYSTEM_MANUAL = "You answer questions using only the context given. Answer briefly and cite the file names."

Embed = Callable[[list[str]], np.ndarray]


def chunk_text(text: str, size: int = 800, overlap: int = 100) -> list[str]:
    """Paragraphs packed into chunks of at most ~`size` characters; a longer paragraph is cut
    into windows that overlap by `overlap` characters (cut at spaces)."""
    chunks: list[str] = []
    current = ""
    for para in (p.strip() for p in text.replace("\r\n", "\n").split("\n\n")):
        if not para:
            continue
        pieces = [para] if len(para) <= size else _windows(" ".join(para.split()), size, overlap)
        for piece in pieces:
            if current and len(current) + 2 + len(piece) > size:
                chunks.append(current)
                current = ""
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def _windows(text: str, size: int, overlap: int) -> list[str]:
    out = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text) and " " in text[start + size // 2:end]:
            end = text.rindex(" ", start + size // 2, end)
        out.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
        if start > 0 and text[start - 1] != " " and " " in text[start:end]:
            start = text.index(" ", start) + 1  # begin the overlap on a word
    return out


@dataclass
class Hit:
    path: str
    text: str
    score: float


class Index:
    """Chunks and their embeddings in one SQLite file."""

    def __init__(self, db: Path, embed: Embed, model: str) -> None:
        self.db = sqlite3.connect(db)
        self.embed = embed
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, mtime REAL, size INTEGER);
            CREATE TABLE IF NOT EXISTS chunks(path TEXT, n INTEGER, text TEXT, vector BLOB,
                                              PRIMARY KEY (path, n));
        """)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        if row is not None and row[0] != model:  # vectors of another model are not comparable
            self.db.executescript("DELETE FROM files; DELETE FROM chunks;")
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", (model,))
        self.db.commit()

    def update(self, folder: Path, chunk_size: int = 800) -> tuple[int, int]:
        """Embed new and changed files, forget deleted ones; returns (files embedded, files removed)."""
        found = {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")}
        known = {path: (mtime, size) for path, mtime, size in self.db.execute("SELECT * FROM files")}
        removed = [path for path in known if path not in found]
        for path in removed:
            self._forget(path)
        changed = 0
        for rel, path in found.items():
            stat = path.stat()
            if known.get(rel) == (stat.st_mtime, stat.st_size):
                continue
            chunks = chunk_text(path.read_text(encoding="utf-8", errors="replace"), chunk_size)
            vectors = self._embed_batches(chunks)
            self._forget(rel)
            self.db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?)", [
                (rel, n, text, vec.astype(np.float32).tobytes()) for n, (text, vec) in enumerate(zip(chunks, vectors))])
            self.db.execute("INSERT INTO files VALUES (?, ?, ?)", (rel, stat.st_mtime, stat.st_size))
            self.db.commit()
            changed += 1
        self.db.commit()
        return changed, len(removed)

    def _embed_batches(self, texts: list[str], batch: int = 16) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([self.embed(texts[i:i + batch]) for i in range(0, len(texts), batch)])

    def _forget(self, path: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))
        self.db.execute("DELETE FROM files WHERE path = ?", (path,))

    def counts(self) -> tuple[int, int]:
        files = self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return files, chunks

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """The `k` chunks most similar to `query` (cosine similarity of normalized vectors)."""
        rows = self.db.execute("SELECT path, text, vector FROM chunks").fetchall()
        if not rows:
            return []
        matrix = np.vstack([np.frombuffer(vector, dtype=np.float32) for _, _, vector in rows])
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        q = self.embed([query])[0]
        scores = matrix @ (q / max(float(np.linalg.norm(q)), 1e-12))
        best = np.argsort(-scores)[:k]
        return [Hit(rows[i][0], rows[i][1], float(scores[i])) for i in best]


def format_hits(hits: Iterable[Hit]) -> str:
    return "\n\n".join(f"[{h.path}]\n{h.text}" for h in hits) or "(nothing found)"


def _looks_like_a_call(text: str) -> bool:
    """Small models sometimes write a tool call as text once tools are off: no usable answer."""
    return not text or text.lstrip().startswith(("{", "[", "<tool_call>"))


def answer(chat: Chat, index: Index, question: str, mode: str, k: int, max_tokens: int) -> str:
    """Print the answer as it streams; returns the mode actually used ("tools" or "manual")."""
    used: list[str] = []
    if mode != "manual":
        def retrieve(query: str) -> str:
            """Look up passages in the user's documents.

            Args:
                query: what to search for, in a few words.
            """
            used.append(query)
            print(f"[retrieve: {query!r}]", file=sys.stderr, flush=True)
            return format_hits(index.search(query, k))

        chat.register_tool(retrieve)
        chat.max_tool_rounds = 2  # look up twice at most, then answer
        chat.reset(SYSTEM_TOOLS)
        final = chat.chat(question, max_tokens=max_tokens, temperature=0).strip()
        if mode == "tools" or (used and not _looks_like_a_call(final)):
            print(final, flush=True)
            return "tools"
        why = "answered with a tool call instead of text" if used else "did not call retrieve"
        print(f"[the model {why}: retrieving manually]", file=sys.stderr, flush=True)
    hits = index.search(question, k)
    chat.tools.clear()
    chat.reset(SYSTEM_MANUAL)
    prompt = f"Context:\n{format_hits(hits)}\n\nQuestion: {question}"
    for piece in chat.stream(prompt, max_tokens=max_tokens, temperature=0):
        print(piece, end="", flush=True)
    print()
    print("sources: " + ", ".join(dict.fromkeys(h.path for h in hits)), flush=True)
    return "manual"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder of .txt/.md/.rst files")
    parser.add_argument("question", nargs="+", help="what to ask")
    parser.add_argument("--model", default=None, help="GGUF file to spawn a server for (default: the demo model)")
    parser.add_argument("--url", help="use a running server instead of spawning one")
    parser.add_argument("--db", type=Path, help="SQLite index (default FOLDER/.rag.sqlite)")
    parser.add_argument("--manual", action="store_true", help="retrieve ourselves instead of offering a tool")
    parser.add_argument("--tools", action="store_true", help="only the tool route, no manual fallback")
    parser.add_argument("--k", type=int, default=3, help="chunks to retrieve (default %(default)s)")
    parser.add_argument("--chunk", type=int, default=800, help="chunk size in characters")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"no folder at {args.folder}")
    if args.url and args.model:
        parser.error("give --model or --url, not both")
    mode = "manual" if args.manual else "tools" if args.tools else "auto"
    try:
        if args.url:
            chat = Chat(base_url=args.url)
        else:
            model = args.model or str(demo_model_path())
            print(f"starting a server for {model} …", file=sys.stderr, flush=True)
            chat = Chat(model, n_ctx=args.n_ctx, timeout=args.timeout)
        with chat:
            index = Index(args.db or args.folder / ".rag.sqlite", chat.embed, chat.model)
            changed, removed = index.update(args.folder, args.chunk)
            files, chunks = index.counts()
            print(f"index: {files} files, {chunks} chunks ({changed} embedded, {removed} removed)",
                  file=sys.stderr, flush=True)
            answer(chat, index, " ".join(args.question), mode, args.k, args.max_tokens)
    except (LlamaError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
