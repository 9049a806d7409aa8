"""`Chat`: a conversation with an OpenAI-compatible server that it either runs itself or connects to.

    with Chat("model.gguf", system_prompt="Be brief.") as chat:     # spawns python -m llamactypes.serve
        print(chat.chat("Why is the sky blue?", max_tokens=64))
        for piece in chat.stream("And at sunset?"):
            print(piece, end="", flush=True)

    chat = Chat(base_url="http://127.0.0.1:11434/v1")              # connects; spawns nothing

A `Chat` is one conversation: use one per thread (`ChatPool` hands them out).
"""

from __future__ import annotations

import enum
import json
import os
from typing import Any, Callable, Generator, Iterable, Iterator, TypeVar

import numpy as np
import requests

from ..errors import ClosedError, ServerError
from ._http import HTTPClient
from ._process import ServerProcess, spawn_server
from ._tools import Tool

__all__ = ["Chat"]

F = TypeVar("F", bound=Callable[..., Any])
Message = dict[str, Any]


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class Chat:
    """A chat session over the OpenAI API: spawn mode (``model_path``) or connect mode (``base_url``).

    Spawn mode runs ``python -m llamactypes.serve`` on a free port (or `port`), waits for
    ``/health`` (raising `ServerStartError` with the server's last log lines) and stops it on
    `stop()`, at the end of a ``with`` block, when the object is collected, at interpreter exit,
    and — through a stdin pipe the server watches — when this process dies. Extra keyword
    arguments become server flags (``threads=2`` → ``--threads 2``).

    `chat` and `stream` keep the history (`messages`, `system_prompt` first). Registered tools
    (`register_tool`) are called when the model asks for them and their results sent back,
    for at most `max_tool_rounds` rounds (a forcing ``tool_choice`` — ``"required"`` or a
    named function — applies to the first round; later rounds let the model answer). Sampling options (``max_tokens``, ``temperature``,
    ``top_p``, ``seed``, ``stop``, …) go per call, over the defaults in `options`.
    Server errors raise `ServerError` with the server's message.
    """

    max_tool_rounds = 8

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, base_url: str | None = None,
                 api_key: str | None = None, model: str | None = None, system_prompt: str | None = None,
                 port: int | None = None, n_ctx: int | None = None, timeout: float = 180.0,
                 session: requests.Session | None = None, **server_opts: Any) -> None:
        if (model_path is None) == (base_url is None):
            raise TypeError("give model_path (spawn a server) or base_url (connect), not both or neither")
        if base_url is not None and (port is not None or n_ctx is not None or server_opts):
            raise TypeError(f"server options have no effect in connect mode: "
                            f"{sorted(['port'] * (port is not None) + ['n_ctx'] * (n_ctx is not None) + list(server_opts))}")
        self.server: ServerProcess | None = None
        if model_path is not None:
            alias = server_opts.get("alias")
            self.server = spawn_server(model_path, port=port, n_ctx=n_ctx, timeout=timeout,
                                       api_key=api_key, **server_opts)
            base_url = self.server.url + "/v1"
            model = model or alias
        assert base_url is not None
        self._http = HTTPClient(base_url, api_key=api_key, session=session)
        if self.server is not None and session is None:
            self._http.session.trust_env = False  # our own loopback server: never through an HTTP proxy
        self._model = model
        self.system_prompt = system_prompt
        self.tools: dict[str, Tool] = {}
        self.options: dict[str, Any] = {}
        self.on_tool_call: Callable[[str, Any, str], None] | None = None
        self.last_response: dict[str, Any] | None = None
        self._messages: list[Message] = []
        self._state = _State.OPEN
        self.reset()

    @classmethod
    def connect(cls, base_url: str, **kwargs: Any) -> Chat:
        """Connect mode, spelled out: ``Chat.connect("http://127.0.0.1:11434/v1")``."""
        return cls(base_url=base_url, **kwargs)

    # ------------------------------------------------------------ state

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def model(self) -> str:
        """The model id sent with each request: given, or the first one `/v1/models` lists."""
        if self._model is None:
            models = self.models()
            self._model = models[0] if models else "default"
        return self._model

    @property
    def messages(self) -> list[Message]:
        """The conversation so far (a copy), system prompt first."""
        return [dict(m) for m in self._messages]

    def reset(self, system_prompt: str | None = None) -> None:
        """Forget the conversation (keeping the system prompt, or setting a new one)."""
        if system_prompt is not None:
            self.system_prompt = system_prompt
        self._messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def stop(self) -> None:
        """Close the connection and stop the spawned server, if any (idempotent)."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._http.close()
        if self.server is not None:
            self.server.stop()

    close = stop

    def __enter__(self) -> Chat:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        mode = f"spawned pid {self.server.pid}" if self.server is not None else "connected"
        return f"<Chat {self.base_url} {mode}{' closed' if self.closed else ''}>"

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ClosedError("this Chat is closed (stop() was called)")

    # ------------------------------------------------------------ server calls

    def health(self) -> bool:
        """True when ``GET /health`` answers 200."""
        self._check_open()
        try:
            self._http.request("GET", "/health", timeout=5)
        except ServerError:
            return False
        return True

    def models(self) -> list[str]:
        """The model ids the server lists at ``/v1/models``."""
        self._check_open()
        data = self._http.get_json("models")
        return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]

    def embed(self, texts: str | Iterable[str]) -> np.ndarray:
        """Embeddings from ``/v1/embeddings``: 1-D for one text, one row per text for several
        (float32, in the order given; L2-normalized as `Model.embed` returns them)."""
        self._check_open()
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        if not items:
            return np.zeros((0, 0), dtype=np.float32)
        body = self._http.post_json("embeddings", {"model": self.model, "input": items,
                                                   "encoding_format": "float"})
        rows = sorted(body.get("data", []), key=lambda d: d.get("index", 0))
        if len(rows) != len(items):
            raise ServerError(f"asked for {len(items)} embeddings, got {len(rows)}", body=body)
        out = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.where(norms == 0, 1.0, norms)
        return out[0] if single else out

    # ------------------------------------------------------------ tools

    def register_tool(self, fn: F | None = None, *, name: str | None = None,
                      description: str | None = None) -> Any:
        """Offer a Python function to the model as a tool (also usable as ``@chat.register_tool``).

        The JSON Schema comes from its type hints, the descriptions from its docstring.
        """
        def add(func: F) -> F:
            tool = Tool.from_function(func, name=name, description=description)
            self.tools[tool.name] = tool
            return func

        return add if fn is None else add(fn)

    # ------------------------------------------------------------ conversation

    def chat(self, message: str | Message, **options: Any) -> str:
        """Send `message`, run any tool calls, and return the model's final text answer."""
        turn = self._converse(message, options, stream=False)
        while True:
            try:
                next(turn)
            except StopIteration as done:
                return str(done.value)

    def stream(self, message: str | Message, **options: Any) -> Iterator[str]:
        """Send `message` and yield the answer's text as it is generated (tool calls run in between).

        Stopping early (``break``, ``close()``, Ctrl-C) closes the connection, which stops the
        generation on the server; what was received stays in the history.
        """
        self._check_open()  # now, not at the first next()
        return self._converse(message, options, stream=True)

    def _converse(self, message: str | Message, options: dict[str, Any],
                  stream: bool) -> Generator[str, None, str]:
        self._check_open()
        start = len(self._messages)
        self._messages.append({"role": "user", "content": message} if isinstance(message, str) else dict(message))
        tool_names = options.pop("tools", None)
        text = ""
        for round_no in range(self.max_tool_rounds + 1):
            body = self._body(options, tool_names, round_no)
            fold = _Fold()
            try:
                yield from self._round(body, fold, stream)
            except BaseException:  # an error, Ctrl-C, or the caller closing the stream
                self._interrupted(start, fold)
                raise
            self.last_response = fold.summary()
            reply = fold.message()
            text = reply.get("content") or ""
            calls = reply.get("tool_calls")
            if calls and round_no == self.max_tool_rounds:
                reply.pop("tool_calls")  # out of rounds: never leave calls without results
                calls = None
            self._messages.append(reply)
            if not calls:
                return text
            self._run_tools(calls)
        return text  # pragma: no cover - the last round never continues

    def _round(self, body: dict[str, Any], fold: _Fold, stream: bool) -> Iterator[str]:
        """One request: fold the answer into `fold`, yielding text pieces when streaming."""
        if not stream:
            fold.whole(self._http.post_json("chat/completions", body))
            return
        events = self._http.stream_json("chat/completions", body)
        try:
            for chunk in events:
                piece = fold.feed(chunk)
                if piece:
                    yield piece
        finally:
            events.close()  # closes the connection at once: the server stops generating

    def _body(self, options: dict[str, Any], tool_names: Any, round_no: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": self._messages}
        body.update({k: v for k, v in {**self.options, **options}.items() if v is not None})
        tools = [] if tool_names is False else [
            t.spec() for n, t in self.tools.items() if tool_names is None or n in tool_names]
        if tools:
            body["tools"] = tools
            if round_no == self.max_tool_rounds:
                body["tool_choice"] = "none"  # out of rounds: ask for text
            elif round_no > 0 and body.get("tool_choice") not in (None, "auto", "none"):
                body["tool_choice"] = "auto"  # a forced call ("required", a name) forces the first round only
        else:
            body.pop("tool_choice", None)
        return body

    def _interrupted(self, start: int, fold: _Fold) -> None:
        """Keep a partial answer; with nothing received, leave the history as it was before."""
        if fold.content:
            self._messages.append({"role": "assistant", "content": fold.content})
        elif len(self._messages) == start + 1:
            del self._messages[start:]

    def _run_tools(self, calls: list[dict[str, Any]]) -> None:
        for call in calls:
            function = call.get("function", {})
            name, arguments = function.get("name", ""), function.get("arguments", "")
            tool = self.tools.get(name)
            result = tool.invoke(arguments) if tool is not None else json.dumps(
                {"error": f"unknown tool {name!r}; available: {sorted(self.tools)}"})
            if self.on_tool_call is not None:
                self.on_tool_call(name, arguments, result)
            self._messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "name": name,
                                   "content": result})


