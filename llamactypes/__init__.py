"""llamactypes: a local GGUF model as a chat backend, in pure Python over llama.cpp's C API.

    from llamactypes import Model
    model = Model("model.gguf")
    print(model.generate("Hello", max_tokens=32))

Importing the package loads nothing native and imports no heavy module: each
public name is imported on first access, so `import llamactypes` works on a
machine without libllama (a client-only user needs none).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import LLAMA_CPP_TAG, __version__
from .errors import (
    BusyError, ChatTemplateError, ClosedError, ContextOverflowError, DecodeError, GrammarError,
    InvalidRequestError, LibraryMismatchError, LibraryNotFoundError, LlamaError, ModelLoadError, NativeError,
    SchemaError, ServerError, ServerStartError,
)
from .errors import StateError

logging.getLogger("llamactypes").addHandler(logging.NullHandler())

# public name -> module that defines it (imported lazily)
_LAZY = {
    "Model": "model",
    "Generation": "generation",
    "SamplingParams": "sampling",
    "Grammar": "grammar",
    "TokenVocab": "grammar",
    "json_schema_to_gbnf": "grammar",
    "chat_build": "chat",
    "chat_parse": "chat",
    "ChatBuild": "chat",
    "ParsedMessage": "chat",
    "ToolCall": "chat",
    "ChatTemplate": "chat",
    "chat_completion": "chat",
    "Chat": "client",
}

__all__ = [
    "__version__", "LLAMA_CPP_TAG",
    "Model", "Generation", "SamplingParams",
    "Grammar", "TokenVocab", "json_schema_to_gbnf",
    "chat_build", "chat_parse", "ChatBuild", "ParsedMessage", "ToolCall", "ChatTemplate", "chat_completion",
    "Chat",
    "LlamaError", "LibraryNotFoundError", "LibraryMismatchError", "ModelLoadError", "ClosedError", "NativeError",
    "DecodeError", "InvalidRequestError", "ContextOverflowError", "GrammarError", "SchemaError",
    "ChatTemplateError", "BusyError", "ServerStartError", "ServerError",
    "StateError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llamactypes' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from .chat import ChatBuild, ChatTemplate, ParsedMessage, ToolCall, chat_build, chat_completion, chat_parse
    from .client import Chat
    from .generation import Generation
    from .grammar import Grammar, TokenVocab, json_schema_to_gbnf
    from .model import Model
    from .sampling import SamplingParams
