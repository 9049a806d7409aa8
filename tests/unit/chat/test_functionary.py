"""Functionary v3.2: recipient blocks (``>>>all`` is content, ``>>>NAME`` a call) built, parsed and constrained.

Expectations for what the model writes after the prompt's ``>>>`` come from
llama.cpp's tests/test-chat.cpp (b11434: the Functionary v3.2 PEG tests and the
generation-prompt check; older revisions: content + call, raw python code,
trailing whitespace) and from MeetKai's reference conversation for the format
(MeetKai/functionary tests/prompt_test_v3.llama3.txt: what the model is trained to
write, raw python code and tool results included); the call texts are the
template's own renderings.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from llamactypes.chat import ChatStreamParser, chat_build, chat_parse
from llamactypes.chat.derive.roundtrip import TIME, WEATHER
from llamactypes.chat.formats import detect_format
from llamactypes.grammar import Grammar
from tests.unit.chat.checks import grammar_start
from tests.unit.chat.conftest import FakeModel

NAME = "meetkai-functionary-medium-v3.2"
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
SPECIAL_TOOL = {"type": "function", "function": {
    "name": "special_function", "description": "I'm special",
    "parameters": {"type": "object", "properties": {"arg1": {"type": "integer"}}, "required": ["arg1"]}}}
PYTHON_TOOL = {"type": "function", "function": {
    "name": "python", "description": "Run code",
    "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}
SINGLE = 'get_weather\n{"city": "Paris"}'
PARALLEL = 'get_weather\n{"city": "Paris"}>>>get_time\n{"tz": "CET"}'
MIXED = 'all\nLet me check.>>>get_weather\n{"city": "Paris"}'
CODE = "python\n# This is a program:\nprint('hey')"


@pytest.fixture(scope="module")
def model(make_model: Callable[..., FakeModel]) -> FakeModel:
    return make_model(NAME)


def _call(k: int) -> dict[str, Any]:
    name, args = [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})][k]
    return {"id": f"call{k}", "type": "function", "function": {"name": name, "arguments": args}}


def _output(model: FakeModel, message: dict[str, Any], tools: list[dict[str, Any]]) -> str:
    """What the model writes for `message`: the template's rendering of it after the generation prompt."""
    prompt = chat_build(model, USER, tools).prompt
    full = chat_build(model, USER + [message], tools, add_generation_prompt=False).prompt
    assert full.startswith(prompt[: -len(">>>")]) and full.endswith("<|eot_id|>")
    return full[len(prompt): -len("<|eot_id|>")]


def test_the_template_text_picks_the_dialect(model: FakeModel, read_template: Callable[[str], str]) -> None:
    source = read_template(NAME)
    assert detect_format(source).id == "functionary-v3.2"
    assert detect_format(source.replace(">>>all", ">>>everyone")).id != "functionary-v3.2"
    build = chat_build(model, USER, [WEATHER, TIME])
    assert build.format == "functionary-v3.2"
    assert build.prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n>>>")  # test-chat.cpp basic()


def test_the_template_renders_what_the_parser_expects(model: FakeModel) -> None:
    """The template's own turns are exactly the texts the parse tests use."""
    assert _output(model, {"role": "assistant", "content": None, "tool_calls": [_call(0)]}, [WEATHER, TIME]) == SINGLE
    assert _output(model, {"role": "assistant", "content": None, "tool_calls": [_call(0), _call(1)]},
                   [WEATHER, TIME]) == PARALLEL
    assert _output(model, {"role": "assistant", "content": "Let me check.", "tool_calls": [_call(0)]},
                   [WEATHER, TIME]) == MIXED


@pytest.mark.parametrize(("raw", "content", "calls"), [
    ("all\nHello, world!\nWhat's up?", "Hello, world!\nWhat's up?", []),
    ('special_function\n{"arg1": 1}', "", [("special_function", '{"arg1": 1}')]),
    ("all\nHello, world!\nnono\nWhat's up?>>>special_function\n{\"arg1\": 1}\n", "Hello, world!\nnono\nWhat's up?",
     [("special_function", '{"arg1": 1}')]),
    ('special_function\n{"arg1": 1} \n                    ', "", [("special_function", '{"arg1": 1}')]),
])
def test_llama_cpp_expectations(model: FakeModel, raw: str, content: str, calls: list[tuple[str, str]]) -> None:
    build = chat_build(model, USER, [SPECIAL_TOOL])
    message = chat_parse(raw, build.format, build.parser)
    assert message.content == content
    assert [(c.name, c.arguments) for c in message.tool_calls] == calls


