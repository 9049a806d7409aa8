"""Dialects derived from templates by rendering: what the analyzer reads off real templates."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

import pytest

from llamactypes.chat import ChatStreamParser, chat_build, chat_parse
from llamactypes.chat.build import format_for
from llamactypes.chat.derive import DerivedFormat, derive_format
from llamactypes.chat.derive.analyze import ARGS, ID, INDEX, NAME
from llamactypes.chat.derive.nested import child_tags
from llamactypes.chat.derive.probe import turn_end_at
from llamactypes.chat.formats import get_format
from llamactypes.chat.stream import fold_deltas
from llamactypes.chat.template import ChatTemplate
from tests.unit.chat.conftest import WEATHER_TOOL, FakeModel

CALLS = [
    {"id": "call_1", "type": "function",
     "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}},
    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
]
USER = [{"role": "user", "content": "Weather?"}]


def _derived(make_model: Callable[..., FakeModel], name: str) -> DerivedFormat:
    fmt = format_for(make_model(name), True)
    assert isinstance(fmt, DerivedFormat), fmt
    return fmt


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Qwen-Qwen2.5-7B-Instruct", "hermes"),
        ("Qwen3-Coder", "qwen3-coder"),
        ("meta-llama-Llama-3.1-8B-Instruct", "llama3"),
        ("deepseek-ai-DeepSeek-V3.1", "deepseek-v3.1"),
        ("openai-gpt-oss-120b", "gpt-oss"),
        ("google-gemma-2-2b-it", "generic"),  # renders no calls: nothing to derive from
    ],
)
def test_hand_written_dialects_stay_where_they_read_the_template_back(
    make_model: Callable[..., FakeModel], name: str, expected: str
) -> None:
    assert format_for(make_model(name), True).id == expected


@pytest.mark.parametrize(
    ("name", "opener", "kinds", "pairs"),
    [
        ("GLM-4.6", "<tool_call>", [NAME, ARGS], ("\n<arg_key>", "</arg_key>\n<arg_value>", "</arg_value>")),
        ("moonshotai-Kimi-K2", "<|tool_calls_section_begin|>", [NAME, INDEX, ARGS], None),
        ("upstage-Solar-Open-100B", "<|tool_calls|>", [ID, NAME, ARGS], None),
        ("google-gemma-4-31B-it-interleaved", "<|tool_call>call:", [NAME, ARGS], ("", ":", "")),
        ("deepseek-ai-DeepSeek-V3.2", "<｜DSML｜function_calls>", [NAME, ARGS],
         ('<｜DSML｜parameter name="', '" string="false">', "</｜DSML｜parameter>\n")),
        ("LFM2.5-8B-A1B", "<|tool_call_start|>[", [NAME, ARGS], ("", "=", "")),
    ],
)
def test_what_the_analyzer_reads(
    make_model: Callable[..., FakeModel], name: str, opener: str, kinds: list[str], pairs: tuple[str, ...] | None
) -> None:
    dialect = _derived(make_model, name).dialect
    assert dialect.opener.startswith(opener)
    assert [p.kind for p in dialect.call if p.kind != "lit"] == kinds
    assert dialect.parallel
    if pairs is None:
        assert dialect.args is None
    else:
        assert dialect.args is not None
        assert (dialect.args.key_open, dialect.args.key_close, dialect.args.value_end) == pairs


def test_typed_quotes_and_echoed_keys(make_model: Callable[..., FakeModel]) -> None:
    gemma = _derived(make_model, "google-gemma-4-31B-it-interleaved").dialect.args
    assert gemma is not None and gemma.quote == '<|"|>'
    dsml = _derived(make_model, "deepseek-ai-DeepSeek-V3.2").dialect.args
    assert dsml is not None and dsml.string_close == '" string="true">'
    minimax = _derived(make_model, "MiniMax-M3").dialect.args
    assert minimax is not None and minimax.end_for("city").endswith("</city>]")


def test_thinking_markers(make_model: Callable[..., FakeModel]) -> None:
    assert _derived(make_model, "GLM-4.6").think_tags == ("<think>", "</think>")
    assert _derived(make_model, "ByteDance-Seed-OSS").think_tags == ("<seed:think>", "</seed:think>")
    assert _derived(make_model, "google-gemma-4-31B-it-interleaved").think_tags == ("<|channel>thought", "<channel|>")
    assert _derived(make_model, "moonshotai-Kimi-K2").think_tags is None


@pytest.mark.parametrize(
    "name",
    ["GLM-4.6", "moonshotai-Kimi-K2", "google-gemma-4-31B-it-interleaved", "deepseek-ai-DeepSeek-V3.2",
     "MiniMax-M3", "LFM2.5-8B-A1B", "tencent-Hy3", "upstage-Solar-Open-100B", "openbmb-MiniCPM5-1B",
     "ByteDance-Seed-OSS", "Apertus-8B-Instruct", "Kimi-K3"],
)
def test_written_calls_parse_back_and_stream(make_model: Callable[..., FakeModel], name: str) -> None:
    """`calls_text` (used where a conversation is shown as text) writes what the parser reads, piece by piece."""
    model = make_model(name)
    build = chat_build(model, USER, [WEATHER_TOOL])
    build.parser = replace(build.parser, thinking_forced_open=False)  # the calls alone, no thinking first
    fmt = get_format(build.format)
    text = fmt.calls_text(CALLS)
    message = chat_parse(text, build.format, build.parser)
    assert [(c.name, json.loads(c.arguments)) for c in message.tool_calls] == [
        (c["function"]["name"], c["function"]["arguments"]) for c in CALLS
    ]
    parser = ChatStreamParser(build.format, build.parser)
    folded = fold_deltas([d for ch in text for d in parser.feed(ch)] + parser.finish())
    assert [(c.name, c.arguments) for c in folded.tool_calls] == [(c.name, c.arguments) for c in message.tool_calls]


def test_derived_ids_are_stable_and_registered(make_model: Callable[..., FakeModel], read_template: Any) -> None:
    first = derive_format(ChatTemplate(read_template("GLM-4.6")))
    second = derive_format(ChatTemplate(read_template("GLM-4.6")))
    assert first is not None and second is not None and first.id == second.id
    build = chat_build(make_model("GLM-4.6"), USER, [WEATHER_TOOL])
    assert build.format == first.id and get_format(build.format).id == first.id


def test_a_template_whose_calls_cannot_be_read_is_not_derived(read_template: Any) -> None:
    source = "{% for m in messages %}{{ m.content }}{% if m.tool_calls %}CALL!{% endif %}{% endfor %}"
    assert derive_format(ChatTemplate(source)) is None
    assert derive_format(ChatTemplate(read_template("google-gemma-2-2b-it"))) is None


def test_bad_output_of_a_derived_dialect_is_content(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("GLM-4.6"), USER, [WEATHER_TOOL])
    for raw in ("<tool_call>nope_tool\n<arg_key>a</arg_key>\n<arg_value>1</arg_value>\n</tool_call>",
                "<tool_call>get_weather\n<arg_key>" + "k" * 400, "<tool_call>", "Sure: <tool_call>get_weather"):
        message = chat_parse(raw, build.format, build.parser)
        assert message.tool_calls == [] and message.content == raw


def test_a_turn_end_tail_that_starts_at_a_closing_marker_is_passed_over() -> None:
    """Kimi-K3 ends a plain answer with ``<|close|>response<|sep|><|close|>message<|sep|>``: in a turn with
    calls only its tail ``<|close|>message<|sep|>`` follows, not ``<|sep|><|close|>message<|sep|>`` (that
    ``<|sep|>`` closes the tool section's marker)."""
    end = "<|close|>response<|sep|><|close|>message<|sep|>"
    out = "<|open|>tools<|sep|>CALL<|close|>tools<|sep|><|close|>message<|sep|>"
    assert out[: turn_end_at(out, end, out.index("CALL"))] == "<|open|>tools<|sep|>CALL<|close|>tools<|sep|>"
    assert turn_end_at("<|im_start|>x<|im_end|>\n", "<|im_end|>", 0) == len("<|im_start|>x")
    assert turn_end_at("no end here", "<|im_end|>", 0) == len("no end here")


def test_kimi_k3_tool_section_ends_with_its_sep(make_model: Callable[..., FakeModel]) -> None:
    """A real Kimi-K3 turn with a call (llama.cpp's test-chat.cpp shape): no ``<|sep|>`` left in the content."""
    fmt = _derived(make_model, "Kimi-K3")
    assert fmt.dialect.section_close.endswith("<|close|>tools<|sep|>")
    build = chat_build(make_model("Kimi-K3"), USER, [WEATHER_TOOL])
    build.parser = replace(build.parser, reasoning=False)
    raw = ('<|open|>response<|sep|>On it.<|close|>response<|sep|><|open|>tools<|sep|>'
           '<|open|>call tool="get_weather" index="1"<|sep|>'
           '<|open|>argument key="city" type="string"<|sep|>Paris<|close|>argument<|sep|>'
           '<|open|>argument key="days" type="number"<|sep|>3<|close|>argument<|sep|>'
           '<|close|>call<|sep|><|close|>tools<|sep|><|close|>message<|sep|>')
    message = chat_parse(raw, build.format, build.parser)
    assert message.content.strip() == "On it."
    calls = [(c.name, json.loads(c.arguments)) for c in message.tool_calls]
    assert calls == [("get_weather", {"city": "Paris", "days": 3})]
    parser = ChatStreamParser(build.format, build.parser)
    folded = fold_deltas([d for ch in raw for d in parser.feed(ch)] + parser.finish())
    assert folded.content == message.content and folded.tool_calls[0].arguments == message.tool_calls[0].arguments


@pytest.mark.parametrize("raw", [
    "<|channel>thought\nLet me answer.<channel|>Hello!<channel|>",
    "<|channel>thought\nLet me answer.<channel|>Hello!<|channel>thought\n<channel|>",
    "<|channel>thought\nLet me answer.<channel|>Hello!<|channel>thought\n<channel|><channel|>",
    "<|channel><|channel>thought\nLet me answer.<channel|>Hello!",
])
def test_gemma4_stray_channel_markers_are_no_content(make_model: Callable[..., FakeModel], raw: str) -> None:
    """Gemma 4 writes stray channel markers around its answer (llama.cpp's test-chat.cpp shapes): with
    thinking read as reasoning they are dropped, whole and streamed; without, the text stays as written."""
    build = chat_build(make_model("google-gemma-4-31B-it"), USER, [WEATHER_TOOL])
    parser = replace(build.parser, thinking_forced_open=False)
    message = chat_parse(raw, build.format, parser)
    assert (message.content.strip(), message.reasoning.strip()) == ("Hello!", "Let me answer.")
    stream = ChatStreamParser(build.format, parser)
    folded = fold_deltas([d for ch in raw for d in stream.feed(ch)] + stream.finish())
    assert (folded.content, folded.reasoning) == (message.content, message.reasoning)
    as_written = chat_parse(raw, build.format, replace(parser, reasoning=False))
    assert as_written.content == raw


def test_child_tags_read_nested_values() -> None:
    """`child_tags`: objects, ``<item>`` lists, nesting, and what is left as text."""
    ns = "]<]minimax[>["
    limit = f"{ns}<max>10{ns}</max>"
    assert child_tags(limit, ns, "object") == {"max": 10}
    rows = f"{ns}<item>{ns}<id>1{ns}</id>{ns}<label>one{ns}</label>{ns}</item>{ns}<item>alpha{ns}</item>"
    assert child_tags(rows, ns, "array") == [{"id": 1, "label": "one"}, "alpha"]
    assert child_tags(limit, ns, "array|object") == {"max": 10}
    assert child_tags(limit, ns, "object|string") is None  # a string is allowed: llama.cpp keeps the text
    assert child_tags(limit, ns, "array") is None and child_tags(limit, ns, "integer") is None
    assert child_tags("", ns, "object") == {} and child_tags("", ns, "array") == [] and child_tags("", ns, None) is None
    for bad in (f"{ns}<max>10", f"{ns}<max>10{ns}</min>", f"{limit} trailing", f"{ns}<a>1{ns}</a>{ns}<a>2{ns}</a>"):
        assert child_tags(bad, ns, None) is None, bad


def test_minimax_nested_values_and_a_call_without_parameters(make_model: Callable[..., FakeModel]) -> None:
    """MiniMax-M3's real output shapes (llama.cpp's test-chat.cpp): child-tag values, a call with no parameters."""
    ns = "]<]minimax[>["
    tools = [WEATHER_TOOL, {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}},
             {"type": "function", "function": {"name": "query", "parameters": {"type": "object", "properties": {
                 "where": {"type": "object"}, "tags": {"type": "array"},
                 "label": {"anyOf": [{"type": "string"}, {"type": "object"}]}}}}}]
    build = chat_build(make_model("MiniMax-M3"), USER, tools, parallel_tool_calls=True)
    raw = (f'{ns}<tool_call>\n{ns}<invoke name="ping">{ns}</invoke>\n'
           f'{ns}<invoke name="query">{ns}<where>{ns}<max>10{ns}</max>{ns}<op>lt{ns}</op>{ns}</where>'
           f'{ns}<tags>{ns}<item>a{ns}</item>{ns}<item>b{ns}</item>{ns}</tags>'
           f'{ns}<label>{ns}<text>hi{ns}</text>{ns}</label>{ns}</invoke>\n{ns}</tool_call>')
    message = chat_parse(raw, build.format, build.parser)
    assert message.content == ""
    assert [(c.name, json.loads(c.arguments)) for c in message.tool_calls] == [
        ("ping", {}),
        ("query", {"where": {"max": 10, "op": "lt"}, "tags": ["a", "b"], "label": f"{ns}<text>hi{ns}</text>"}),
    ]
    for size in (1, 7):
        parser = ChatStreamParser(build.format, build.parser)
        deltas = [d for k in range(0, len(raw), size) for d in parser.feed(raw[k: k + size])] + parser.finish()
        folded = fold_deltas(deltas)
        assert [(c.name, c.arguments) for c in folded.tool_calls] == [(c.name, c.arguments) for c in message.tool_calls]


