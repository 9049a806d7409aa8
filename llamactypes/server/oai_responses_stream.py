"""Engine events -> the Responses API's event sequence and response object (pure, no HTTP).

`ResponseStream` turns one job's events into the real API's events, each with a
`sequence_number`:

    response.created  response.in_progress (again on every heartbeat: Codex's idle timer counts events)
    per output item, in order:
      message:          output_item.added  content_part.added  output_text.delta*  output_text.done
                        content_part.done  output_item.done
      reasoning:        output_item.added  content_part.added(reasoning_text)  reasoning_text.delta*
                        reasoning_text.done  content_part.done  output_item.done
      function_call:    output_item.added  function_call_arguments.delta*  .done  output_item.done
      custom_tool_call: output_item.added  custom_tool_call_input.delta*  .done  output_item.done
    response.completed (response.incomplete when max_output_tokens cut it; response.failed on an error)

The final event carries the whole response object, so a non-stream answer is the
same fold of the same events (`fold_response`): stream and non-stream agree by construction.
A custom tool's input arrives from the model as JSON arguments `{"input": "..."}`;
its string is decoded as it streams (`_InputDecoder`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from ..chat.types import Delta
from ..engine.types import Finished, Heartbeat, Started, Usage
from .oai_responses import ResponsesCall, ToolInfo, input_messages, new_response_id, now

__all__ = ["ResponseStream", "fold_response", "usage_object", "stored_conversation"]

_INPUT_START = re.compile(r'\s*\{\s*"input"\s*:\s*"')


def usage_object(usage: Usage) -> dict[str, Any]:
    """The Responses API's `usage` (cached input tokens: prompt tokens reused from the KV cache)."""
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens}


class _InputDecoder:
    """Decodes the `input` string of `{"input": "..."}` arguments as they grow."""

    def __init__(self) -> None:
        self.raw = ""
        self.emitted = 0

    def feed(self, piece: str) -> str:
        """New decoded text since the last call ('' when nothing complete arrived)."""
        self.raw += piece
        match = _INPUT_START.match(self.raw)
        if not match:
            return ""
        body, i, end = self.raw[match.end():], 0, None
        while i < len(body):
            if body[i] == "\\":
                need = 6 if body[i + 1:i + 2] == "u" else 2
                if i + need > len(body):
                    break
                i += need
                continue
            if body[i] == '"':
                end = i
                break
            i += 1
        try:
            text = json.loads('"' + body[:i if end is None else end] + '"')
        except ValueError:
            return ""
        new = text[self.emitted:]
        self.emitted = len(text)
        return new

    def final(self, streamed: str) -> str:
        """The whole input: the decoded string; what was decoded so far when the arguments were cut
        (max_output_tokens); the raw arguments when they are not `{"input": "..."}` at all."""
        try:
            value = json.loads(self.raw)
        except ValueError:
            return streamed if _INPUT_START.match(self.raw) else self.raw
        if isinstance(value, dict) and isinstance(value.get("input"), str):
            return value["input"]
        return self.raw


