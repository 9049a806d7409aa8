"""examples/rag.py without a model: chunking, the SQLite index (incremental), retrieval,
and both answer routes (a `retrieve` tool call, and the manual fallback) against the fake server."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import requests

from llamactypes.client import Chat, WSGIAdapter
from tests.fixtures.fake_openai import FakeOpenAI, embedding, text, tool_calls

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rag() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rag_example", ROOT / "examples" / "rag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rag_example"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def fake_embed(texts: list[str]) -> np.ndarray:
    return np.asarray([embedding(t, dim=64) for t in texts], dtype=np.float32)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "llamas.txt").write_text("Llamas live in the Andes mountains.\n\nThey eat grass and hay.")
    (folder / "server.md").write_text("Start the server with python -m llamactypes.serve model.gguf")
    (folder / "sub").mkdir()
    (folder / "sub" / "tax.rst").write_text("Tax returns are due in April every year.")
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


def test_chunking(rag: ModuleType) -> None:
    assert rag.chunk_text("a\n\nb\n\n\nc", size=100) == ["a\n\nb\n\nc"]
    assert rag.chunk_text("aaaa\n\nbbbb", size=6) == ["aaaa", "bbbb"]
    words = " ".join(f"w{i}" for i in range(200))
    pieces = rag.chunk_text(words, size=100, overlap=20)
    assert all(len(p) <= 100 for p in pieces) and len(pieces) > 5
    assert all(p.split()[0].startswith("w") and p.split()[-1].startswith("w") for p in pieces)  # whole words
    covered = set(" ".join(pieces).split())
    assert covered == set(words.split())


def test_index_is_incremental_and_retrieves(rag: ModuleType, docs: Path, tmp_path: Path) -> None:
    calls: list[int] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return fake_embed(texts)

    db = tmp_path / "index.sqlite"
    index = rag.Index(db, counting, "m1")
    assert index.update(docs) == (3, 0)
    assert index.counts() == (3, 3)
    hits = index.search("Tax returns are due in April every year.", k=2)
    assert hits[0].path == os.path.join("sub", "tax.rst") and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 2
    calls.clear()
    assert rag.Index(db, counting, "m1").update(docs) == (0, 0)  # nothing changed: nothing embedded
    assert calls == []
    (docs / "server.md").unlink()
    (docs / "llamas.txt").write_text("Llamas hum.")
    index = rag.Index(db, counting, "m1")
    assert index.update(docs) == (1, 1)
    assert index.counts() == (2, 2)
    assert rag.Index(db, counting, "another-model").counts() == (0, 0)  # other vectors: start over
    stored = sqlite_vector(db)
    assert stored.dtype == np.float32 and stored.shape == (64,)


def sqlite_vector(db: Path) -> np.ndarray:
    import sqlite3

    with sqlite3.connect(db) as conn:
        blob = conn.execute("SELECT vector FROM chunks LIMIT 1").fetchone()
    return np.frombuffer(blob[0], dtype=np.float32) if blob else np.zeros(64, dtype=np.float32)


def _chat(app: FakeOpenAI) -> Chat:
    session = requests.Session()
    session.mount("http://fake/", WSGIAdapter(app))
    return Chat(base_url="http://fake/v1", session=session)


def test_answer_with_the_retrieve_tool(rag: ModuleType, docs: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    app = FakeOpenAI().add(tool_calls(("retrieve", json.dumps({"query": "Llamas live in the Andes"}))),
                           text("In the Andes [llamas.txt]."))
    index = rag.Index(tmp_path / "i.sqlite", fake_embed, "m")
    index.update(docs)
    assert rag.answer(_chat(app), index, "Where do llamas live?", "auto", 1, 64) == "tools"
    out = capsys.readouterr()
    assert "In the Andes [llamas.txt]." in out.out and "[retrieve: 'Llamas live in the Andes']" in out.err
    tool_result = app.requests[1]["messages"][-1]
    assert tool_result["role"] == "tool" and "[llamas.txt]" in tool_result["content"]
    assert app.requests[0]["tools"][0]["function"]["parameters"]["required"] == ["query"]


def test_manual_fallback_when_no_tool_is_called(rag: ModuleType, docs: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    app = FakeOpenAI().add(text("I think they live somewhere."))
    index = rag.Index(tmp_path / "i.sqlite", fake_embed, "m")
    index.update(docs)
    assert rag.answer(_chat(app), index, "Tax returns are due when?", "auto", 1, 64) == "manual"
    out = capsys.readouterr()
    assert "retrieving manually" in out.err
    assert "sources: " + os.path.join("sub", "tax.rst") in out.out
    manual = app.requests[1]
    assert "tools" not in manual and "Context:\n[" + os.path.join("sub", "tax.rst") + "]" in manual["messages"][-1]["content"]


def test_a_tool_call_written_as_text_falls_back_too(rag: ModuleType, docs: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    app = FakeOpenAI().add(tool_calls(("retrieve", '{"query": "tax"}')),
                           text('{"tool_call": {"name": "retrieve"}}'), text("April."))
    index = rag.Index(tmp_path / "i.sqlite", fake_embed, "m")
    index.update(docs)
    assert rag.answer(_chat(app), index, "When are taxes due?", "auto", 1, 64) == "manual"
    out = capsys.readouterr()
    assert "answered with a tool call instead of text" in out.err and "April." in out.out