def test_a_cdata_value_may_hold_its_close_tag(make_model: Callable[..., FakeModel]) -> None:
    """MiniCPM5 (llama.cpp's test-chat.cpp shape): a CDATA value holding ``</param>`` is read whole."""
    tool = {"type": "function", "function": {"name": "html", "parameters": {
        "type": "object", "properties": {"markup": {"type": "string"}, "n": {"type": "integer"}}}}}
    build = chat_build(make_model("openbmb-MiniCPM5-1B"), USER, [tool])
    build.parser = replace(build.parser, reasoning=False)
    raw = ('<function name="html"><param name="markup"><![CDATA[<a href="/x">hi</a> </param>]]></param>'
           '<param name="n"> <![CDATA[3]]> </param></function>')
    message = chat_parse(raw, build.format, build.parser)
    assert message.content == ""
    assert [json.loads(c.arguments) for c in message.tool_calls] == [{"markup": '<a href="/x">hi</a> </param>',
                                                                     "n": 3}]
    parser = ChatStreamParser(build.format, build.parser)
    folded = fold_deltas([d for ch in raw for d in parser.feed(ch)] + parser.finish())
    assert [c.arguments for c in folded.tool_calls] == [c.arguments for c in message.tool_calls]
    plain = '<function name="html"><param name="markup">no <![CDATA[ here</param></function>'
    assert json.loads(chat_parse(plain, build.format, build.parser).tool_calls[0].arguments) == {
        "markup": "no <![CDATA[ here"}