def test_without_tools_a_call_is_content(model: FakeModel) -> None:
    build = chat_build(model, USER)
    assert build.format == "functionary-v3.2" and build.grammar is None
    assert chat_parse("all\nHi!", build.format, build.parser).content == "Hi!"
    message = chat_parse(SINGLE, build.format, build.parser)
    assert message.content == SINGLE and not message.tool_calls


@pytest.mark.parametrize("raw", [SINGLE, PARALLEL, MIXED, 'all\nUse a >> b, not >>>all\nfine', CODE + "\n>>>" + SINGLE])
def test_streaming_never_shows_a_marker_or_a_recipient(model: FakeModel, raw: str) -> None:
    build = chat_build(model, USER, [WEATHER, TIME, PYTHON_TOOL])
    final = chat_parse(raw, build.format, build.parser)
    parser = ChatStreamParser(build.format, build.parser)
    for k, c in enumerate(raw):
        deltas = parser.feed(c)
        shown = parser.message
        assert final.content.startswith(shown.content), (raw[: k + 1], shown.content)
        assert ">>>" not in shown.content and "all\n" not in shown.content and "get_" not in shown.content
        for delta in deltas:  # a call is announced only once its recipient line is whole
            if delta.name is not None:
                assert raw[: k + 1].endswith(delta.name + "\n"), raw[: k + 1]
    parser.finish()
    assert parser.message.content == final.content
    assert [(c.name, c.arguments) for c in parser.message.tool_calls] == \
        [(c.name, c.arguments) for c in final.tool_calls]


def test_python_gets_raw_code(model: FakeModel) -> None:
    build = chat_build(model, USER, [PYTHON_TOOL])
    message = chat_parse(CODE, build.format, build.parser)
    assert [(c.name, c.arguments) for c in message.tool_calls] == [
        ("python", '{"code": "# This is a program:\\nprint(\'hey\')"}')]
    partial = chat_parse(CODE, build.format, build.parser, partial=True)
    assert [c.arguments for c in partial.tool_calls] == ['{"code": "# This is a program:\\nprint(\'hey\')']
    # a past python call renders as the raw code the model writes, and reads back
    past = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "python", "arguments": {"code": "print('hey')"}}}]}
    text = _output(model, past, [PYTHON_TOOL])
    assert text == "python\nprint('hey')"
    back = chat_parse(text, build.format, build.parser)
    assert [(c.name, c.arguments) for c in back.tool_calls] == [("python", '{"code": "print(\'hey\')"}')]


def test_content_and_raw_code_stream_in_linear_time(model: FakeModel) -> None:
    """Doubling the code doubles the characters parsed (the stream parser's fast path applies)."""
    build = chat_build(model, USER, [PYTHON_TOOL])
    works = []
    for reps in (1, 2, 4):
        body = 'def f(x):\n    return "x=" + str(x)  # é, 名前\n' * 40 * reps
        text = "all\n" + "Let me run it. " * 20 * reps + ">>>python\n" + body
        parser = ChatStreamParser(build.format, build.parser)
        for k in range(0, len(text), 3):
            parser.feed(text[k: k + 3])
        parser.finish()
        assert parser.message.tool_calls[0].arguments == json.dumps({"code": body}, ensure_ascii=False)
        works.append(parser.work)
    assert works[2] < 2.5 * works[1] < 6.25 * works[0]


