"""Fixtures for the chat layer: real templates from the pinned llama.cpp tree and a fake model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from llamactypes.paths import source_dir

SPECIAL_TOKENS = (
    "<s>", "</s>", "<tool_call>", "</tool_call>", "<think>", "</think>", "<|python_tag|>", "<|eom_id|>",
    "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<|START_ACTION|>", "<|END_ACTION|>",
    "<｜tool▁calls▁begin｜>", "<|channel|>", "<|message|>", "<|end|>", "<|start|>", "<|call|>",
)


def template_names() -> list[str]:
    """Every chat template shipped in the pinned llama.cpp tree (collected at import time)."""
    return sorted(p.stem for p in (source_dir() / "models" / "templates").glob("*.jinja"))


class FakeModel:
    """Just what `chat_build` uses: templates, metadata, special tokens, a byte tokenizer."""

    def __init__(
        self,
        template: str | None,
        *,
        variants: dict[str, str] | None = None,
        bos: str | None = "<s>",
        eos: str | None = "</s>",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.chat_template = template
        self.chat_templates = dict(variants or {})
        self.metadata = dict(metadata or {})
        self.specials = list(SPECIAL_TOKENS)
        for token in (bos, eos):
            if token and token not in self.specials:
                self.specials.append(token)
        self.bos = self.specials.index(bos) if bos else None
        self.eos = self.specials.index(eos) if eos else None

    def token_piece(self, token: int, special: bool = True) -> bytes:
        return self.specials[token].encode()

    def tokenize(self, text: str, add_special: bool = False, parse_special: bool = True) -> list[int]:
        if parse_special and text in self.specials:
            return [self.specials.index(text)]
        return [1000 + b for b in text.encode()]


@pytest.fixture(scope="session")
def templates_dir(llama_source: Path) -> Path:
    return llama_source / "models" / "templates"


@pytest.fixture(scope="session")
def read_template(templates_dir: Path) -> Callable[[str], str]:
    """Source of a template by file stem, e.g. ``read_template("Qwen-Qwen2.5-7B-Instruct")``."""

    def read(name: str) -> str:
        return (templates_dir / f"{name}.jinja").read_text(encoding="utf-8")

    return read


@pytest.fixture(scope="session")
def make_model(read_template: Callable[[str], str]) -> Callable[..., FakeModel]:
    """A fake model with the named template (None: no template)."""

    def make(name: str | None, **kwargs: Any) -> FakeModel:
        return FakeModel(read_template(name) if name else None, **kwargs)

    return make


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the time in a timezone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 22 degrees"},
    {"role": "user", "content": "Thanks! And tomorrow?"},
]


@pytest.fixture(scope="session")
def round_trips(make_model: Callable[..., FakeModel]) -> dict[str, Any]:
    """`round_trip` of every template of the pinned tree, computed once per session."""
    from llamactypes.chat.derive.roundtrip import round_trip

    return {name: round_trip(make_model(name)) for name in template_names()}
