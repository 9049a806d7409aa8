"""The chat layer: templates, tool-call dialects, prompt building and output parsing.

    build = chat_build(model, messages, tools)          # prompt + grammar + triggers
    text = model.generate(build.prompt, **generate_options(build), max_tokens=...)
    message = chat_parse(text, build.format, build.parser)

    message = chat_completion(model, messages, tools)   # the same three steps

    stream = ChatStreamParser(build.format, build.parser)
    for piece in model.stream(build.prompt, ...):
        for delta in stream.feed(piece): ...
    for delta in stream.finish(): ...

Layer 6: imports `errors` and `grammar` only, never the model, engine or server.
"""

from __future__ import annotations

from llamactypes.chat.build import chat_build
from llamactypes.chat.completion import chat_completion, generate_options
from llamactypes.chat.parse import chat_parse
from llamactypes.chat.stream import ChatStreamParser
from llamactypes.chat.template import ChatTemplate
from llamactypes.chat.types import ChatBuild, Delta, ParsedMessage, ParserConfig, ToolCall

__all__ = [
    "ChatBuild",
    "ChatStreamParser",
    "ChatTemplate",
    "Delta",
    "ParsedMessage",
    "ParserConfig",
    "ToolCall",
    "chat_build",
    "chat_completion",
    "chat_parse",
    "generate_options",
]
