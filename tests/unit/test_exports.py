"""The public surface is exactly what we intend, and importing it loads nothing native."""

from __future__ import annotations

import subprocess
import sys

import llamactypes

EXPECTED = {
    "__version__", "LLAMA_CPP_TAG",
    "Model", "Generation", "SamplingParams",
    "Grammar", "TokenVocab", "json_schema_to_gbnf",
    "chat_build", "chat_parse", "ChatBuild", "ParsedMessage", "ToolCall", "ChatTemplate", "chat_completion",
    "Chat",
    "LlamaError", "LibraryNotFoundError", "LibraryMismatchError", "ModelLoadError", "ClosedError", "NativeError",
    "DecodeError", "InvalidRequestError", "ContextOverflowError", "GrammarError", "SchemaError",
    "ChatTemplateError", "BusyError", "ServerStartError", "ServerError",
    "StateError",
}


def test_exported_names_are_exactly_the_intended_ones() -> None:
    assert set(llamactypes.__all__) == EXPECTED
    assert len(llamactypes.__all__) == len(EXPECTED)


def test_every_exported_name_resolves() -> None:
    for name in llamactypes.__all__:
        assert getattr(llamactypes, name) is not None, name


def test_errors_share_one_root() -> None:
    for name in llamactypes.__all__:
        obj = getattr(llamactypes, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, llamactypes.LlamaError), name


def test_import_loads_no_native_library() -> None:
    code = ("import llamactypes, sys; from llamactypes import Model, Chat, Grammar;"
            "import llamactypes._lib as l; assert l._lib is None, 'library loaded at import';"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