def test_required_grammar_accepts_the_templates_calls(model: FakeModel) -> None:
    build = chat_build(model, USER, [WEATHER, TIME], tool_choice="required")
    assert not build.grammar_lazy
    grammar = Grammar.from_gbnf(build.grammar)
    for text in (SINGLE, PARALLEL, MIXED, 'get_weather\n{"city":"Paris"}\n>>>get_time\n{"tz": "CET"}'):
        assert grammar.accepts(text), text
    for text in ("all\nJust text.", 'get_weather\n{"town": "Paris"}', 'rm_rf\n{"city": "Paris"}',
                 'get_weather\n{\n        "city": "Paris"\n}', 'get_weather {"city": "Paris"}', ""):
        assert not grammar.accepts(text), text
    one = Grammar.from_gbnf(chat_build(model, USER, [WEATHER, TIME], tool_choice="required",
                                       parallel_tool_calls=False).grammar)
    assert one.accepts(SINGLE) and one.accepts(MIXED) and not one.accepts(PARALLEL)


def test_required_grammar_allows_raw_python(model: FakeModel) -> None:
    grammar = Grammar.from_gbnf(chat_build(model, USER, [PYTHON_TOOL, TIME], tool_choice="required").grammar)
    assert grammar.accepts(CODE) and grammar.accepts('python\n{"code": "print(1)"}')
    assert grammar.accepts("python\nprint(1)>>>get_time\n{\"tz\": \"CET\"}")
    assert not grammar.accepts("python\n{print(1)}") and not grammar.accepts('get_time\nprint(1)')


@pytest.mark.parametrize(("output", "at"), [
    (SINGLE, 0),
    (PARALLEL, 0),
    (MIXED, MIXED.index("get_weather")),
    ('>>>get_time\n{"tz": "CET"}', 3),
    ("all\nHello, world!\nWhat's up?", None),
    ("all\nget_weather\nis what I would call.", None),
    ('all\nI may not call >>>rm_rf\n{"city": "Paris"}', None),
])
def test_auto_grammar_fires_on_a_recipient_that_names_a_tool(model: FakeModel, output: str, at: int | None) -> None:
    build = chat_build(model, USER, [WEATHER, TIME])
    assert build.grammar_lazy and not build.trigger_words
    start = grammar_start(build, output)
    assert start == at
    if start is not None:
        assert Grammar.from_gbnf(build.grammar).accepts(output[start:])


def test_auto_grammar_without_parallel_calls_allows_one(model: FakeModel) -> None:
    build = chat_build(model, USER, [WEATHER, TIME], parallel_tool_calls=False)
    grammar = Grammar.from_gbnf(build.grammar)
    assert grammar_start(build, PARALLEL) == 0
    assert grammar.accepts(SINGLE) and not grammar.accepts(PARALLEL)