class _Fold:
    """Folds streamed chunks (or one whole response) into the assistant message."""

    def __init__(self) -> None:
        self.content = ""
        self.reasoning = ""
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.id: str | None = None

    def feed(self, chunk: dict[str, Any]) -> str:
        """Take one ``chat.completion.chunk``; return its new text (maybe empty)."""
        self.id = self.id or chunk.get("id")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        piece = ""
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece += delta.get("content") or ""
            self.reasoning += delta.get("reasoning_content") or ""
            for i, part in enumerate(delta.get("tool_calls") or []):
                self._call_delta(part.get("index", i), part)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        self.content += piece
        return piece

    def _call_delta(self, index: int, part: dict[str, Any]) -> None:
        call = self.calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        call["id"] = call["id"] or part.get("id") or ""
        function = part.get("function") or {}
        name = function.get("name")
        if name and name != call["function"]["name"]:
            call["function"]["name"] += name
        call["function"]["arguments"] += function.get("arguments") or ""

    def whole(self, response: dict[str, Any]) -> None:
        """Take a non-stream ``chat.completion``."""
        self.id = response.get("id")
        self.usage = response.get("usage")
        choices = response.get("choices") or []
        if not choices:
            raise ServerError("the server answered without choices", body=response)
        message = choices[0].get("message") or {}
        self.finish_reason = choices[0].get("finish_reason")
        self.content = message.get("content") or ""
        self.reasoning = message.get("reasoning_content") or ""
        for i, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            arguments = function.get("arguments", "")
            self.calls[i] = {"id": call.get("id") or "", "type": "function", "function": {
                "name": function.get("name", ""),
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}

    def message(self) -> Message:
        """The assistant message for the history (tool calls given ids when the server sent none)."""
        reply: Message = {"role": "assistant", "content": self.content if self.content or not self.calls else None}
        if self.calls:
            calls = [self.calls[i] for i in sorted(self.calls)]
            for n, call in enumerate(calls):
                call["id"] = call["id"] or f"call_{self.id or 'local'}_{n}"
            reply["tool_calls"] = calls
        return reply

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "message": self.message(), "finish_reason": self.finish_reason,
                "usage": self.usage, "reasoning_content": self.reasoning or None}
