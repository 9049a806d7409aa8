"""llama.cpp's own parser expectations (tests/test-chat.cpp), replayed through our chat layer (issue 13).

Each `peg_tester` case of the pinned tree (read as data by
`tests.fixtures.llama_cpp_chat_cases`) is built with `chat_build` for its
template (a fake model; the case's tools, ``enable_thinking``,
``parallel_tool_calls``, ``tool_choice``, ``json_schema``), and the model's
output text is parsed with the chosen format and parser, whole and as a
stream. We compare what llama.cpp's ``assert_msg_equals`` compares: content
and reasoning with surrounding whitespace stripped, the calls' names,
arguments as parsed JSON, and ids where the case expects one.

llama.cpp's defaults apply: ``enable_thinking`` true, ``parallel_tool_calls``
false, ``reasoning_format`` none (our ``reasoning=False`` parser: no thinking
split). Continuation/prefill cases are out of scope; partial cases use
``partial=True``. Differences are listed in KNOWN with the reason and run as
strict xfails, so a fix shows up as a failure to remove the entry.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest

from llamactypes.chat import ChatBuild, ParsedMessage, ParserConfig, chat_build, chat_parse
from llamactypes.paths import source_dir
from tests.fixtures.cpp_tokens import CppSyntaxError, tokenize
from tests.fixtures.llama_cpp_chat_cases import CppCase, read_cases
from tests.unit.chat.checks import assert_same_message, stream
from tests.unit.chat.conftest import FakeModel

SOURCE = source_dir() / "tests" / "test-chat.cpp"
if not SOURCE.is_file():
    pytest.skip(f"llama.cpp source tree not fetched ({SOURCE} missing)", allow_module_level=True)

READING = read_cases(SOURCE)
TEMPLATES = source_dir() / "models" / "templates"
WHITESPACE = " \t\n\r\f\v"  # C's isspace, what llama.cpp's string_strip trims

_NONE_OPENER = ("reasoning_format none: llama.cpp puts the thinking opener the generation prompt wrote back in front "
                "of the content; we return the model's text as written")
_HARMONY_NONE = "reasoning_format none: our harmony format always reads the analysis channel as reasoning"
_APRIEL = ("llama.cpp counts the generation prompt's 'Here are my reasoning steps:' as reasoning; we leave out what "
           "the prompt wrote")
_FENCE = ("a response_format answer fenced in ```json ... ```: llama.cpp strips the fence; our grammar never lets the "
          "model write one, so the text is returned as is")
_MUSE = ("a call in a second message after the answer (<|eom|><|start|>assistant to=NAME<|message|>) is not read: "
         "our derived dialect only knows a call opening the output")
_BUILTIN = ("a call to a built-in recipient the request did not declare (container.exec, python): llama.cpp drops "
            "it, we return its text as content")

#: Cases where our answer differs from llama.cpp's, by case id (template:line), with the reason.
KNOWN: dict[str, str] = {
    **dict.fromkeys([
        "Qwen3.5-4B:2156", "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16:2704", "Cohere2MoE:2883",
    ], _NONE_OPENER),
    **dict.fromkeys([
        "openai-gpt-oss-120b:6458",
    ], _HARMONY_NONE),
    **dict.fromkeys([
        "Apriel-1.6-15b-Thinker-fixed:6227", "Apriel-1.6-15b-Thinker-fixed:6235",
    ], _APRIEL),
    **dict.fromkeys([
        "meta-llama-Llama-3.1-8B-Instruct:6318", "mistralai-Ministral-3-14B-Reasoning-2512:2648",
    ], _FENCE),
    **dict.fromkeys([
        "muse-glimmer:6396",
    ], _MUSE),
    **dict.fromkeys([
        "openai-gpt-oss-120b:6563", "openai-gpt-oss-120b:6572",
    ], _BUILTIN),
}


def out_of_scope(case: CppCase) -> str | None:
    """Why a case is not replayed, or None."""
    if case.options.get("continue_final_message", "none") != "none" or not case.options.get(
            "add_generation_prompt", True):
        return "continues a prefilled assistant message (no continuation support)"
    if not (TEMPLATES / f"{case.template}.jinja").is_file():
        return f"template {case.template} is not in the pinned tree"
    return None


def _params() -> list[Any]:
    params = []
    for case in READING.cases:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[case.id])] if case.id in KNOWN else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def build_case(case: CppCase) -> tuple[ChatBuild, ParserConfig]:
    """`chat_build` for the case's request and the parser config its reasoning_format asks for."""
    model = FakeModel((TEMPLATES / f"{case.template}.jinja").read_text(encoding="utf-8"))
    options = case.options
    schema = options.get("json_schema")
    build = chat_build(
        model,
        [m.to_openai() for m in case.messages],
        [t.to_openai() for t in case.tools] or None,
        tool_choice=options.get("tool_choice", "auto"),
        parallel_tool_calls=options.get("parallel_tool_calls", False),
        response_format={"type": "json_schema", "json_schema": {"schema": schema}} if schema is not None else None,
        enable_thinking=options.get("enable_thinking", True),
    )
    parser = build.parser
    if options.get("reasoning_format", "none") == "none":
        parser = dataclasses.replace(parser, reasoning=False)
    return build, parser


