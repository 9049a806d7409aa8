"""Fixtures for the grammar engine tests (pure Python, no native library).

The pinned llama.cpp tree comes from the `llama_source` fixture of tests/conftest.py;
its grammars and C++ test cases are read in place, never copied here.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def grammars_dir(llama_source: Path) -> Path:
    """llama.cpp's ``grammars/`` folder (json.gbnf, c.gbnf, ...)."""
    return llama_source / "grammars"


@pytest.fixture(scope="session")
def json_gbnf(grammars_dir: Path) -> str:
    return (grammars_dir / "json.gbnf").read_text(encoding="utf-8")
