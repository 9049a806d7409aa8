#!/usr/bin/env python3
"""Serve a model with the OpenAI (and Anthropic) API from your own Python code, then talk to it.

    python examples/serve_openai.py                      # the demo model, port 11434, until Ctrl-C
    python examples/serve_openai.py model.gguf --port 8080
    python examples/serve_openai.py --ask "Why is the sky blue?"   # start, ask once with the openai SDK, stop

`python -m llamactypes.serve` does the same from the command line; this shows the pieces:
`Model` (the weights), `Engine` (one generation at a time, a queue in front), `create_app`
(a plain WSGI app: run it on any WSGI server) and `ServerThread` (werkzeug's threaded server
in a background thread, every token flushed as it is produced).
"""

from __future__ import annotations

import argparse
import sys
import time

from llamactypes import Model
from llamactypes.engine import Engine
from llamactypes.paths import demo_model_path
from llamactypes.server import ServerConfig, ServerThread, create_app


def ask(base_url: str, question: str) -> None:
    """One streamed chat completion with the official `openai` client (pip install openai)."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="unused")
    stream = client.chat.completions.create(model="local", messages=[{"role": "user", "content": question}],
                                            max_tokens=128, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None, help="a .gguf file (default: the demo model)")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--ask", default=None, help="ask this once through the server, then stop")
    args = parser.parse_args()
    path = args.model or demo_model_path()
    with Model(path, n_ctx=args.n_ctx) as model, Engine(model) as engine:
        app = create_app(engine, ServerConfig(api_key=args.api_key))
        with ServerThread(app, port=0 if args.ask else args.port) as server:
            print(f"serving {engine.model_id} at {server.url}/v1 (Anthropic: {server.url})", flush=True)
            if args.ask:
                ask(server.url + "/v1", args.ask)
                return 0
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                print("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