def test_command_r_plus_leftovers(make_model: Callable[..., FakeModel]) -> None:
    """Command R+ (llama.cpp's test-chat.cpp shapes): the prompt's ``<|CHATBOT_TOKEN|>`` written again at the
    start and the call list closed ``]\\n```` `` (the template writes ``]```` ``) leave nothing in the content."""
    fmt = _derived(make_model, "CohereForAI-c4ai-command-r-plus-tool_use")
    assert fmt.dialect.prompt_tail == "<|CHATBOT_TOKEN|>"
    build = chat_build(make_model("CohereForAI-c4ai-command-r-plus-tool_use"), USER, [WEATHER_TOOL])
    for raw, content, calls in [
        ("<|CHATBOT_TOKEN|>Hello!<|END_OF_TURN_TOKEN|>", "Hello!", []),
        ('Action:\n```json\n[{"tool_name": "get_weather", "parameters": {"city": "Paris"}}]\n```', "",
         [("get_weather", {"city": "Paris"})]),
        ("Hello <|CHATBOT_TOKEN|>", "Hello <|CHATBOT_TOKEN|>", []),  # only at the start
    ]:
        message = chat_parse(raw, build.format, build.parser)
        assert message.content.strip() == content, raw
        assert [(c.name, json.loads(c.arguments)) for c in message.tool_calls] == calls
        parser = ChatStreamParser(build.format, build.parser)
        folded = fold_deltas([d for ch in raw for d in parser.feed(ch)] + parser.finish())
        assert folded.content == message.content, raw


