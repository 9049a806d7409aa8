"""ChatTemplate: the Hugging Face rendering environment, sandboxed, with errors naming the line."""

from __future__ import annotations

import json

import pytest

from llamactypes.chat import ChatTemplate
from llamactypes.chat.template import CHATML_TEMPLATE, JsonObject
from llamactypes.errors import ChatTemplateError, InvalidRequestError

USER = [{"role": "user", "content": "Hi"}]


def render(source: str, messages: list | None = None, **kwargs: object) -> str:
    return ChatTemplate(source, bos_token="<s>", eos_token="</s>").render(messages or USER, **kwargs)


def test_chatml_fallback_when_no_template() -> None:
    template = ChatTemplate(None)
    assert template.is_fallback and template.source == CHATML_TEMPLATE
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
    assert template.render(messages) == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert template.render(messages, add_generation_prompt=False).endswith("Hi<|im_end|>\n")


def test_tojson_has_python_json_semantics() -> None:
    value = {"b": "é<>&", "a": [1, 2]}
    assert render("{{ x | tojson }}", x=value) == json.dumps(value, ensure_ascii=False)
    assert render("{{ x | tojson(indent=2) }}", x=value) == json.dumps(value, ensure_ascii=False, indent=2)
    assert render("{{ x | tojson(ensure_ascii=True) }}", x=value) == json.dumps(value)
    assert render("{{ x | tojson(separators=(',', ':'), sort_keys=True) }}", x=value) == '{"a":[1,2],"b":"é<>&"}'
    assert render("{{ x | map(attribute='n') | list | tojson }}", x=[{"n": 1}]) == "[1]"
    assert render("{{ x | map(attribute='n') | tojson }}", x=[{"n": 1}]) == "[1]"  # a generator


def test_hf_globals_and_controls() -> None:
    assert render("{{ bos_token }}x{{ eos_token }}") == "<s>x</s>"
    assert len(render("{{ strftime_now('%Y') }}")) == 4
    src = "{% set ns = namespace(n=0) %}{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"
    assert render(src) == "3"
    assert render("{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}") == "02"
    assert render("{% generation %}kept{% endgeneration %}") == "kept"
    assert render("{{ add_generation_prompt }} {{ enable_thinking }}", enable_thinking=False) == "True False"


def test_python_string_and_dict_methods() -> None:
    src = "{{ ' a,b '.strip().split(',') | join('|') }} {{ 'abc'.startswith('a') }} {{ 'X'.lower() }}"
    assert render(src) == "a|b True x"
    assert render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('z', 0) }}", d={"a": 1}) == "a=1;0"


def test_trim_and_lstrip_blocks_like_transformers() -> None:
    assert render("{% if true %}\n  x\n{% endif %}\n") == "  x\n"


def test_tools_only_present_when_given() -> None:
    src = "{{ tools is defined }}"
    assert render(src) == "False"
    assert render(src, tools=[{"type": "function", "function": {"name": "f"}}]) == "True"


def test_undefined_is_lenient_like_llama_cpp() -> None:
    assert render("{{ 'a: ' + missing }}|{{ missing.deeper.still }}|{{ missing | length }}") == "a: ||0"


def test_arguments_print_as_json_and_iterate_as_dict() -> None:
    messages = [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": {"a": "é"}}}]}]
    src = "{% set a = messages[0].tool_calls[0].function.arguments %}{{ '>' + a }}|{{ a }}|{{ a | tojson }}|{% for k, v in a.items() %}{{ k }}{% endfor %}"
    assert render(src, messages) == '>{"a": "é"}|{"a": "é"}|{"a": "é"}|a'
    assert isinstance(JsonObject({"x": 1}), dict)


def test_render_does_not_mutate_the_callers_messages() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    render("{% set _ = messages.append({'role': 'x'}) %}{{ messages | length }}", messages)
    assert messages == [{"role": "user", "content": "Hi"}]


def test_raise_exception_names_the_line() -> None:
    src = "line one\n{% if messages[0].role == 'user' %}\n{{ raise_exception('no users here') }}\n{% endif %}"
    with pytest.raises(ChatTemplateError) as info:
        render(src)
    assert info.value.line == 3
    assert "no users here" in str(info.value) and "line 3" in str(info.value)
    assert isinstance(info.value, InvalidRequestError) and info.value.param == "messages"


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(ChatTemplateError) as info:
        ChatTemplate("ok\n{% if %}\n", name="tool_use")
    assert info.value.line == 2 and info.value.name == "tool_use"


def test_runtime_type_error_is_a_template_error() -> None:
    with pytest.raises(ChatTemplateError) as info:
        render("\n{{ 1 + 'a' }}")
    assert info.value.line == 2


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ messages.__class__ }}",
        "{{ range.__globals__ }}",
        "{{ 'x' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 10 ** 100000 }}",
        "{% for i in range(10000000) %}{% endfor %}",
    ],
)
def test_sandbox_refuses_unsafe_or_huge_templates(source: str) -> None:
    with pytest.raises(ChatTemplateError):
        render(source)
