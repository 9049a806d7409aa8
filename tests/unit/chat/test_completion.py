"""chat_completion with a scripted model, and the chat package's public names."""

from __future__ import annotations

from typing import Any, Callable

import llamactypes.chat as chat
from llamactypes.chat import chat_completion
from tests.unit.chat.conftest import WEATHER_TOOL, FakeModel


class ScriptedModel(FakeModel):
    """Returns a fixed reply and records what `generate` was asked."""

    def __init__(self, template: str | None, reply: str) -> None:
        super().__init__(template)
        self.reply = reply
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def generate(self, prompt: str, **options: Any) -> str:
        self.calls.append((prompt, options))
        return self.reply


def test_chat_completion_builds_generates_and_parses(read_template: Callable[[str], str]) -> None:
    reply = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    model = ScriptedModel(read_template("Qwen-Qwen2.5-7B-Instruct"), reply)
    message = chat_completion(model, [{"role": "user", "content": "Weather?"}], [WEATHER_TOOL],
                              max_tokens=64, temperature=0, stop="STOP")
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("get_weather", '{"city": "Paris"}')]
    prompt, options = model.calls[0]
    assert prompt.endswith("<|im_start|>assistant\n")
    assert options["grammar"] and options["grammar_lazy"] and options["trigger_words"] == ["<tool_call>"]
    assert options["stop"] == ["STOP"] and options["max_tokens"] == 64 and options["temperature"] == 0
    assert model.specials.index("<tool_call>") in options["preserved_tokens"]


def test_chat_completion_without_tools_passes_no_grammar() -> None:
    model = ScriptedModel(None, "Hello!")
    message = chat_completion(model, [{"role": "user", "content": "Hi"}])
    assert message.content == "Hello!" and not message.tool_calls
    assert "grammar" not in model.calls[0][1]


def test_public_names() -> None:
    assert set(chat.__all__) == {
        "ChatBuild", "ChatStreamParser", "ChatTemplate", "Delta", "ParsedMessage", "ParserConfig", "ToolCall",
        "chat_build", "chat_completion", "chat_parse", "generate_options",
    }
    for name in chat.__all__:
        assert getattr(chat, name) is not None
