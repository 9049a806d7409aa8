"""`chat_completion`: one chat turn on a local model, without a server.

Build the prompt and grammar, generate, parse: the three calls a caller would
otherwise write by hand. The model is duck-typed (anything with `chat_build`'s
attributes and `generate(prompt, **options) -> str`, like `llamactypes.Model`),
so this layer still never imports the model layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llamactypes.chat.build import chat_build
from llamactypes.chat.parse import chat_parse
from llamactypes.chat.types import ChatBuild, ParsedMessage

__all__ = ["chat_completion", "generate_options"]


def generate_options(build: ChatBuild, stop: str | Sequence[str] = ()) -> dict[str, Any]:
    """The `Model.generate`/`Model.stream` options that carry out `build` (grammar, triggers, stops)."""
    stops = [stop] if isinstance(stop, str) else list(stop)
    options: dict[str, Any] = {
        "stop": stops + [s for s in build.additional_stops if s not in stops],
        "preserved_tokens": list(build.preserved_token_ids),
    }
    if build.grammar is not None:
        options.update(
            grammar=build.grammar,
            grammar_lazy=build.grammar_lazy,
            trigger_patterns=list(build.trigger_patterns),
            trigger_words=list(build.trigger_words),
            trigger_tokens=list(build.trigger_tokens),
        )
    return options


def chat_completion(
    model: Any,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    tool_choice: Any = "auto",
    parallel_tool_calls: bool = True,
    response_format: Mapping[str, Any] | None = None,
    enable_thinking: bool = False,
    template_kwargs: Mapping[str, Any] | None = None,
    stop: str | Sequence[str] = (),
    **sampling: Any,
) -> ParsedMessage:
    """Answer `messages` with `model`: the assistant message, tool calls parsed.

    Chat arguments are `chat_build`'s; `stop` and the remaining keyword
    arguments (``max_tokens``, ``temperature``, ``seed``, ...) go to
    ``model.generate``.
    """
    build = chat_build(
        model,
        messages,
        tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel_tool_calls,
        response_format=response_format,
        enable_thinking=enable_thinking,
        template_kwargs=template_kwargs,
    )
    text = model.generate(build.prompt, **generate_options(build, stop), **sampling)
    return chat_parse(text, build.format, build.parser)
