"""Does a model read back the calls its own template writes? `round_trip(model)` answers, case by case.

The template renders an assistant turn that calls ``get_weather(city="Paris")``
(alone, twice in parallel, after content, after reasoning); the text the model
would write after the generation prompt is cut out of the rendering and parsed
with the format `chat_build` chose; under ``tool_choice="required"`` the grammar
`chat_build` built must accept that text exactly. The tests run this over every
template of the pinned llama.cpp tree, and ``bench/bench_chat_parse.py`` prints
the count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llamactypes.chat.derive.probe import turn_end_at, turn_start
from llamactypes.errors import ChatTemplateError

__all__ = ["RoundTrip", "round_trip", "WEATHER", "TIME"]


def _tool(name: str, key: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} tool",
            "parameters": {"type": "object", "properties": {key: {"type": "string"}}, "required": [key]},
        },
    }


WEATHER, TIME = _tool("get_weather", "city"), _tool("get_time", "tz")
_CALLS = [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
_USER = {"role": "user", "content": "What is the weather in Paris?"}


@dataclass
class RoundTrip:
    """Per case: True (read back), False (not), None (the template does not render that case)."""

    format: str
    writes_calls: bool
    single: bool | None = None
    parallel: bool | None = None
    content: bool | None = None
    reasoning: bool | None = None
    grammar: bool | None = None  # the required-call grammar accepts the single (and parallel) rendering
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every case the template renders reads back."""
        return self.writes_calls and self.single is True and all(
            v is not False for v in (self.single, self.parallel, self.content, self.reasoning, self.grammar)
        )


def _call(k: int) -> dict[str, Any]:
    name, args = _CALLS[k]
    return {"id": f"call{k}abcd", "type": "function", "function": {"name": name, "arguments": args}}


def _output(template: Any, message: dict[str, Any], think: tuple[str, str] | None, **kwargs: Any) -> str | None:
    """What the model writes for `message` after the generation prompt (None: not rendered as is).

    A prompt that goes on past the rendered turn with a whole (empty) thinking
    block is fine: the model writes what follows it.
    """
    try:
        prompt = template.render([_USER], tools=[WEATHER, TIME], add_generation_prompt=True, **kwargs)
        full = template.render([_USER, message], tools=[WEATHER, TIME], add_generation_prompt=False, **kwargs)
        ended = template.render([_USER, {"role": "assistant", "content": "zzend"}], tools=[WEATHER, TIME],
                                add_generation_prompt=False, **kwargs)
    except ChatTemplateError:
        return None
    first = next((v for v in ("I need the weather.", "Let me check.", "get_weather") if v in full), "")
    cut, opened = turn_start(prompt, full, first)
    opened = opened.strip()
    closed = think is not None and opened.startswith(think[0]) and opened.endswith(think[1])
    thinking = message.get("reasoning_content")
    if think is not None and opened == think[0]:  # the prompt opens the thinking block
        if not thinking:
            return None
        if thinking not in full:  # the template drops past reasoning: the model writes it, then the turn
            full = full[:cut] + f"{thinking}\n{think[1]}\n" + full[cut:]
        opened = ""
    if opened and not closed:  # the prompt opens something the rendered turn does not: no exact output
        return None
    turn_end = ended[ended.rindex("zzend") + 5:].strip() if "zzend" in ended else ""
    out = full[cut:]
    values = ("Paris", "CET", "Let me check.", "I need the weather.")
    last = max(out.rfind(v) + len(v) for v in values)
    content = message.get("content") or ""
    if content and turn_end:
        lo, hi = sorted((out.find(content), out.find("get_weather")))
        if turn_end in out[lo:hi]:  # a turn ends between content and calls: two turns, no one output
            return None
    return out[: turn_end_at(out, turn_end, last)] if turn_end else out


def _reads(build: Any, text: str | None, n: int, content: str = "", reasoning: str = "") -> bool | None:
    from llamactypes.chat.parse import chat_parse

    if text is None or "get_weather" not in text:
        return None
    message = chat_parse(text, build.format, build.parser)
    try:
        calls = [(c.name, json.loads(c.arguments)) for c in message.tool_calls]
    except ValueError:
        return False
    if calls != _CALLS[:n]:
        return False
    if content and not message.content.strip() and message.reasoning.strip() == content:
        return True  # the template writes content next to calls as thinking (harmony's analysis channel)
    return message.content.strip() == content and (not reasoning or message.reasoning.strip() == reasoning)


def round_trip(model: Any) -> RoundTrip:
    """Run every case for `model` (anything `chat_build` accepts) and report."""
    from llamactypes.chat.build import chat_build, template_for
    from llamactypes.grammar import Grammar

    template, caps = template_for(model, True)
    build = chat_build(model, [_USER], [WEATHER, TIME], tool_choice="required")
    result = RoundTrip(build.format, caps.tool_calls and not template.is_fallback)
    if not result.writes_calls:
        return result
    from llamactypes.chat.formats import get_format

    think = get_format(build.format).think_tags
    off = {"enable_thinking": False}  # as chat_build renders without thinking
    single = _output(template, {"role": "assistant", "content": "", "tool_calls": [_call(0)]}, think, **off)
    two = _output(template, {"role": "assistant", "content": "", "tool_calls": [_call(0), _call(1)]}, think, **off)
    mixed = _output(template, {"role": "assistant", "content": "Let me check.", "tool_calls": [_call(0)]}, think, **off)
    thought = _output(template, {"role": "assistant", "content": "", "reasoning_content": "I need the weather.",
                                 "tool_calls": [_call(0)]}, think, enable_thinking=True)
    for stop in build.additional_stops:  # generation stops there: the stop text is not output
        single, two, mixed, thought = (t[: len(t) - len(stop)] if t is not None and t.endswith(stop) else t
                                       for t in (single, two, mixed, thought))
    result.texts = {k: v for k, v in (("single", single), ("parallel", two), ("content", mixed),
                                      ("reasoning", thought)) if v is not None}
    result.single = _reads(build, single, 1)
    if caps.parallel_tool_calls and two is not None and "get_time" in two:
        result.parallel = _reads(build, two, 2)
    if mixed is not None and "Let me check." in mixed:
        result.content = _reads(build, mixed, 1, "Let me check.")
    if thought is not None and "I need the weather." in thought:
        thinking = chat_build(model, [_USER], [WEATHER, TIME], enable_thinking=True)
        result.reasoning = _reads(thinking, thought, 1, reasoning="I need the weather.")
    if single is None and result.reasoning is not None:  # the prompt opens thinking: only that case is exact
        result.single = result.reasoning
    if single is not None and build.grammar and not build.grammar_lazy:
        grammar = Grammar.from_gbnf(build.grammar)
        result.grammar = grammar.accepts(single) and (result.parallel is not True or grammar.accepts(two))
    return result
