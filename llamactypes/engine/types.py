"""The values that cross the engine boundary: requests in, events and results out.

Both wire APIs (OpenAI, Anthropic) translate their JSON into a `ChatRequest` or
`CompletionRequest`, hand it to the `Engine`, and translate the events back.
An event stream always has the same shape:

    Heartbeat*  Started  (Delta | Heartbeat)*  Finished

`Heartbeat` comes whenever nothing else happened for a while (waiting in the
queue, or a long prompt being processed), so a server can keep its client's
connection alive. Content, reasoning and tool calls arrive as the chat layer's
`Delta` values; `Finished` carries the reason and the token counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence, Union

from ..chat.types import Delta, ToolCall

__all__ = [
    "Sampling",
    "ChatRequest",
    "CompletionRequest",
    "Heartbeat",
    "Started",
    "Finished",
    "Event",
    "Usage",
    "ChatResult",
    "Embeddings",
    "FinishReason",
    "fold_events",
]

FinishReason = Literal["stop", "length", "stop_sequence", "tool_calls", "cancelled"]


@dataclass(frozen=True)
class Sampling:
    """Sampler settings from a request; None means the model's default."""

    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    repeat_last_n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    logit_bias: Mapping[int, float] | None = None

    def kwargs(self) -> dict[str, Any]:
        """The settings given, as keyword arguments for `Model.stream`."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn, in OpenAI message and tool shapes (the chat layer's input).

    `max_tokens=None` means "as many as the context leaves"; a value larger than
    that is clamped, never rejected. `enable_thinking=None` takes the server's
    default. `grammar` is a raw GBNF grammar (llama-server's extension);
    `reasoning` False keeps any thinking text in the content.
    """

    messages: Sequence[Mapping[str, Any]]
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    response_format: Mapping[str, Any] | None = None
    grammar: str | None = None
    enable_thinking: bool | None = None
    template_kwargs: Mapping[str, Any] | None = None
    reasoning: bool = True
    max_tokens: int | None = None
    stop: Sequence[str] = ()
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class CompletionRequest:
    """A raw completion: the prompt goes to the model as is (text or token ids)."""

    prompt: str | Sequence[int]
    max_tokens: int | None = None
    stop: Sequence[str] = ()
    grammar: str | None = None
    json_schema: Mapping[str, Any] | None = None
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class Heartbeat:
    """Nothing happened for a while; `position` is the place in the queue (0: running)."""

    position: int


@dataclass(frozen=True)
class Started:
    """The request left the queue and its prompt is being processed."""

    n_prompt: int


@dataclass(frozen=True)
class Usage:
    """Token counts of one request: prompt (of which reused from the KV cache) and generated."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Finished:
    """The generation ended. `reason` is "tool_calls" when the message holds calls
    (and was not cut by the length limit); `stop_sequence` is the stop string hit."""

    reason: FinishReason
    usage: Usage
    stop_sequence: str | None = None


Event = Union[Heartbeat, Started, Delta, Finished]


@dataclass
class ChatResult:
    """A whole message, folded from the events (so stream and non-stream agree by construction)."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(0, 0))


@dataclass(frozen=True)
class Embeddings:
    """Vectors (one list of floats per input, in order) and the tokens they took."""

    vectors: list[list[float]]
    n_tokens: int


def fold_events(events: Any) -> ChatResult:
    """Fold an event stream into one `ChatResult` (tool-call arguments concatenated per index)."""
    result = ChatResult()
    calls: dict[int, dict[str, str]] = {}
    for event in events:
        if isinstance(event, Delta):
            if event.kind == "content":
                result.content += event.text
            elif event.kind == "reasoning":
                result.reasoning += event.text
            else:
                index = event.index or 0
                call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                if event.id:
                    call["id"] = event.id
                if event.name:
                    call["name"] = event.name
                call["arguments"] += event.arguments
        elif isinstance(event, Finished):
            result.finish_reason = event.reason
            result.stop_sequence = event.stop_sequence
            result.usage = event.usage
    result.tool_calls = [ToolCall(name=c["name"], arguments=c["arguments"], id=c["id"])
                         for _, c in sorted(calls.items())]
    return result