def test_response_format_starts_after_the_all_recipient(model: FakeModel) -> None:
    schema = {"type": "json_schema", "json_schema": {"schema": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}
    build = chat_build(model, USER, response_format=schema)
    grammar = Grammar.from_gbnf(build.grammar)
    assert not build.grammar_lazy and grammar.accepts('all\n{"a": 1}') and not grammar.accepts('{"a": 1}')
    assert chat_parse('all\n{"a": 1}', build.format, build.parser).content == '{"a": 1}'
    # with tools and tool_choice="auto": a call, or the JSON answer after "all\n"
    both = Grammar.from_gbnf(chat_build(model, USER, [WEATHER], response_format=schema).grammar)
    assert both.accepts('all\n{"a": 1}') and both.accepts(SINGLE) and not both.accepts('{"a": 1}')


# Assistant turns of MeetKai's reference conversation for this format (MeetKai/functionary,
# tests/prompt_test_v3.llama3.txt): what the model is trained to write after the prompt's ">>>".
MEETKAI = [
    ("all\nJames Kaplan is the Co-Founder and CEO of MeetKai Inc.",
     "James Kaplan is the Co-Founder and CEO of MeetKai Inc.", []),
    ('all\nI will get the price of 2 cars and compare>>>get_car_price\n{"car_name": "Song"}'
     '>>>get_car_price\n{"car_name": "Tang"}', "I will get the price of 2 cars and compare",
     [("get_car_price", {"car_name": "Song"}), ("get_car_price", {"car_name": "Tang"})]),
    ('get_weather\n{"location": "Hanoi"}', "", [("get_weather", {"location": "Hanoi"})]),
    ("all\nI'll use code interpreter to handle this>>>python\nl=[int('0'),int('1'),int('2'),int('3'),int('4'),"
     "int('5')]\nl.remove(3.6)", "I'll use code interpreter to handle this",
     [("python", {"code": "l=[int('0'),int('1'),int('2'),int('3'),int('4'),int('5')]\nl.remove(3.6)"})]),
    ("all\nI will fix the code>>>python\nl.remove(round(3.6))\nl", "I will fix the code",
     [("python", {"code": "l.remove(round(3.6))\nl"})]),
]
CAR, LOCATION = ({"type": "function", "function": {
    "name": name, "description": name,
    "parameters": {"type": "object", "properties": {key: {"type": "string"}}, "required": [key]}}}
    for name, key in (("get_car_price", "car_name"), ("get_weather", "location")))


@pytest.mark.parametrize(("raw", "content", "calls"), MEETKAI)
def test_meetkai_reference_turns_parse(model: FakeModel, raw: str, content: str, calls: list[Any]) -> None:
    build = chat_build(model, USER, [CAR, LOCATION, PYTHON_TOOL])
    message = chat_parse(raw, build.format, build.parser)
    assert message.content == content
    assert [(c.name, json.loads(c.arguments)) for c in message.tool_calls] == calls


def test_meetkai_reference_history_renders_as_trained(model: FakeModel) -> None:
    """Calls, raw python code and tool results in the history render exactly as MeetKai's reference."""
    def turn(k: int) -> dict[str, Any]:
        _, content, calls = MEETKAI[k]
        return {"role": "assistant", "content": content, "tool_calls": [
            {"id": f"c{k}{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)]}

    history = [
        {"role": "user", "content": "is the car Song more expensive than car Tang?"}, turn(1),
        {"role": "tool", "tool_call_id": "c10", "content": '{"price": {"price": "$25000"}}'},
        {"role": "tool", "tool_call_id": "c11", "content": '{"price": {"price": "$20000"}}'},
        {"role": "user", "content": "Given the list of strings: '0','1','2','3','4','5' remove the number in the "
                                    "list that is close to 3.6 the most"}, turn(3),
        {"role": "tool", "tool_call_id": "c30", "content": "ValueError: list.remove(x): x not in list"}, turn(4),
    ]
    prompt = chat_build(model, history, [CAR, LOCATION]).prompt
    header = "<|start_header_id|>{}<|end_header_id|>\n\n"
    user, assistant, tool = (header.format(r) for r in ("user", "assistant", "tool"))
    assert prompt[prompt.index(user):] == (
        f"{user}is the car Song more expensive than car Tang?<|eot_id|>{assistant}>>>{MEETKAI[1][0]}<|eot_id|>"
        f'{tool}{{"price": {{"price": "$25000"}}}}<|eot_id|>{tool}{{"price": {{"price": "$20000"}}}}<|eot_id|>'
        f"{user}Given the list of strings: '0','1','2','3','4','5' remove the number in the list that is close to "
        f"3.6 the most<|eot_id|>{assistant}>>>{MEETKAI[3][0]}<|eot_id|>"
        f"{tool}ValueError: list.remove(x): x not in list<|eot_id|>{assistant}>>>{MEETKAI[4][0]}<|eot_id|>"
        f"{assistant}>>>")


def test_tool_results_render_as_tool_turns(model: FakeModel) -> None:
    history = USER + [
        {"role": "assistant", "content": None, "tool_calls": [_call(0), _call(1)]},
        {"role": "tool", "tool_call_id": "call0", "content": "Sunny, 22 degrees"},
        {"role": "tool", "tool_call_id": "call1", "content": "12:00"},
    ]
    prompt = chat_build(model, history, [WEATHER, TIME]).prompt
    assert prompt.endswith(
        "<|start_header_id|>assistant<|end_header_id|>\n\n" + ">>>" + PARALLEL + "<|eot_id|>"
        "<|start_header_id|>tool<|end_header_id|>\n\nSunny, 22 degrees<|eot_id|>"
        "<|start_header_id|>tool<|end_header_id|>\n\n12:00<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n>>>")
