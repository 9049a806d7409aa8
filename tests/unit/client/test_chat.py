"""`Chat` against the scripted fake server: history, streaming, tools, embeddings, errors."""

from __future__ import annotations

import json
import threading
import time
from typing import Callable

import numpy as np
import pytest
import requests

from llamactypes import ClosedError, ServerError
from llamactypes.client import Chat, WSGIAdapter
from tests.fixtures.fake_openai import FakeOpenAI, embedding, error, text, tool_calls

MakeChat = Callable[..., Chat]


def test_chat_keeps_history_and_sends_options(fake: FakeOpenAI, make_chat: MakeChat) -> None:
    chat = make_chat(system_prompt="Be brief.")
    fake.add(text("Blue light scatters more."))
    assert chat.chat("Why is the sky blue?", temperature=0.2, max_tokens=16, seed=None) == "Blue light scatters more."
    assert chat.chat("Thanks") == "you said: Thanks"
    assert chat.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "Blue light scatters more."},
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": "you said: Thanks"},
    ]
    first = fake.requests[0]
    assert first["model"] == "fake-model" and first["temperature"] == 0.2 and first["max_tokens"] == 16
    assert "seed" not in first and "tools" not in first and "stream" not in first
    assert len(fake.requests[1]["messages"]) == 4  # the whole history is resent
    chat.reset()
    assert chat.messages == [{"role": "system", "content": "Be brief."}]


@pytest.mark.parametrize("piece_size, crlf", [(None, False), (1, True), (7, False), (3, True)])
def test_stream_across_chunk_boundaries(fake: FakeOpenAI, make_chat: MakeChat, piece_size: int | None,
                                        crlf: bool) -> None:
    fake.piece_size, fake.crlf = piece_size, crlf
    chat = make_chat()
    fake.add(text("héllo wörld 🦙 and more"))
    pieces = list(chat.stream("hi", stream_options={"include_usage": True}))
    assert "".join(pieces) == "héllo wörld 🦙 and more"
    assert len(pieces) == 5
    assert chat.messages[-1] == {"role": "assistant", "content": "héllo wörld 🦙 and more"}
    assert chat.last_response is not None and chat.last_response["finish_reason"] == "stop"
    assert chat.last_response["usage"]["total_tokens"] == 8
    assert fake.requests[0]["stream"] is True


def test_stream_over_a_real_socket(fake: FakeOpenAI, fake_url: str) -> None:
    fake.piece_size = 5
    fake.add(text("one two three"))
    with Chat(base_url=fake_url) as chat:
        assert list(chat.stream("x")) == ["one ", "two ", "three"]
        assert chat.chat("again") == "you said: again"
        assert chat.health() and chat.models() == ["fake-model"]


def test_pieces_arrive_while_the_server_is_still_generating(fake: FakeOpenAI, fake_url: str) -> None:
    gate = threading.Event()
    sent = []

    def slow() -> None:
        sent.append(time.monotonic())
        if len(sent) == 4:  # after the role chunk, keep-alive and first word: wait for the client
            assert gate.wait(10)

    fake.on_piece = slow
    fake.add(text("first second"))
    with Chat(base_url=fake_url) as chat:
        stream = chat.stream("x")
        assert next(stream) == "first "  # delivered before the server sends the rest
        gate.set()
        assert list(stream) == ["second"]


