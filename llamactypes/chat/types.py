"""The values the chat layer hands to the engine and the server.

`ChatBuild` is everything needed to run one chat request through
`Model.generate`/`Model.stream`: the prompt, the grammar and how it is
triggered, extra stop strings, and the `ParserConfig` that `chat_parse` needs
to turn the raw output back into a message. `ParsedMessage` is that message;
`Delta` is one streaming increment of it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ChatBuild", "Delta", "ParsedMessage", "ParserConfig", "ToolCall", "new_call_id"]

_ALNUM = string.ascii_letters + string.digits


def new_call_id(length: int = 24, prefix: str = "call_") -> str:
    """A random tool-call id (``call_`` + 24 alphanumerics, the OpenAI shape)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass(frozen=True)
class ToolCall:
    """One tool call: the function `name`, its `arguments` as JSON text, and a unique `id`."""

    name: str
    arguments: str
    id: str


@dataclass
class ParsedMessage:
    """An assistant message recovered from raw model output.

    `content` is the visible text, `reasoning` the thinking trace (empty when
    the model did not think), `tool_calls` the calls in order.
    """

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    def to_message(self) -> dict[str, Any]:
        """This message as an OpenAI assistant message, ready to send back in a history."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


@dataclass(frozen=True)
class Delta:
    """One streaming increment of a message.

    ``kind == "content"`` or ``"reasoning"``: `text` is appended to that field.
    ``kind == "tool_call"``: `index` names the call; its first delta carries `id`
    and `name`, later ones only `arguments` pieces to append.
    """

    kind: Literal["content", "reasoning", "tool_call"]
    text: str = ""
    index: int | None = None
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class ParserConfig:
    """What `chat_parse` needs to know about a request besides the format.

    `tools` lists the callable names (None: accept any name, for parsing text
    whose request is unknown; empty: no call is valid, everything is content).
    `param_types` maps tool → parameter → JSON type, for formats that write
    arguments as text (XML). `reasoning` enables splitting the thinking block;
    `thinking_forced_open` says the prompt already opened it. `json_envelope`
    says the generic format asked for ``{"tool_call": ...}``/``{"response": ...}``.
    """

    tools: tuple[str, ...] | None = None
    param_types: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    reasoning: bool = True
    thinking_forced_open: bool = False
    json_envelope: bool = False
    parallel_tool_calls: bool = True

    def knows(self, name: str) -> bool:
        """Whether `name` is a tool this request may call."""
        return self.tools is None or name in self.tools


@dataclass
class ChatBuild:
    """A rendered chat request: prompt, grammar, triggers and parser settings.

    `grammar` is GBNF text or None. When `grammar_lazy`, it applies only once a
    trigger fires: a regex in `trigger_patterns` matches the output (the
    grammar then starts at the first capture group, else at the match start),
    a word in `trigger_words` appears, or a token in `trigger_tokens` is
    sampled. `additional_stops` are stop strings to add to the request;
    `preserved_tokens` are special-token texts the output must keep (format
    markers, rendered rather than dropped when detokenizing) and
    `preserved_token_ids` their ids (`Model.stream(preserved_tokens=...)`).
    `parser` goes to `chat_parse`; `format` names the dialect;
    `thinking_forced_open` is true when the prompt ends inside ``<think>``.
    """

    prompt: str
    format: str
    grammar: str | None = None
    grammar_lazy: bool = False
    trigger_patterns: list[str] = field(default_factory=list)
    trigger_words: list[str] = field(default_factory=list)
    trigger_tokens: list[int] = field(default_factory=list)
    additional_stops: list[str] = field(default_factory=list)
    preserved_tokens: list[str] = field(default_factory=list)
    preserved_token_ids: list[int] = field(default_factory=list)
    parser: ParserConfig = field(default_factory=ParserConfig)
    thinking_forced_open: bool = False
