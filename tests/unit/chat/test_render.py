"""Every template of the pinned llama.cpp tree renders a tool conversation; common families exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from llamactypes.chat import chat_build
from tests.unit.chat.conftest import CONVERSATION, WEATHER_TOOL, FakeModel, template_names

FIXED = {"date_string": "26 Jul 2024"}


def test_the_template_collection_is_there(templates_dir: Path) -> None:
    assert len(list(templates_dir.glob("*.jinja"))) >= 60
    assert len(template_names()) >= 60


@pytest.mark.parametrize("name", template_names())
def test_every_template_renders_a_tool_conversation(name: str, make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model(name), CONVERSATION, [WEATHER_TOOL])
    for text in ("You are a helpful assistant.", "What is the weather in Paris?", "Sunny, 22 degrees",
                 "Thanks! And tomorrow?", "get_weather", "Paris"):
        assert text in build.prompt, f"{text!r} missing from the prompt"


@pytest.mark.parametrize("name", template_names())
def test_every_template_renders_plain_chat(name: str, make_model: Callable[..., FakeModel]) -> None:
    messages = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How are you?"}]
    build = chat_build(make_model(name), messages)
    assert "Hi there" in build.prompt and "How are you?" in build.prompt
    assert build.grammar is None


QWEN25 = (
    "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist "
    "with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, '
    '"days": {"type": "integer"}}, "required": ["city"]}}}\n</tools>\n\nFor each function call, return a json '
    "object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n"
    '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
    "<|im_start|>user\n<tool_response>\nSunny, 22 degrees\n</tool_response><|im_end|>\n"
    "<|im_start|>user\nThanks! And tomorrow?<|im_end|>\n<|im_start|>assistant\n"
)

LLAMA31 = (
    "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\n"
    "Today Date: 26 Jul 2024\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    "Given the following functions, please respond with a JSON for a function call with its proper arguments that "
    "best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of "
    "argument name and its value}.Do not use variables.\n\n"
    + '{\n    "type": "function",\n    "function": {\n        "name": "get_weather",\n        "description": "Get the '
    'current weather in a city",\n        "parameters": {\n            "type": "object",\n            "properties": {\n'
    '                "city": {\n                    "type": "string",\n                    "description": "City name"\n'
    '                },\n                "days": {\n                    "type": "integer"\n                }\n'
    '            },\n            "required": [\n                "city"\n            ]\n        }\n    }\n}\n\n'
    "What is the weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n'
    '"Sunny, 22 degrees"<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nThanks! And tomorrow?<|eot_id|>'
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)

# Nemo puts the tools and the system prompt in the last user turn; ids are mapped to 9 alphanumerics
# (deterministically), and an empty assistant turn separates the tool result from the next user turn.
NEMO = (
    '[INST]What is the weather in Paris?[/INST][TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, '
    '"id": "2zXTUoItE"}]</s>[TOOL_RESULTS]{"content": Sunny, 22 degrees, "call_id": "2zXTUoItE"}[/TOOL_RESULTS]</s>'
    '[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_weather", "description": "Get the current '
    'weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": '
    '"City name"}, "days": {"type": "integer"}}, "required": ["city"]}}}][/AVAILABLE_TOOLS]'
    "[INST]You are a helpful assistant.\n\nThanks! And tomorrow?[/INST]"
)

HERMES2 = (
    "<|im_start|>system\nYou are a function calling AI model. You are provided with function signatures within "
    "<tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make "
    "assumptions about what values to plug into functions. Here are the available tools: <tools> "
    '{"type": "function", "function": {"name": "get_weather", "description": "get_weather(city: str, days: int) - '
    'Get the current weather in a city\n\n    Args:\n        city(str): City name        days(int): ", "parameters": '
    '{"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "days": {"type": '
    '"integer"}}, "required": ["city"]}} </tools>Use the following pydantic model json schema for each tool call you '
    'will make: {"properties": {"name": {"title": "Name", "type": "string"}, "arguments": {"title": "Arguments", '
    '"type": "object"}}, "required": ["name", "arguments"], "title": "FunctionCall", "type": "object"}}\n'
    "For each function call return a json object with function name and arguments within <tool_call></tool_call> "
    'XML tags as follows:\n<tool_call>\n{"name": <function-name>, "arguments": <args-dict>}\n</tool_call><|im_end|>\n'
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the weather in Paris?"
    '<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
    "</tool_call><|im_end|>\n<|im_start|>tool\n<tool_response>\nSunny, 22 degrees\n</tool_response>\n<|im_end|>"
    "<|im_start|>user\nThanks! And tomorrow?<|im_end|>\n<|im_start|>assistant\n"
)

# No template (SmolLM2-style ChatML): tools described in the system prompt, calls shown as the JSON answer.
CHATML_GENERIC = (
    "<|im_start|>system\nYou are a helpful assistant.\n\nYou can call the following tools:\n[\n  {\n"
    '    "name": "get_weather",\n    "description": "Get the current weather in a city",\n    "parameters": {\n'
    '      "type": "object",\n      "properties": {\n        "city": {\n          "type": "string",\n'
    '          "description": "City name"\n        },\n        "days": {\n          "type": "integer"\n        }\n'
    '      },\n      "required": [\n        "city"\n      ]\n    }\n  }\n]\n\n'
    "Respond in JSON format, either with `tool_call` (a request to call a tool; `tool_calls` with a list of them "
    "calls several at once) or with `response` (a reply to the user's request), for example:\n"
    '{"tool_call": {"name": "get_weather", "arguments": {"city": "...", "days": 1}}}\nor\n{"response": "..."}'
    "<|im_end|>\n<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n"
    '{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}<|im_end|>\n'
    "<|im_start|>tool\nSunny, 22 degrees<|im_end|>\n<|im_start|>user\nThanks! And tomorrow?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.mark.parametrize(
    ("name", "bos", "expected", "fmt"),
    [
        ("Qwen-Qwen2.5-7B-Instruct", None, QWEN25, "hermes"),
        ("meta-llama-Llama-3.1-8B-Instruct", "<|begin_of_text|>", LLAMA31, "llama3"),
        ("mistralai-Mistral-Nemo-Instruct-2407", "<s>", NEMO, "mistral-nemo"),
        ("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "<|begin_of_text|>", HERMES2, "hermes"),
        (None, None, CHATML_GENERIC, "generic"),
    ],
)
def test_expected_rendering(
    name: str | None, bos: str | None, expected: str, fmt: str, make_model: Callable[..., FakeModel]
) -> None:
    build = chat_build(make_model(name, bos=bos), CONVERSATION, [WEATHER_TOOL], template_kwargs=FIXED)
    assert build.format == fmt
    assert build.prompt == expected


def test_system_merged_for_templates_without_system_role(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("google-gemma-2-2b-it"), CONVERSATION[:2])
    assert build.prompt == (
        "<start_of_turn>user\nYou are a helpful assistant.\n\nWhat is the weather in Paris?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_tool_results_become_user_turns_where_the_template_has_no_tool_role(make_model: Callable[..., FakeModel]) -> None:
    prompt = chat_build(make_model("google-gemma-2-2b-it"), CONVERSATION, [WEATHER_TOOL]).prompt
    assert '<start_of_turn>model\n{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}<end_of_turn>' in prompt
    assert ('<start_of_turn>user\n{"tool_response": {"tool": "get_weather", "content": "Sunny, 22 degrees", '
            '"tool_call_id": "call_1"}}\n\nThanks! And tomorrow?<end_of_turn>') in prompt


def test_developer_role_is_system_except_for_harmony(make_model: Callable[..., FakeModel]) -> None:
    messages = [{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
    assert chat_build(make_model(None), messages).prompt.startswith("<|im_start|>system\nBe terse.<|im_end|>")
    assert "# Instructions\n\nBe terse." in chat_build(make_model("openai-gpt-oss-120b"), messages).prompt


def test_tool_use_variant_is_used_with_tools() -> None:
    model = FakeModel("plain:{{ messages[0].content }}", variants={"tool_use": "tools:{{ tools | length }}"})
    messages = [{"role": "user", "content": "Hi"}]
    assert chat_build(model, messages).prompt == "plain:Hi"
    assert chat_build(model, messages, [WEATHER_TOOL]).prompt.startswith("tools:1")


def test_leading_bos_dropped_only_when_the_tokenizer_adds_it(make_model: Callable[..., FakeModel]) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    name = "meta-llama-Llama-3.1-8B-Instruct"
    assert not chat_build(make_model(name, bos="<|begin_of_text|>"), messages).prompt.startswith("<|begin_of_text|>")
    model = make_model(name, bos="<|begin_of_text|>", metadata={"tokenizer.ggml.add_bos_token": False})
    assert chat_build(model, messages).prompt.startswith("<|begin_of_text|>")


def test_enable_thinking_reaches_the_template(make_model: Callable[..., FakeModel]) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    off = chat_build(make_model("Qwen-Qwen3-0.6B"), messages)
    assert off.prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and not off.thinking_forced_open
    on = chat_build(make_model("Qwen-Qwen3-0.6B"), messages, enable_thinking=True)
    assert on.prompt.endswith("<|im_start|>assistant\n")


def test_forced_open_thinking_is_detected(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("llama-cpp-deepseek-r1"), [{"role": "user", "content": "Hi"}])
    assert build.thinking_forced_open and build.parser.thinking_forced_open
    assert build.prompt.rstrip().endswith("<think>")


def test_template_kwargs_become_variables() -> None:
    model = FakeModel("{{ custom }}-{{ enable_thinking }}")
    assert chat_build(model, [{"role": "user", "content": "x"}], template_kwargs={"custom": 7}).prompt == "7-False"
