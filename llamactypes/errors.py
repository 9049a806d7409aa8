"""The exceptions llamactypes raises: one tree rooted in `LlamaError`.

Each class also derives from the builtin a caller would naturally catch, so
``except ValueError`` keeps working for bad input and ``except OSError`` for
files and libraries. The server maps these classes (never message text) to
HTTP status codes.

    LlamaError
    ├── LibraryNotFoundError (OSError)     libllama missing: run build_scripts/fetch_lib.py
    ├── LibraryMismatchError (OSError)     a library whose ABI is not the pinned llama.cpp
    ├── ModelLoadError (OSError)           not a GGUF file, unreadable, or llama.cpp refused it
    ├── ClosedError (RuntimeError)         a Model/Context used after close()
    ├── NativeError (RuntimeError)         a C call failed; `.code` holds its return value
    │   ├── DecodeError                    llama_decode returned an error
    │   └── StateError                     a sequence state could not be saved or restored
    ├── InvalidRequestError (ValueError)   bad arguments from a caller
    │   ├── ContextOverflowError           prompt (+ room to generate) longer than the context
    │   ├── GrammarError                   GBNF that does not parse or make sense; .line/.column
    │   ├── SchemaError                    JSON Schema the grammar engine cannot express
    │   └── ChatTemplateError              a chat template that fails to render; .line
    ├── BusyError (RuntimeError)           the server queue is full
    ├── ServerStartError (RuntimeError)    a spawned server did not come up
    └── ServerError (ConnectionError)      a server answered with an error; .status, .body
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LlamaError",
    "LibraryNotFoundError",
    "LibraryMismatchError",
    "ModelLoadError",
    "ClosedError",
    "NativeError",
    "DecodeError",
    "StateError",
    "InvalidRequestError",
    "ContextOverflowError",
    "GrammarError",
    "SchemaError",
    "ChatTemplateError",
    "BusyError",
    "ServerStartError",
    "ServerError",
]


class LlamaError(Exception):
    """Root of every error llamactypes raises on purpose."""


class LibraryNotFoundError(LlamaError, OSError):
    """The llama.cpp shared library could not be found or loaded."""


class LibraryMismatchError(LlamaError, OSError):
    """A llama.cpp library was found but is not ABI-compatible with the pinned version."""


class ModelLoadError(LlamaError, OSError):
    """A model file is missing, is not GGUF, or llama.cpp refused to load it."""


class ClosedError(LlamaError, RuntimeError):
    """An object was used after `close()` released its native handle."""


class NativeError(LlamaError, RuntimeError):
    """A llama.cpp call reported failure; `code` is its return value when it has one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DecodeError(NativeError):
    """`llama_decode` failed (no KV slot, aborted, or a fatal error)."""


class StateError(NativeError):
    """A sequence's state could not be saved or restored (wrong size, another model, or
    llama.cpp refused it); the sequence is left empty, never half-restored."""


class InvalidRequestError(LlamaError, ValueError):
    """The caller passed arguments that cannot be served; `param` names the culprit."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ContextOverflowError(InvalidRequestError):
    """The prompt does not fit the context window."""

    def __init__(self, n_prompt: int, n_ctx: int, message: str | None = None) -> None:
        super().__init__(
            message
            or f"the prompt has {n_prompt} tokens but the context holds {n_ctx} "
            f"(raise n_ctx or shorten the prompt)",
            param="messages",
        )
        self.n_prompt = n_prompt
        self.n_ctx = n_ctx


class GrammarError(InvalidRequestError):
    """A GBNF grammar is malformed or meaningless; points at the offending text."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        context: str | None = None,
    ) -> None:
        where = f" at line {line}, column {column}" if line is not None else ""
        full = f"{message}{where}"
        if context:
            full += "\n" + context
        super().__init__(full, param="grammar")
        self.reason = message
        self.line = line
        self.column = column
        self.context = context


class SchemaError(InvalidRequestError):
    """A JSON Schema uses something the grammar engine cannot express."""

    def __init__(self, message: str, path: str = "#") -> None:
        super().__init__(f"{message} (at {path})", param="schema")
        self.path = path


class ChatTemplateError(InvalidRequestError):
    """A chat template failed to parse or render; `line` is the template line when known."""

    def __init__(self, message: str, line: int | None = None, name: str | None = None) -> None:
        where = f" (template line {line})" if line is not None else ""
        super().__init__(f"chat template error{where}: {message}", param="messages")
        self.line = line
        self.name = name


class BusyError(LlamaError, RuntimeError):
    """Too many requests are already waiting for the model."""

    def __init__(self, message: str = "server busy", retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerStartError(LlamaError, RuntimeError):
    """A spawned server exited or did not answer in time; `log` holds its last lines."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message + (f"\n--- server log ---\n{log}" if log else ""))
        self.log = log


class ServerError(LlamaError, ConnectionError):
    """A server answered with an error status; `status` and the decoded `body` are kept."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