def test_kimi_k2_calls_without_their_end_marker(make_model: Callable[..., FakeModel]) -> None:
    """Kimi-K2 (llama.cpp's test-chat.cpp shape): calls that leave out ``<|tool_call_end|>`` before the next
    call, and the section's markers, inside a thinking block left open: both calls are read."""
    tool = {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"tz": {"type": "string"}}}}}
    build = chat_build(make_model("Kimi-K2-Thinking"), USER, [WEATHER_TOOL, tool], parallel_tool_calls=True)
    parser_config = replace(build.parser, thinking_forced_open=False)
    raw = ('<think>I need two tools<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>'
           '{"city": "Paris"}<|tool_call_begin|>functions.get_time:1<|tool_call_argument_begin|>{"tz": "CET"}')
    message = chat_parse(raw, build.format, parser_config)
    assert message.reasoning.strip() == "I need two tools" and message.content == ""
    assert [(c.id, json.loads(c.arguments)) for c in message.tool_calls] == [
        ("functions.get_weather:0", {"city": "Paris"}), ("functions.get_time:1", {"tz": "CET"})]
    parser = ChatStreamParser(build.format, parser_config)
    folded = fold_deltas([d for ch in raw for d in parser.feed(ch)] + parser.finish())
    assert [(c.name, c.arguments) for c in folded.tool_calls] == [(c.name, c.arguments) for c in message.tool_calls]
    wrong = raw.replace("<|tool_call_begin|>functions.get_time", "<|tool_call_begin|>xfunctions.get_time")
    assert chat_parse(wrong, build.format, parser_config).tool_calls == []  # no next call: not read
