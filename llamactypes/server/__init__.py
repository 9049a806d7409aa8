"""The HTTP servers: OpenAI and Anthropic APIs on one engine, as one WSGI app.

    from llamactypes.server import create_app, ServerConfig, ServerThread
    app = create_app(engine, ServerConfig(api_key="secret"))
    with ServerThread(app) as server:          # or any WSGI server
        print(server.url)

`openai` and `anthropic` are pure translation modules (wire dict <-> engine
types), `sse` encodes and decodes event streams, `errors` maps exceptions to
statuses and each API's error body, `body` checks a request body, `origin` holds the Host and
CORS policy (`ServerConfig(origin=OriginPolicy.build("127.0.0.1", cors_origins=[...]))`).
"""

from __future__ import annotations

from .app import App, ServerConfig, create_app
from .http import ServerThread, make_http_server
from .origin import OriginPolicy
from .router import ModelRouter, UnknownModelError, discover_models

__all__ = ["App", "ServerConfig", "create_app", "ServerThread", "make_http_server", "OriginPolicy",
           "ModelRouter", "UnknownModelError", "discover_models"]