def _add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: first.
        b: second.
    """
    return a + b


@pytest.mark.parametrize("streaming", [False, True])
def test_tool_round_trip(fake: FakeOpenAI, make_chat: MakeChat, streaming: bool) -> None:
    fake.piece_size = 2 if streaming else None
    chat = make_chat()
    chat.register_tool(_add)
    seen = []
    chat.on_tool_call = lambda name, args, result: seen.append((name, result))
    fake.add(tool_calls(("_add", '{"a": 2, "b": 40}'), ("_add", '{"a": 1, "b": 1}'), content="Let me add."),
             text("The sum is 42."))
    ask = chat.stream if streaming else chat.chat
    reply = "".join(ask("2+40?", tool_choice="required")) if streaming else ask("2+40?", tool_choice="required")
    assert reply == ("Let me add.The sum is 42." if streaming else "The sum is 42.")
    assert seen == [("_add", "42"), ("_add", "2")]
    assert [r["tool_choice"] for r in fake.requests] == ["required", "auto"]  # forced once, then free
    tools = fake.requests[0]["tools"]
    assert tools[0]["function"]["name"] == "_add"
    assert tools[0]["function"]["parameters"]["required"] == ["a", "b"]
    second = fake.requests[1]["messages"]
    assert second[-3] == {"role": "assistant", "content": "Let me add.", "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "_add", "arguments": '{"a": 2, "b": 40}'}},
        {"id": "call_1", "type": "function", "function": {"name": "_add", "arguments": '{"a": 1, "b": 1}'}}]}
    assert second[-2] == {"role": "tool", "tool_call_id": "call_0", "name": "_add", "content": "42"}
    assert second[-1]["tool_call_id"] == "call_1"
    assert chat.messages[-1] == {"role": "assistant", "content": "The sum is 42."}


def test_tool_errors_go_back_to_the_model_and_rounds_are_bounded(fake: FakeOpenAI, make_chat: MakeChat) -> None:
    chat = make_chat()

    @chat.register_tool
    def explode(reason: str) -> str:
        """Always fails."""
        raise RuntimeError(reason)

    chat.max_tool_rounds = 2
    fake.add(tool_calls(("explode", '{"reason": "boom"}')), tool_calls(("nope", "{}")),
             tool_calls(("explode", '{"reason": "again"}'), content="I give up."))
    assert chat.chat("go") == "I give up."
    results = [m["content"] for m in chat.messages if m["role"] == "tool"]
    assert json.loads(results[0]) == {"error": "RuntimeError: boom"}
    assert "unknown tool 'nope'" in json.loads(results[1])["error"]
    assert fake.requests[-1]["tool_choice"] == "none"  # the last round asks for text
    assert "tool_calls" not in chat.messages[-1]  # never a call without a result in the history
    assert "tools" not in make_chat().chat("x", tools=False) and "tools" not in fake.requests[-1]


def test_server_errors_carry_the_message_and_leave_history_unchanged(fake: FakeOpenAI,
                                                                     make_chat: MakeChat) -> None:
    chat = make_chat(system_prompt="s")
    fake.add(error(400, "the prompt has 9000 tokens but the context holds 8192"))
    with pytest.raises(ServerError, match="9000 tokens") as info:
        chat.chat("long")
    assert info.value.status == 400 and info.value.body["error"]["type"] == "invalid_request_error"
    assert isinstance(info.value, ConnectionError)
    fake.add(error(503, "busy"))
    with pytest.raises(ServerError, match="busy"):
        list(chat.stream("x"))
    assert chat.messages == [{"role": "system", "content": "s"}]


def _session_for(app: object) -> requests.Session:
    session = requests.Session()
    session.mount("http://x/", WSGIAdapter(app))  # type: ignore[arg-type]
    return session


def test_an_error_inside_a_stream_raises() -> None:
    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b'data: {"choices": [{"index": 0, "delta": {"content": "par"}}]}\n\n'
        yield b'data: {"error": {"message": "decode failed", "type": "server_error"}}\n\n'

    chat = Chat(base_url="http://x/v1", session=_session_for(app), model="m")
    got = []
    with pytest.raises(ServerError, match="decode failed"):
        for piece in chat.stream("hi"):
            got.append(piece)
    assert got == ["par"]
    assert chat.messages[-1] == {"role": "assistant", "content": "par"}  # partial answer kept


def test_closing_a_stream_early_hangs_up_and_keeps_the_partial_reply(fake: FakeOpenAI, make_chat: MakeChat) -> None:
    chat = make_chat()
    fake.add(text("a b c d e f"))
    stream = chat.stream("x")
    assert next(stream) == "a "
    stream.close()
    assert fake.closed_streams == 1
    assert chat.messages[-1] == {"role": "assistant", "content": "a "}
    assert chat.chat("next") == "you said: next"  # the connection is usable again


def test_stream_truncated_before_done_raises() -> None:
    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return [b'data: {"choices": [{"index": 0, "delta": {"content": "x"}}]}\n\n']

    with pytest.raises(ServerError, match="before data: \\[DONE\\]"):
        list(Chat(base_url="http://x/v1", session=_session_for(app), model="m").stream("hi"))


def test_embed(fake: FakeOpenAI, make_chat: MakeChat) -> None:
    chat = make_chat()
    vectors = chat.embed(["a cat", "a kitten", "tax law"])
    assert vectors.shape == (3, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    expected = np.asarray(embedding("tax law"))
    assert np.allclose(vectors[2], expected / np.linalg.norm(expected))  # order restored by index
    assert chat.embed("one").shape == (16,)
    assert fake.requests[0]["input"] == ["a cat", "a kitten", "tax law"]


def test_api_key_and_unreachable_server(fake: FakeOpenAI, make_chat: MakeChat) -> None:
    fake.api_key = "sekret"
    with pytest.raises(ServerError, match="invalid api key") as info:
        make_chat(model="m").chat("x")
    assert info.value.status == 401
    assert make_chat(api_key="sekret").chat("x") == "you said: x"
    with pytest.raises(ServerError, match="cannot reach"):
        Chat(base_url="http://127.0.0.1:9", model="m").chat("x")


def test_constructor_modes_and_closed_state(make_chat: MakeChat) -> None:
    with pytest.raises(TypeError, match="not both or neither"):
        Chat()
    with pytest.raises(TypeError, match="not both or neither"):
        Chat("m.gguf", base_url="http://x")
    with pytest.raises(TypeError, match="connect mode"):
        Chat(base_url="http://x", n_ctx=512)
    assert Chat.connect("127.0.0.1:11434").base_url == "http://127.0.0.1:11434/v1"
    chat = make_chat()
    with chat:
        assert chat.chat("x") == "you said: x"
    assert chat.closed
    chat.stop()  # idempotent
    with pytest.raises(ClosedError):
        chat.chat("again")
    with pytest.raises(ClosedError):
        chat.stream("again")
