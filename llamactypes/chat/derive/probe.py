"""Render a template with marker values and cut out what the assistant itself writes.

A template shows how its model writes a tool call only by rendering one. We
render small conversations whose names, keys, values and ids are unlikely
marker strings (``zfn_alpha``, ``zk_one``, ...), then cut the assistant's own
text out of the rendering: what follows the generation prompt (the longest
common prefix with a rendering of the same history ending in
``add_generation_prompt``), minus the end-of-turn text (learnt from a plain
content answer). The analyzer (`analyze`) finds the markers in these texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llamactypes.chat.template import ChatTemplate
from llamactypes.errors import ChatTemplateError

__all__ = ["Probe", "Renderings", "common_prefix", "turn_start", "probe_template", "sentinel_call", "SENTINEL_TOOLS"]

NAMES = ("zfn_alpha", "zfn_beta")
KEYS = ("zk_one", "zk_two")
STRINGS = ("zv_one", "zv_two")
NUMBERS = (4242, 4343)
IDS = ("zidaaaa01", "zidaaaa02")  # nine alphanumerics: Mistral templates refuse anything else
CONTENT = "zcontent_x"
THINKING = "zthink_text"

USER_TEXT = "zquestion"
_USER = {"role": "user", "content": USER_TEXT}
_VALUES = NAMES + STRINGS + tuple(str(n) for n in NUMBERS) + (CONTENT, THINKING)


def _tool(name: str) -> dict[str, Any]:
    properties = {KEYS[0]: {"type": "string"}, KEYS[1]: {"type": "integer"}}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "probe",
            "parameters": {"type": "object", "properties": properties, "required": list(KEYS)},
        },
    }


SENTINEL_TOOLS = [_tool(NAMES[0]), _tool(NAMES[1])]


def sentinel_call(index: int, n_args: int = 2) -> dict[str, Any]:
    """The probe call number `index` (0 or 1) with its first `n_args` arguments."""
    args = {KEYS[0]: STRINGS[index], KEYS[1]: NUMBERS[index]}
    args = dict(list(args.items())[:n_args])
    return {"id": IDS[index], "type": "function", "function": {"name": NAMES[index], "arguments": args}}


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of `a` and `b`."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def turn_start(prompt: str, full: str, first: str = "") -> tuple[int, str]:
    """Where the assistant's text starts in `full`, the rendering of the same history plus its turn.

    Normally right after the common prefix with `prompt` (the generation
    prompt). When the prompt goes on past that, the cut moves back to the start
    of the marker it fell in (no marker is split); and when the prompt's last
    markers reappear later in `full` (a template that adds instructions after
    the history only while generating), the turn starts after them, if that is
    before `first` (a text the turn holds). Returns
    (start, what the prompt opened that `full` does not show, e.g. ``<think>``).
    """
    cut = common_prefix(prompt, full)
    if cut < len(prompt):
        k = prompt.rfind("<", 0, cut)
        if k >= 0 and prompt.rfind(">", 0, cut) < k:
            cut = k
        limit = full.find(first, cut) if first else len(full)
        k = prompt.find("<", cut)
        while k >= 0 and limit >= 0:
            tail = prompt[k:]
            found = full.find(tail, cut, limit)
            if found >= 0 and tail.strip() != tail.strip()[:2]:
                return found + len(tail), ""
            k = prompt.find("<", k + 1)
    return cut, prompt[cut:]


def turn_end_at(output: str, end: str, last: int, shortest: int = 1) -> int:
    """Where the turn ends in `output`: at `end` (the end-of-turn text) or its longest tail found after `last`.

    A tail starts at a marker or a word and is at least `shortest` characters
    long; one that starts with a marker it holds again later is passed over
    (see `_repeats_first_marker`). ``len(output)`` when none is found.
    """
    for k in range(len(end) - min(shortest, len(end)) + 1):
        if k and (end[k] != "<" and not end[k - 1].isspace() or _repeats_first_marker(end[k:])):
            continue
        stop = output.find(end[k:], last)
        if stop >= 0:
            return stop
    return len(output)


def _repeats_first_marker(tail: str) -> bool:
    """Whether `tail` starts with a ``<...>`` marker that it holds again later.

    Such a tail starts in the middle of a run of markers, at one that closes
    each of them (Kimi-K3's ``<|sep|>`` in ``<|close|>tools<|sep|><|close|>message<|sep|>``):
    cutting the turn there would leave that closing marker to the text before.
    """
    if not tail.startswith("<") or ">" not in tail:
        return False
    first = tail[: tail.index(">") + 1]
    return first in tail[len(first):]


@dataclass(frozen=True)
class Probe:
    """One assistant turn as the template renders it: the generation prompt's tail and the output."""

    prompt: str  # the whole prompt with the generation prompt
    full: str  # the whole rendering ending with the assistant turn
    output: str  # what the model writes after the prompt (end of turn removed)
    opened: str  # what the generation prompt adds that the rendered turn does not repeat


@dataclass(frozen=True)
class Renderings:
    """The probes the analyzer reads; a field is None when the template refused that turn."""

    content: Probe | None
    one_call: Probe | None
    two_calls: Probe | None
    one_arg: Probe | None
    content_and_call: Probe | None
    reasoning: Probe | None
    reasoning_call: Probe | None
    turn_end: str


def _render(template: ChatTemplate, messages: list[dict[str, Any]], gen: bool, **kwargs: Any) -> str | None:
    try:
        return template.render(messages, tools=SENTINEL_TOOLS, add_generation_prompt=gen, **kwargs)
    except ChatTemplateError:
        return None


def _probe(template: ChatTemplate, assistant: dict[str, Any], turn_end: str, **kwargs: Any) -> Probe | None:
    prompt = _render(template, [_USER], True, **kwargs)
    full = _render(template, [_USER, assistant], False, **kwargs)
    if prompt is None or full is None:
        return None
    first = next((v for v in (THINKING, CONTENT, NAMES[0]) if v in full), "")
    cut, opened = turn_start(prompt, full, first)
    output = full[cut:]
    end = turn_end.strip()
    if end:  # the turn ends at the end-of-turn text (or its longest tail) after the last marker value
        last = max(output.rfind(s) + len(s) for s in _VALUES)
        output = output[: turn_end_at(output, end, last, shortest=3)]
    return Probe(prompt, full, output, opened)


def probe_template(template: ChatTemplate) -> Renderings:
    """Render the probe turns of `template` (see the module docstring)."""
    content_turn = {"role": "assistant", "content": CONTENT}
    plain = _probe(template, content_turn, "")
    turn_end = ""
    if plain is not None and CONTENT in plain.output:
        turn_end = plain.output[plain.output.rindex(CONTENT) + len(CONTENT) :]
        plain = Probe(plain.prompt, plain.full, plain.output[: len(plain.output) - len(turn_end)], plain.opened)
        turn_end = turn_end if turn_end.strip() else ""

    def turn(calls: list[dict[str, Any]], content: str = "", **extra: Any) -> Probe | None:
        message = {"role": "assistant", "content": content, "tool_calls": calls, **extra}
        return _probe(template, message, turn_end)

    thinking = {"role": "assistant", "content": CONTENT, "reasoning_content": THINKING}
    return Renderings(
        content=plain,
        one_call=turn([sentinel_call(0)]),
        two_calls=turn([sentinel_call(0), sentinel_call(1)]),
        one_arg=turn([sentinel_call(0, 1)]),
        content_and_call=turn([sentinel_call(0)], CONTENT),
        reasoning=_probe(template, thinking, turn_end, enable_thinking=True),
        reasoning_call=_probe(template, {**thinking, "content": "", "tool_calls": [sentinel_call(0)]}, turn_end,
                              enable_thinking=True),
        turn_end=turn_end,
    )
