"""Raw model outputs per dialect and the message each must parse to.

Most come from llama.cpp's tests/test-chat.cpp (same inputs, same expectations);
each case is also replayed prefix by prefix and as a stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    id: str
    format: str
    raw: str
    content: str = ""
    reasoning: str = ""
    calls: tuple[tuple[str, str], ...] = ()  # (name, exact arguments text)
    ids: tuple[str, ...] = ()  # model-written ids, when the dialect has them
    config: dict[str, Any] = field(default_factory=dict)


SPECIAL = ("special_function", '{"arg1": 1}')
ASSIST = "Hello, world!\nWhat's up?"
THINK = "I'm\nthinking"

PARSE_CASES = [
    # --- Hermes 2 Pro / Qwen 2.5 / Qwen 3 -------------------------------------------------
    Case("hermes-call", "hermes", '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>', calls=(SPECIAL,)),
    Case("hermes-content-call", "hermes", ASSIST + '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>', content=ASSIST, calls=(SPECIAL,)),
    Case("hermes-parallel", "hermes",
         '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
         '<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>',
         calls=(("get_weather", '{"city": "Paris"}'), ("get_time", '{"tz": "CET"}'))),
    Case("hermes-content", "hermes", ASSIST, content=ASSIST),
    Case("hermes-think", "hermes", "<think>" + THINK + "</think>\n\n" + ASSIST, content=ASSIST, reasoning=THINK),
    Case("qwq-forced-open", "hermes", "Let me think about this...\n</think>\nThe answer is 42.",
         content="The answer is 42.", reasoning="Let me think about this...", config={"thinking_forced_open": True}),
    Case("qwq-empty-think", "hermes", "</think>Hello, world!", content="Hello, world!", config={"thinking_forced_open": True}),
    Case("hermes-think-call", "hermes",
         '<think>need weather</think>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
         reasoning="need weather", calls=(("get_weather", '{"city": "Paris"}'),)),
    Case("hermes-string-args", "hermes", '<tool_call>{"name": "get_time", "arguments": "{\\"tz\\": \\"UTC\\"}"}</tool_call>',
         calls=(("get_time", '{"tz": "UTC"}'),)),
    Case("hermes-no-close", "hermes", '<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}',
         calls=(("get_time", '{"tz": "UTC"}'),)),
    # --- Qwen3-Coder XML ------------------------------------------------------------------
    Case("qwen3-coder-call", "qwen3-coder",
         "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>",
         calls=(SPECIAL,), config={"param_types": {"special_function": {"arg1": "integer"}}}),
    Case("qwen3-coder-no-open", "qwen3-coder",
         "Let me call it.\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>",
         content="Let me call it.\n", calls=(SPECIAL,)),
    Case("qwen3-coder-parallel", "qwen3-coder",
         "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>\n"
         "<tool_call>\n<function=special_function_with_opt>\n<parameter=arg1>\n1\n</parameter>\n"
         "<parameter=arg2>\n2\n</parameter>\n</function>\n</tool_call>",
         calls=(SPECIAL, ("special_function_with_opt", '{"arg1": 1, "arg2": 2}'))),
    Case("qwen3-coder-string", "qwen3-coder",
         "<think>plan</think>\n<tool_call>\n<function=write>\n<parameter=path>\na.py\n</parameter>\n"
         "<parameter=code>\nprint('hi')\n\nx = \"1\"\n</parameter>\n</function>\n</tool_call>",
         reasoning="plan", calls=(("write", '{"path": "a.py", "code": "print(\'hi\')\\n\\nx = \\"1\\""}'),),
         config={"param_types": {"write": {"path": "string", "code": "string"}}}),
    # --- Llama 3.x ------------------------------------------------------------------------
    Case("llama3-call", "llama3", '{"name": "special_function", "parameters": {"arg1": 1}}', calls=(SPECIAL,)),
    Case("llama3-typed", "llama3", '{"type": "function", "name": "special_function", "parameters": {"arg1": 1}}', calls=(SPECIAL,)),
    Case("llama3-arguments", "llama3", ' {"name": "special_function", "arguments": {"arg1": 1}}', calls=(SPECIAL,)),
    Case("llama3-python-tag", "llama3", 'Sure<|python_tag|>{"name": "special_function", "parameters": {"arg1": 1}}',
         content="Sure", calls=(SPECIAL,)),
    Case("llama3-two", "llama3", '{"name": "get_time", "parameters": {"tz": "UTC"}}; {"name": "get_time", "parameters": {"tz": "CET"}}',
         calls=(("get_time", '{"tz": "UTC"}'), ("get_time", '{"tz": "CET"}'))),
    Case("llama3-json-content", "llama3", '{"city": "Paris"}', content='{"city": "Paris"}'),
    Case("llama3-content", "llama3", ASSIST, content=ASSIST),
    # --- Mistral --------------------------------------------------------------------------
    Case("nemo-call", "mistral-nemo", '[TOOL_CALLS][{"name": "special_function", "arguments": {"arg1": 1}, "id": "123456789"}]',
         calls=(SPECIAL,), ids=("123456789",)),
    Case("nemo-content", "mistral-nemo", ASSIST, content=ASSIST),
    Case("ministral-think-call", "ministral", '[THINK]hmm[/THINK]Sure.[TOOL_CALLS]special_function[ARGS]{"arg1": 1}',
         content="Sure.", reasoning="hmm", calls=(SPECIAL,)),
    Case("ministral-two", "ministral", '[TOOL_CALLS]get_time[ARGS]{"tz": "UTC"}get_weather[ARGS]{"city": "Rome"}',
         calls=(("get_time", '{"tz": "UTC"}'), ("get_weather", '{"city": "Rome"}'))),
    Case("mistral-small-ids", "mistral-small",
         '[TOOL_CALLS]special_function[CALL_ID]abcdefghi[ARGS]{"arg1": 1}[TOOL_CALLS]get_time[CALL_ID]bbcdefghi[ARGS]{}',
         calls=(SPECIAL, ("get_time", "{}")), ids=("abcdefghi", "bbcdefghi")),
    # --- DeepSeek -------------------------------------------------------------------------
    Case("r1-call", "deepseek-r1",
         "</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n"
         "```json\n{\"arg1\": 1}```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
         calls=(SPECIAL,), config={"thinking_forced_open": True}),
    Case("r1-think", "deepseek-r1", "I'm\nthinking</think>" + ASSIST, content=ASSIST, reasoning=THINK,
         config={"thinking_forced_open": True}),
    Case("r1-no-think", "deepseek-r1",
         "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n"
         "```json\n{\"arg1\": 1}```<｜tool▁call▁end｜><｜tool▁calls▁end｜>", calls=(SPECIAL,)),
    Case("v31-call", "deepseek-v3.1",
         "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"city\": \"XYZCITY\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
         calls=(("get_time", '{"city": "XYZCITY"}'),)),
    Case("v31-think-content-calls", "deepseek-v3.1",
         "REASONING</think>CONTENT<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"city\": \"Paris\"}"
         "<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
         content="CONTENT", reasoning="REASONING",
         calls=(("get_time", '{"city": "Paris"}'), ("get_weather", '{"city": "Paris"}')), config={"thinking_forced_open": True}),
    # --- Command R7B ----------------------------------------------------------------------
    Case("r7b-response", "command-r7b", "<|START_RESPONSE|>" + ASSIST + "<|END_RESPONSE|>", content=ASSIST),
    Case("r7b-think-action", "command-r7b",
         "<|START_THINKING|>I'm\nthinking<|END_THINKING|><|START_ACTION|>[\n"
         '    {"tool_call_id": "0", "tool_name": "special_function", "parameters": {"arg1": 1}}\n]<|END_ACTION|>',
         reasoning=THINK, calls=(SPECIAL,), ids=("0",)),
    # --- GPT-OSS (harmony) ----------------------------------------------------------------
    Case("harmony-final", "gpt-oss", "<|channel|>final<|message|>" + ASSIST, content=ASSIST),
    Case("harmony-commentary", "gpt-oss", "<|channel|>commentary<|message|>" + ASSIST, content=ASSIST),
    Case("harmony-think-final", "gpt-oss",
         "<|channel|>analysis<|message|>I'm\nthinking<|end|><|start|>assistant<|channel|>final<|message|>" + ASSIST,
         content=ASSIST, reasoning=THINK),
    # a stray header with no message before the analysis (llama.cpp's test-chat.cpp): the last header counts
    Case("harmony-stray-header", "gpt-oss",
         "<|channel|>commentary to=assistant<|channel|>analysis<|message|>I'm\nthinking<|end|>"
         "<|start|>assistant<|channel|>final<|message|>" + ASSIST, content=ASSIST, reasoning=THINK),
    Case("harmony-stray-header-call", "gpt-oss",
         '<|channel|>final<|channel|>commentary to=functions.special_function<|message|>{"arg1": 1}',
         calls=(SPECIAL,)),
    Case("harmony-role-recipient", "gpt-oss", ' to=functions.special_function<|channel|>analysis<|message|>{"arg1": 1}', calls=(SPECIAL,)),
    Case("harmony-channel-recipient", "gpt-oss", '<|channel|>analysis to=functions.special_function<|message|>{"arg1": 1}', calls=(SPECIAL,)),
    Case("harmony-constrain", "gpt-oss",
         ' to=functions.special_function<|channel|>analysis <|constrain|>json<|message|>{"arg1": 1}', calls=(SPECIAL,)),
    Case("harmony-think-call", "gpt-oss",
         "<|channel|>analysis<|message|>I'm\nthinking<|end|><|start|>assistant to=functions.special_function"
         '<|channel|>analysis<|message|>{"arg1": 1}', reasoning=THINK, calls=(SPECIAL,)),
    Case("harmony-edit", "gpt-oss",
         "<|channel|>analysis<|message|>Thinking about edit...<|end|><|start|>assistant<|channel|>commentary "
         'to=functions.edit <|constrain|>json<|message|>{"oldString": "if (part < railCount - 1) {", '
         '"newString": "if (part < 4) {", "replaceAll": false}',
         reasoning="Thinking about edit...",
         calls=(("edit", '{"oldString": "if (part < railCount - 1) {", "newString": "if (part < 4) {", "replaceAll": false}'),)),
    # --- Functionary v3.2: what follows the prompt's ">>>" -----------------------------------
    Case("functionary-content", "functionary-v3.2", "all\n" + ASSIST, content=ASSIST),
    Case("functionary-call", "functionary-v3.2", 'special_function\n{"arg1": 1}', calls=(SPECIAL,)),
    Case("functionary-call-trailing-space", "functionary-v3.2", 'special_function\n{"arg1": 1} \n                    ',
         calls=(SPECIAL,)),
    Case("functionary-content-call", "functionary-v3.2",
         "all\nHello, world!\nnono\nWhat's up?>>>special_function\n{\"arg1\": 1}\n",
         content="Hello, world!\nnono\nWhat's up?", calls=(SPECIAL,)),
    Case("functionary-parallel", "functionary-v3.2", 'get_weather\n{"city": "Paris"}>>>get_time\n{"tz": "CET"}',
         calls=(("get_weather", '{"city": "Paris"}'), ("get_time", '{"tz": "CET"}'))),
    Case("functionary-python-raw", "functionary-v3.2", "python\n# This is a program:\nprint('hey')",
         calls=(("python", '{"code": "# This is a program:\\nprint(\'hey\')"}'),),
         config={"tools": ("python", "special_function")}),
    Case("functionary-python-then-call", "functionary-v3.2", "python\nprint(1)\n>>>special_function\n{\"arg1\": 1}",
         calls=(("python", '{"code": "print(1)\\n"}'), SPECIAL), config={"tools": ("python", "special_function")}),
    Case("functionary-python-empty", "functionary-v3.2", "python\n", calls=(("python", '{"code": ""}'),),
         config={"tools": ("python",)}),
    Case("functionary-python-json", "functionary-v3.2", 'python\n{"code": "print(2)"}',
         calls=(("python", '{"code": "print(2)"}'),), config={"tools": ("python",)}),
    Case("functionary-repeated-mark", "functionary-v3.2", '>>>all\nSure.>>>get_time\n{"tz": "UTC"}',
         content="Sure.", calls=(("get_time", '{"tz": "UTC"}'),)),
    Case("functionary-content-after-call", "functionary-v3.2", 'get_time\n{"tz": "UTC"}>>>all\nDone.',
         content="Done.", calls=(("get_time", '{"tz": "UTC"}'),)),
    Case("functionary-no-recipient", "functionary-v3.2", "Hello there, friend.", content="Hello there, friend."),
    # --- generic JSON ---------------------------------------------------------------------
    Case("generic-call", "generic", '{"tool_call": {"name": "special_function", "arguments": {"arg1": 1}}}',
         calls=(SPECIAL,), config={"json_envelope": True}),
    Case("generic-calls", "generic",
         '{"tool_calls": [{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {"city": "Oslo"}}]}',
         calls=(("get_time", "{}"), ("get_weather", '{"city": "Oslo"}')), config={"json_envelope": True}),
    Case("generic-response", "generic", '{"response": "Hello, \\"world\\"!\\nWhat\'s up? \\u00e9\\ud83d\\ude00"}',
         content="Hello, \"world\"!\nWhat's up? \u00e9\U0001F600", config={"json_envelope": True}),
    Case("generic-plain", "generic", ASSIST, content=ASSIST),
    Case("generic-think", "generic", "<think>" + THINK + "</think>" + '{"response": "ok"}', reasoning=THINK,
         content="ok", config={"json_envelope": True}),
]

# Outputs that cannot be tool calls: they must come back as content, never raise.
MALFORMED_CASES = [
    Case("hermes-broken-json", "hermes", 'Hi <tool_call>{"name": "get_time", "arguments": {"tz": }}</tool_call>',
         content='Hi <tool_call>{"name": "get_time", "arguments": {"tz": }}</tool_call>'),
    Case("hermes-unknown-tool", "hermes", '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
         content='<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'),
    Case("hermes-unclosed", "hermes", 'Hi <tool_call>{"name": "get_time", "argu', content='Hi <tool_call>{"name": "get_time", "argu'),
    Case("hermes-not-json", "hermes", "<tool_call>get_time(tz='UTC')</tool_call>", content="<tool_call>get_time(tz='UTC')</tool_call>"),
    Case("hermes-call-then-broken", "hermes",
         '<tool_call>{"name": "get_time", "arguments": {}}</tool_call> and <tool_call>{oops}</tool_call>',
         content="and <tool_call>{oops}</tool_call>", calls=(("get_time", "{}"),)),
    Case("qwen3-coder-unknown", "qwen3-coder", "<tool_call>\n<function=nope>\n</function>\n</tool_call>",
         content="<tool_call>\n<function=nope>\n</function>\n</tool_call>"),
    Case("qwen3-coder-unclosed", "qwen3-coder", "<tool_call>\n<function=get_time>\n<parameter=tz>\nUT",
         content="<tool_call>\n<function=get_time>\n<parameter=tz>\nUT"),
    Case("llama3-unknown", "llama3", '{"name": "nope", "parameters": {}}', content='{"name": "nope", "parameters": {}}'),
    Case("nemo-bad", "mistral-nemo", "[TOOL_CALLS] not json", content="[TOOL_CALLS] not json"),
    Case("ministral-unknown", "ministral", '[TOOL_CALLS]nope[ARGS]{}', content='[TOOL_CALLS]nope[ARGS]{}'),
    Case("r1-truncated", "deepseek-r1", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\"",
         content="<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\""),
    Case("r7b-bad", "command-r7b", "<|START_ACTION|>{}<|END_ACTION|>", content="<|START_ACTION|>{}<|END_ACTION|>"),
    Case("harmony-unknown", "gpt-oss", "<|channel|>commentary to=functions.nope<|message|>{}",
         content="<|channel|>commentary to=functions.nope<|message|>{}"),
    Case("functionary-unknown-tool", "functionary-v3.2", 'all\nHi>>>rm_rf\n{"path": "/"}',
         content='Hi>>>rm_rf\n{"path": "/"}'),
    Case("functionary-broken-json", "functionary-v3.2", 'get_time\n{"tz": }>>>all\nok',
         content='get_time\n{"tz": }>>>all\nok'),
    Case("functionary-truncated", "functionary-v3.2", 'all\nSure.>>>get_time\n{"tz": "UT',
         content='Sure.>>>get_time\n{"tz": "UT'),
    Case("functionary-not-json", "functionary-v3.2", "get_time\ntz=UTC", content="get_time\ntz=UTC"),
    Case("generic-not-json", "generic", "Sure, here you go", content="Sure, here you go", config={"json_envelope": True}),
    Case("generic-truncated-call", "generic", '{"tool_call": {"name": "get_time", "arguments": {"tz"',
         content='{"tool_call": {"name": "get_time", "arguments": {"tz"', config={"json_envelope": True}),
    Case("generic-unknown-key", "generic", '{"answer": 42}', content='{"answer": 42}', config={"json_envelope": True}),
]

#: Tools every case may call (cases with a `tools` config narrow this).
KNOWN_TOOLS = ("special_function", "special_function_with_opt", "get_weather", "get_time", "edit", "write")
