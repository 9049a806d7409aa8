"""The client: `Chat` talks to an OpenAI-compatible server that it spawns or connects to.

Layer 9: imports only the errors and the standard library, `requests` and `numpy` —
never the server, engine or model, so a client-only user needs nothing native.

    Chat            a conversation (spawn: ``Chat("model.gguf")``, connect: ``Chat(base_url=...)``)
    ChatPool        one Chat per server for parallel workers
    Tool            a Python function as an OpenAI tool (schema from hints and docstring)
    ServerProcess   a server child process tied to a Python object's lifetime
    WSGIAdapter     run a WSGI app in process behind a `requests.Session`
    SSEDecoder      incremental server-sent-events parser
"""

from __future__ import annotations

from ._chat import Chat
from ._http import HTTPClient, normalize_base_url
from ._pool import ChatPool, threads_per_server
from ._process import ServerProcess, exit_on_stdin_eof, free_port, serve_command, spawn_server
from ._sse import ServerSentEvent, SSEDecoder, iter_sse
from ._tools import Tool, parse_docstring, type_schema
from ._wsgi import WSGIAdapter

__all__ = [
    "Chat", "ChatPool", "Tool", "ServerProcess", "WSGIAdapter",
    "SSEDecoder", "ServerSentEvent", "iter_sse",
    "HTTPClient", "normalize_base_url",
    "spawn_server", "serve_command", "free_port", "exit_on_stdin_eof", "threads_per_server",
    "type_schema", "parse_docstring",
]
