"""Fixtures the server unit tests share: a scripted fake model, an engine on it, a WSGI test client.

A module that needs another queue bound or server config overrides `engine` or builds its client
with `make_client(engine, **config)`.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from werkzeug.test import Client

from llamactypes.engine import Engine
from llamactypes.server import ServerConfig, create_app

from .fakes import FakeModel


def make_client(engine: Engine, **config: Any) -> Client:
    """A test client for the app on `engine`, with `ServerConfig(**config)`."""
    return Client(create_app(engine, ServerConfig(**config)))


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def engine(model: FakeModel) -> Iterator[Engine]:
    with Engine(model, max_waiting=1) as engine:
        yield engine


@pytest.fixture
def client(engine: Engine) -> Client:
    return make_client(engine)
