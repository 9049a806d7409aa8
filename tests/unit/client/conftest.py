"""Client fixtures: the scripted fake server in process (WSGIAdapter) and on a real socket."""

from __future__ import annotations

import threading
from typing import Callable, Iterator

import pytest
import requests
from werkzeug.serving import make_server

from llamactypes.client import Chat, WSGIAdapter
from tests.fixtures.fake_openai import FakeOpenAI


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def make_chat(fake: FakeOpenAI) -> Iterator[Callable[..., Chat]]:
    """Chats talking to `fake` in process, through a requests session with the WSGI adapter."""
    chats: list[Chat] = []

    def make(**kwargs: object) -> Chat:
        session = requests.Session()
        session.mount("http://fake/", WSGIAdapter(fake))
        chat = Chat(base_url="http://fake/v1", session=session, **kwargs)  # type: ignore[arg-type]
        chats.append(chat)
        return chat

    yield make
    for chat in chats:
        chat.stop()


@pytest.fixture
def fake_url(fake: FakeOpenAI) -> Iterator[str]:
    """`fake` served by werkzeug's threaded server on an ephemeral port."""
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/v1"
    server.shutdown()
    server.server_close()
