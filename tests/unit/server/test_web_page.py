"""The chat page at `/`: browsers get HTML, every other client the JSON it had before; the page's
files are package data served with a strict Content-Security-Policy and reference no external URL."""

from __future__ import annotations

import re
from typing import Iterator

import pytest
from werkzeug.test import Client

from llamactypes import web
from llamactypes.engine import Engine
from llamactypes.server import ServerConfig, create_app

from .fakes import FakeModel

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.fixture
def engine() -> Iterator[Engine]:
    with Engine(FakeModel(), max_waiting=1) as engine:
        yield engine


@pytest.mark.parametrize("accept, page", [
    (BROWSER, True),
    ("text/html", True),
    ("*/*", False),  # curl
    ("application/json", False),
    ("application/json, text/html", False),
    (None, False),
])
def test_root_negotiates_on_accept(engine: Engine, accept: str | None, page: bool) -> None:
    client = Client(create_app(engine, ServerConfig(api_key="k")))  # the page itself needs no key
    response = client.get("/", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    assert "Accept" in response.headers.get("Vary", "")
    if page:
        assert response.mimetype == "text/html"
        assert b'<script src="/web/app.js"' in response.data
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    else:
        assert response.json["model"] == "fake-model" and "/v1/chat/completions" in response.json["endpoints"]


def test_head_root_stays_json_for_claude_code(engine: Engine) -> None:
    response = Client(create_app(engine)).head("/", headers={"Accept": BROWSER})
    assert response.status_code == 200 and response.mimetype == "application/json" and response.data == b""


def test_page_files_are_served_and_nothing_else(engine: Engine) -> None:
    client = Client(create_app(engine, ServerConfig(api_key="k")))
    for name, content_type in web.ASSETS.items():
        response = client.get(f"/web/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == content_type
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.data == web.asset(name) and len(response.data) > 100
    for bad in ("LICENSE.marked", "__init__.py", "..%2F__init__.py", "nope.js"):
        assert client.get(f"/web/{bad}").status_code == 404, bad


def test_page_loads_nothing_from_elsewhere() -> None:
    html = web.asset("index.html").decode()
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith("/web/") and ref[5:] in web.ASSETS, ref
    own = web.asset("app.js").decode()
    assert "http://" not in own and "https://" not in own
    assert '"Content-Type": "application/json"' in own  # the server's content-type check
    assert "innerHTML = out.html" in own and "DOMPurify.sanitize" in own  # model output is sanitized
    for vendored in ("marked.umd.js", "purify.min.js"):
        assert b"sourceMappingURL" not in web.asset(vendored)
