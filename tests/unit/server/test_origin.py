"""Issue 10, origin safety: what a web page can and cannot make the server do (WSGI app, fake model)."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from werkzeug.test import Client

from llamactypes.engine import Engine
from llamactypes.server import ServerConfig, create_app
from llamactypes.server.origin import OriginPolicy, is_json_content_type, is_loopback_bind, split_host

from .fakes import FakeModel

HI = [{"role": "user", "content": "Hi"}]
EVIL = "http://evil.example"


@pytest.fixture
def engine(model: FakeModel) -> Iterator[Engine]:
    with Engine(model) as engine:
        yield engine


def make_client(engine: Engine, **origin: object) -> Client:
    policy = OriginPolicy.build(**{"bind_host": "127.0.0.1", **origin})  # type: ignore[arg-type]
    return Client(create_app(engine, ServerConfig(origin=policy)))


def test_a_text_plain_cross_origin_post_is_refused_and_not_served(engine: Engine, model: FakeModel) -> None:
    """The request a page can send without a preflight (a "simple" request) never reaches the model."""
    client = make_client(engine)
    response = client.post("/v1/chat/completions", data=json.dumps({"messages": HI}), content_type="text/plain",
                           headers={"Origin": EVIL, "Host": "127.0.0.1:11434"})
    assert response.status_code == 403 and "--cors" in response.json["error"]["message"]
    assert "Access-Control-Allow-Origin" not in response.headers
    # even without an Origin header (a proxy may strip it), text/plain is not JSON: 415
    response = client.post("/v1/chat/completions", data=json.dumps({"messages": HI}), content_type="text/plain")
    assert response.status_code == 415
    assert model.prompts == []


@pytest.mark.parametrize("host", ["evil.example", "evil.example:11434", "attacker.localhost.evil.example",
                                  "10.1.2.3:11434", "[2001:db8::1]:11434"])
def test_a_foreign_host_is_refused_on_every_route(engine: Engine, host: str) -> None:
    """DNS rebinding: the page's own name resolves to 127.0.0.1, its requests carry that name as Host."""
    client = make_client(engine)
    for method, path in (("GET", "/v1/models"), ("GET", "/health"), ("POST", "/v1/chat/completions")):
        response = client.open(path, method=method, json={"messages": HI}, headers={"Host": host})
        assert response.status_code == 403, (path, host)
        assert "--allowed-hosts" in response.json["error"]["message"]
    response = client.post("/v1/messages", json={"max_tokens": 5, "messages": HI},
                           headers={"Host": host, "anthropic-version": "2023-06-01"})
    assert response.status_code == 403 and response.json["error"]["type"] == "permission_error"


@pytest.mark.parametrize("host", ["127.0.0.1:11434", "localhost:11434", "localhost", "[::1]:11434",
                                  "app.localhost:8080", "LOCALHOST:1", "127.0.0.2"])
def test_local_names_and_the_bound_address_are_accepted(engine: Engine, host: str) -> None:
    assert make_client(engine).get("/v1/models", headers={"Host": host}).status_code == 200


def test_allowed_hosts_widens_the_list(engine: Engine) -> None:
    client = make_client(engine, allowed_hosts=["box.example", ".lan"])
    for host, status in (("box.example:11434", 200), ("a.b.lan", 200), ("lan", 200), ("evil.example", 403)):
        assert client.get("/v1/models", headers={"Host": host}).status_code == status, host
    assert make_client(engine, allowed_hosts=["*"]).get("/v1/models", headers={"Host": "x.y"}).status_code == 200


def test_a_wildcard_bind_accepts_ip_literals_but_not_names() -> None:
    policy = OriginPolicy.build("0.0.0.0")
    assert policy.host_allowed("192.168.1.5:11434") and policy.host_allowed("[fe80::1]:1")
    assert not policy.host_allowed("evil.example:11434")
    assert OriginPolicy.build("192.168.1.5").host_allowed("192.168.1.5:11434")
    assert not OriginPolicy.build("192.168.1.5").host_allowed("192.168.1.6:11434")


def test_a_preflight_from_a_foreign_origin_is_refused(engine: Engine) -> None:
    response = make_client(engine).options("/v1/chat/completions", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_lets_one_origin_in_with_correct_preflight_answers(engine: Engine, model: FakeModel) -> None:
    app_origin = "http://localhost:3000"
    client = make_client(engine, cors_origins=[app_origin + "/"])
    response = client.options("/v1/chat/completions", headers={
        "Origin": app_origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert response.status_code == 204 and response.get_data() == b""
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == app_origin and headers["Vary"] == "Origin"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "content-type, authorization"
    assert int(headers["Access-Control-Max-Age"]) > 0
    response = client.post("/v1/chat/completions", json={"messages": HI}, headers={"Origin": app_origin})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == app_origin
    stream = client.post("/v1/chat/completions", json={"messages": HI, "stream": True},
                         headers={"Origin": app_origin})
    assert stream.headers["Access-Control-Allow-Origin"] == app_origin  # streams carry it too
    error = client.post("/v1/chat/completions", json={}, headers={"Origin": app_origin})
    assert error.status_code == 400 and error.headers["Access-Control-Allow-Origin"] == app_origin
    assert client.post("/v1/chat/completions", json={"messages": HI}, headers={"Origin": EVIL}).status_code == 403


def test_same_origin_pages_and_non_browser_clients_are_unaffected(engine: Engine) -> None:
    client = make_client(engine)
    same = client.post("/v1/chat/completions", json={"messages": HI},
                       headers={"Origin": "http://127.0.0.1:11434", "Host": "127.0.0.1:11434"})
    assert same.status_code == 200
    assert client.post("/v1/chat/completions", json={"messages": HI}).status_code == 200  # no Origin: curl, SDKs
    other_port = client.post("/v1/chat/completions", json={"messages": HI},
                             headers={"Origin": "http://127.0.0.1:8000", "Host": "127.0.0.1:11434"})
    assert other_port.status_code == 403  # another port is another origin
    assert client.post("/v1/chat/completions", json={"messages": HI},
                       headers={"Origin": "null"}).status_code == 403  # sandboxed frames, file:// pages


def test_helpers() -> None:
    assert split_host("[::1]:8080") == ("::1", "8080") and split_host("Example.COM") == ("example.com", "")
    assert split_host("::1") == ("::1", "")
    assert is_json_content_type("application/json; charset=utf-8") and is_json_content_type("application/vnd+json")
    assert not is_json_content_type("text/plain") and not is_json_content_type(None)
    assert is_loopback_bind("127.0.0.1") and is_loopback_bind("localhost") and is_loopback_bind("::1")
    assert not is_loopback_bind("0.0.0.0") and not is_loopback_bind("192.168.1.2") and not is_loopback_bind("")