def _json(text: str) -> Any:
    """llama.cpp's renormalize_json: the parsed value, or "" for text that is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return ""


def differences(case: CppCase, got: ParsedMessage) -> list[str]:
    """What differs between llama.cpp's expected message and ours (empty: they agree)."""
    want = case.expect
    diffs = []
    if got.content.strip(WHITESPACE) != want.content.strip(WHITESPACE):
        diffs.append(f"content {got.content!r} != {want.content!r}")
    if got.reasoning.strip(WHITESPACE) != want.reasoning_content.strip(WHITESPACE):
        diffs.append(f"reasoning {got.reasoning!r} != {want.reasoning_content!r}")
    ours = [(c.name, _json(c.arguments)) for c in got.tool_calls]
    theirs = [(c.name, _json(c.arguments)) for c in want.tool_calls]
    if ours != theirs:
        diffs.append(f"calls {[(c.name, c.arguments) for c in got.tool_calls]} != {theirs}")
    elif any(w.id and w.id != g.id for w, g in zip(want.tool_calls, got.tool_calls)):
        diffs.append(f"ids {[c.id for c in got.tool_calls]} != {[c.id for c in want.tool_calls]}")
    return diffs


def replay(case: CppCase) -> list[str]:
    """Build, parse whole and as streams; the differences from llama.cpp's expectation."""
    build, parser = build_case(case)
    partial = bool(case.options.get("is_partial"))
    message = chat_parse(case.text, build.format, parser, partial=partial)
    diffs = differences(case, message)
    if not partial:
        for chunk in (1, 5):
            folded = stream(case.text, build.format, parser, chunk)
            try:
                assert_same_message(folded, message)
            except AssertionError:
                diffs.append(f"stream in pieces of {chunk} gives {folded}")
    return [f"format {build.format}: {d}" for d in diffs]


@pytest.mark.parametrize("case", _params())
def test_llama_cpp_case(case: CppCase) -> None:
    reason = out_of_scope(case)
    if reason:
        pytest.skip(reason)
    assert replay(case) == []


def _in_scope() -> list[CppCase]:
    return [c for c in READING.cases if out_of_scope(c) is None]


def test_counts() -> None:
    """Every chain of the file is read or skipped with a reason; the counts in docs/chat.md hold."""
    raw_sites = sum(1 for line in SOURCE.read_text(encoding="utf-8").splitlines()
                    if line.lstrip().split(".test(")[0].isidentifier() and ".test(" in line)
    assert READING.sites == raw_sites
    assert all(s.reason for s in READING.skipped)
    in_scope = _in_scope()
    counts = Counter(out_of_scope(c) or "replayed" for c in READING.cases)
    print(f"\ntest-chat.cpp: {READING.sites} chains, {len(READING.cases)} cases read (loops over templates "
          f"unrolled), {len(READING.skipped)} skipped; {len(in_scope)} replayed, "
          f"{len(in_scope) - sum(c.id in KNOWN for c in in_scope)} agree, {len(KNOWN)} known differences; {counts}")
    assert READING.sites >= 435 and not READING.skipped  # as when this was written: every chain read
    assert set(KNOWN) <= {c.id for c in in_scope}, "KNOWN names a case that is not replayed"
    # Each replayed case outside KNOWN is a test that must pass (KNOWN ones are strict xfails): at least as
    # many agree as when this was written (390 of 401).
    assert len(in_scope) >= 401 and len(in_scope) - len(KNOWN) >= 390
    assert len({c.id for c in READING.cases}) == len(READING.cases)


SNIPPET = r"""
#include "chat.h"
static common_chat_tool special_function_tool{ /* .name = */ "special_function", "I'm special",
    R"({"type": "object", "properties": {"arg1": {"type": "integer"}}})" };
const common_chat_msg message_user{ "user", "Hey there!", {}, {}, "", "", "" };
static common_chat_msg simple_assist_msg(const std::string & content, const std::string & reasoning_content = "",
                                         const std::string & tool_name = "", const std::string & arguments = "",
                                         const std::string & id = "") { return {}; }
static common_chat_msg message_with_tool_calls(const std::string & tool_name, const std::string & arguments) {
    return simple_assist_msg("", "", tool_name, arguments);
}
static void cases(bool detailed_debug) {
    {
        auto tst = peg_tester("models/templates/A.jinja", detailed_debug);
        const std::string call = "<call>" "\x41\u00e9\n";  // adjacent literals, escapes
        tst.test(call + R"x(raw "(text)")x").tools({ special_function_tool })
            .expect(message_with_tool_calls("special_function", "{\"arg1\": 1}")).expect_content("c").run();
        tst.test("x").frobnicate(true).run();
        tst.test(unknown_text).run();
        while (true) { tst.test("in a loop").run(); }
        auto f = [&]() { tst.test("in a lambda").run(); };
    }
    for (const char * path : { "models/templates/B.jinja", "models/templates/C.jinja" }) {
        auto tst = peg_tester(path);
        tst.test("unrolled").enable_thinking(false).reasoning_format(COMMON_REASONING_FORMAT_AUTO).run();
    }
}
"""


def test_reader_reads_exactly_or_says_why() -> None:
    """The reader on a small file: literals, tools, builders, unrolled loops, and each skip with its reason."""
    reading = read_cases(SNIPPET)
    assert reading.sites == 6
    first, *unrolled = reading.cases
    assert first.template == "A" and first.text == '<call>A\u00e9\nraw "(text)"'
    assert first.tools[0].name == "special_function" and first.tools[0].parameters["type"] == "object"
    assert first.expect.content == "c" and first.expect.tool_calls[0].arguments == '{"arg1": 1}'
    assert first.messages[0].to_openai() == {"role": "user", "content": "Hey there!"}
    assert [(c.template, c.options) for c in unrolled] == [
        (t, {"enable_thinking": False, "reasoning_format": "auto"}) for t in ("B", "C")]
    reasons = [s.reason for s in reading.skipped]
    assert reasons == ["unknown modifier .frobnicate()", "unknown name unknown_text", "inside a loop",
                       "inside a lambda"]


def test_reader_refuses_unknown_escapes() -> None:
    with pytest.raises(CppSyntaxError):
        tokenize(r'"\q"')