class ResponseStream:
    """One response's events (see the module docstring); `response` is the object so far."""

    def __init__(self, call: ResponsesCall, *, id: str, model: str, created_at: int | None = None) -> None:
        self.call = call
        self.id = id
        self.model = model
        self.created_at = created_at if created_at is not None else now()
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.status = "in_progress"
        self.usage: Usage | None = None
        self.error: dict[str, Any] | None = None
        self.incomplete: dict[str, Any] | None = None
        self._open: dict[str, Any] | None = None     # the item being streamed
        self._kind = ""                               # its delta kind ("content", "reasoning", "tool_call")
        self._index: int | None = None                # its tool-call index
        self._decoder: _InputDecoder | None = None

    # ------------------------------------------------------------ objects

    def response(self) -> dict[str, Any]:
        echo = self.call.echo
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": self.status,
            "completed_at": now() if self.status == "completed" else None,
            "error": self.error, "incomplete_details": self.incomplete,
            "instructions": echo.get("instructions"), "max_output_tokens": echo.get("max_output_tokens"),
            "model": self.model, "output": [dict(item) for item in self.output],
            "parallel_tool_calls": echo.get("parallel_tool_calls", True),
            "previous_response_id": echo.get("previous_response_id"), "reasoning": echo.get("reasoning"),
            "store": self.call.store, "temperature": echo.get("temperature"), "text": echo.get("text"),
            "tool_choice": echo.get("tool_choice", "auto"), "tools": echo.get("tools", []),
            "top_p": echo.get("top_p"), "truncation": "disabled", "metadata": echo.get("metadata", {}),
            "usage": usage_object(self.usage) if self.usage else None, "user": None,
        }

    def _event(self, kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        data = {"type": kind, **fields, "sequence_number": self.seq}
        self.seq += 1
        return kind, data

    # ------------------------------------------------------------ lifecycle

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        return [self._event("response.created", response=self.response()),
                self._event("response.in_progress", response=self.response())]

    def progress(self) -> list[tuple[str, dict[str, Any]]]:
        """A real event while waiting or reading a long prompt (SSE comments may not count as activity)."""
        return [self._event("response.in_progress", response=self.response())]

    def finish(self, finished: Finished) -> list[tuple[str, dict[str, Any]]]:
        self.usage = finished.usage
        if finished.reason == "length":
            self.status, self.incomplete = "incomplete", {"reason": "max_output_tokens"}
        else:
            self.status = "completed"
        out = self._close()
        kind = "response.incomplete" if self.status == "incomplete" else "response.completed"
        return out + [self._event(kind, response=self.response())]

    def fail(self, code: str, message: str) -> list[tuple[str, dict[str, Any]]]:
        """`response.failed` with `response.error` (Codex reads `error.code`, e.g. context_length_exceeded)."""
        out = self._close() if self._open is not None else []
        self.status, self.error = "failed", {"code": code, "message": message}
        return out + [self._event("response.failed", response=self.response())]

    # ------------------------------------------------------------ items

    def delta(self, delta: Delta) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        if delta.kind == "tool_call":
            if self._open is None or self._kind != "tool_call" or (delta.index or 0) != self._index:
                out += self._close()
                out += self._open_call(delta)
            return out + self._call_delta(delta.arguments)
        if not delta.text:
            return out
        if self._open is None or self._kind != delta.kind:
            out += self._close()
            out += self._open_text(delta.kind)
        part = self._open["content"][0]
        part["text"] += delta.text
        name = "response.output_text.delta" if delta.kind == "content" else "response.reasoning_text.delta"
        extra = {"logprobs": []} if delta.kind == "content" else {}
        return out + [self._event(name, item_id=self._open["id"], output_index=len(self.output) - 1,
                                  content_index=0, delta=delta.text, **extra)]

    def _added(self, item: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
        self._open, self._kind = item, kind
        self.output.append(item)
        return [self._event("response.output_item.added", output_index=len(self.output) - 1, item=dict(item))]

    def _open_text(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        if kind == "content":
            item = {"id": new_response_id("msg_"), "type": "message", "role": "assistant", "status": "in_progress",
                    "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        else:
            item = {"id": new_response_id("rs_"), "type": "reasoning", "summary": [], "content": [],
                    "status": "in_progress"}
            part = {"type": "reasoning_text", "text": ""}
        out = self._added(item, kind)
        item["content"] = [part]
        return out + [self._event("response.content_part.added", item_id=item["id"], output_index=len(self.output) - 1,
                                  content_index=0, part=dict(part))]

    def _open_call(self, delta: Delta) -> list[tuple[str, dict[str, Any]]]:
        info = self.call.tools.get(delta.name or "", ToolInfo(delta.name or ""))
        call_id = delta.id or new_response_id("call_")
        suffix = call_id[5:] if call_id.startswith("call_") else call_id
        self._index = delta.index or 0
        if info.custom:
            item = {"id": "ctc_" + suffix, "type": "custom_tool_call", "status": "in_progress",
                    "call_id": call_id, "name": info.name, "input": ""}
            self._decoder = _InputDecoder()
        else:
            item = {"id": "fc_" + suffix, "type": "function_call", "status": "in_progress",
                    "call_id": call_id, "name": info.name, "arguments": ""}
            self._decoder = None
        if info.namespace:
            item["namespace"] = info.namespace
        return self._added(item, "tool_call")

    def _call_delta(self, piece: str) -> list[tuple[str, dict[str, Any]]]:
        item = self._open
        assert item is not None
        if not piece:
            return []
        where = dict(item_id=item["id"], output_index=len(self.output) - 1)
        if self._decoder is None:
            item["arguments"] += piece
            return [self._event("response.function_call_arguments.delta", delta=piece, **where)]
        text = self._decoder.feed(piece)
        if not text:
            return []
        item["input"] += text
        return [self._event("response.custom_tool_call_input.delta", delta=text, **where)]

    def _close(self) -> list[tuple[str, dict[str, Any]]]:
        """The `.done` events of the open item."""
        item = self._open
        if item is None:
            return []
        self._open = None
        status = "incomplete" if self.status == "incomplete" else "completed"
        index = len(self.output) - 1
        where = dict(item_id=item["id"], output_index=index)
        out: list[tuple[str, dict[str, Any]]] = []
        if item["type"] in ("message", "reasoning"):
            part = item["content"][0]
            name = "response.output_text.done" if item["type"] == "message" else "response.reasoning_text.done"
            extra = {"logprobs": []} if item["type"] == "message" else {}
            out.append(self._event(name, content_index=0, text=part["text"], **where, **extra))
            out.append(self._event("response.content_part.done", content_index=0, part=dict(part), **where))
        elif item["type"] == "function_call":
            out.append(self._event("response.function_call_arguments.done", arguments=item["arguments"],
                                   name=item["name"], **where))
        else:
            decoder = self._decoder
            assert decoder is not None
            final = decoder.final(item["input"])
            if final.startswith(item["input"]) and len(final) > len(item["input"]):
                rest = final[len(item["input"]):]
                out.append(self._event("response.custom_tool_call_input.delta", delta=rest, **where))
            item["input"] = final
            out.append(self._event("response.custom_tool_call_input.done", input=final, **where))
        item["status"] = status
        out.append(self._event("response.output_item.done", output_index=index, item=dict(item)))
        return out

    def feed(self, event: Any) -> list[tuple[str, dict[str, Any]]]:
        """The events for one engine event (Heartbeat -> in_progress, Started -> nothing)."""
        if isinstance(event, Heartbeat):
            return self.progress()
        if isinstance(event, Delta):
            return self.delta(event)
        if isinstance(event, Finished):
            return self.finish(event)
        if isinstance(event, Started):
            return []
        return []


def fold_response(stream: ResponseStream, events: Iterable[Any]) -> dict[str, Any]:
    """The whole response object for a finished job's events (the non-stream answer)."""
    stream.start()
    for event in events:
        if not isinstance(event, Heartbeat):
            stream.feed(event)
    return stream.response()


def stored_conversation(call: ResponsesCall, response: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation a later `previous_response_id` continues: this request's messages
    (without its instructions, which the API does not carry over) and the output as messages."""
    return [*call.conversation, *input_messages(response["output"])]
