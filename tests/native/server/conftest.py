"""The real app on the tiny generated models: an engine per model, in process."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from llamactypes import Model
from llamactypes.engine import Engine


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_path: Path) -> Iterator[Engine]:
    with Model(tiny_model_path, n_ctx=256, n_threads=1) as model, Engine(model, max_waiting=8) as engine:
        yield engine


@pytest.fixture(scope="module")
def hermes_engine(tiny_hermes_path: Path) -> Iterator[Engine]:
    with Model(tiny_hermes_path, n_ctx=1024, n_threads=1) as model, Engine(model, model_id="hermes") as engine:
        yield engine
