"""Shared fixtures: the pinned llama.cpp source tree, tiny generated models, the demo model.

Tests never download anything: `.ci/run` runs `build_scripts/fetch_lib.py --model smollm2`
first, exactly as the README says. Anything missing fails loudly with that hint.
Tests that drive llama.cpp hold a machine-wide lock so two test sessions never run
llama.cpp at once (its spinning threads collapse throughput when they share cores).
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/fixtures importable as a package

from llamactypes.paths import demo_model_path, source_dir  # noqa: E402
from tests.fixtures.tiny_gguf import write_tiny_model  # noqa: E402

HINT = "run `python build_scripts/fetch_lib.py --model smollm2` first (see README)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts[0] in ("native",):
            item.add_marker(pytest.mark.native)
        if parts[0] in ("e2e", "conformance"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def llama_source() -> Path:
    """The pinned llama.cpp source tree (grammars, chat templates, headers, server tests)."""
    tree = source_dir()
    if not (tree / "include" / "llama.h").is_file():
        pytest.fail(f"llama.cpp source tree not found at {tree}: {HINT}")
    return tree


@pytest.fixture(scope="session")
def native_lock() -> Iterator[None]:
    """Hold the machine-wide llama.cpp lock for the rest of the session.

    The wait is a blocking `flock` (in a helper thread, so it can time out): polling with
    LOCK_NB loses every time to processes queued in the kernel with `flock CMD`."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / "llamactypes-native.lock"
    with open(path, "w") as fh:
        got = threading.Event()

        def wait() -> None:
            fcntl.flock(fh, fcntl.LOCK_EX)
            got.set()

        threading.Thread(target=wait, name="native-lock", daemon=True).start()
        if not got.wait(900):
            pytest.fail(f"another process held {path} for 15 minutes (don't wrap pytest in flock: "
                        "the test session takes this lock itself)")
        yield


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory, native_lock: None) -> Path:
    """A tiny random llama GGUF with a ChatML template."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-chatml.gguf", template="chatml")


@pytest.fixture(scope="session")
def tiny_hermes_path(tmp_path_factory: pytest.TempPathFactory, native_lock: None) -> Path:
    """A tiny random llama GGUF with a Hermes/Qwen-style tool-calling template."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-hermes.gguf", template="hermes")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> Iterator["object"]:
    from llamactypes import Model

    with Model(tiny_model_path, n_ctx=256, n_threads=1) as model:
        yield model


@pytest.fixture(scope="session")
def demo_path(native_lock: None) -> Path:
    path = demo_model_path()
    if not path.is_file():
        pytest.fail(f"demo model not found at {path}: {HINT}")
    return path


@pytest.fixture(scope="session")
def demo_model(demo_path: Path) -> Iterator["object"]:
    """SmolLM2-135M-Instruct, one instance shared by the session (flash attention fixed off
    so reference runs in the same library use identical settings)."""
    from llamactypes import Model

    with Model(demo_path, n_ctx=2048, flash_attn=False) as model:
        yield model
