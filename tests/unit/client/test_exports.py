"""The client package's public names are exactly the intended ones."""

from __future__ import annotations

import llamactypes.client as client

EXPECTED = {
    "Chat", "ChatPool", "Tool", "ServerProcess", "WSGIAdapter",
    "SSEDecoder", "ServerSentEvent", "iter_sse",
    "HTTPClient", "normalize_base_url",
    "spawn_server", "serve_command", "free_port", "exit_on_stdin_eof", "threads_per_server",
    "type_schema", "parse_docstring",
}


def test_client_exports() -> None:
    assert set(client.__all__) == EXPECTED and len(client.__all__) == len(EXPECTED)
    assert all(getattr(client, name) is not None for name in client.__all__)
