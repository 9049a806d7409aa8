"""Find a template's tool-call syntax in its probe renderings (`probe`): a `Dialect`.

A call is a sequence of parts: literal text and slots (the function name, the
call id, the call's index, the arguments). The arguments are either one JSON
object or a list of key/value pairs written with the template's own
delimiters (``<parameter=K>V</parameter>``, ``<arg_key>K</arg_key><arg_value>V``,
``K:<|"|>V<|"|>``, ``K='V'``, ...). Comparing the one-call and two-call
renderings splits the text around the calls into the section's start and end,
each call's start and end, and the separator between calls; the reasoning
probe gives the thinking block's start and end. Nothing here is specific to a
model family: a template that renders calls some other way is reported as not
derivable (`derive_dialect` returns None with the reason logged).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace

from llamactypes.chat.derive.probe import (
    CONTENT, IDS, KEYS, NAMES, NUMBERS, STRINGS, THINKING, USER_TEXT, Renderings, common_prefix,
)
from llamactypes.chat.formats._json import Scan, scan_object

__all__ = ["Dialect", "KeyValues", "Part", "derive_dialect"]

logger = logging.getLogger("llamactypes")

#: Stands for the key in a value's end text (templates that close ``<city>`` with ``</city>``).
ECHO = "\x00"

#: Part kinds: literal text and the slots of a call.
LIT, NAME, ID, INDEX, ARGS = "lit", "name", "id", "index", "args"


@dataclass(frozen=True)
class Part:
    """One piece of a call: ``Part("lit", text)`` or a slot (``name``, ``id``, ``index``, ``args``)."""

    kind: str
    text: str = ""


@dataclass(frozen=True)
class KeyValues:
    """Arguments written as pairs: ``key_open K key_close V value_end``, pairs joined by `pair_sep`.

    String values are raw text up to the value's end, or quoted with `quote`
    (``'"'``: a JSON string literal); other values are JSON. When the key's
    closing text says the value's type (``string="true">``), `string_close` is
    the one for strings and `key_close` the one for other values. `ECHO` in
    `value_end` stands for the key (``<city>Paris</city>``).
    """

    key_open: str
    key_close: str
    value_end: str
    pair_sep: str
    quote: str = ""
    string_close: str = ""

    def end_for(self, key: str) -> str:
        """The text that ends the value of `key`."""
        return self.value_end.replace(ECHO, key)


@dataclass(frozen=True)
class Dialect:
    """Everything a derived format needs to parse and constrain one template's calls."""

    section_open: str
    section_close: str
    call: tuple[Part, ...]
    call_sep: str
    args: KeyValues | None  # None: one JSON object
    parallel: bool
    think: tuple[str, str] | None
    pretty_json: bool  # the template writes arguments with newlines (keep the converter's whitespace)
    wrappers: tuple[str, ...] = ()  # markers around a plain answer (<|open|>response<|sep|>, <|role_end|>): no content
    prompt_tail: str = ""  # the marker the generation prompt ends with, when nothing else uses it (<|CHATBOT_TOKEN|>)

    @property
    def opener(self) -> str:
        """The text that starts a tool-call block (non-empty, no surrounding whitespace)."""
        first = self.call[0].text if self.call and self.call[0].kind == LIT else ""
        return (self.section_open + first).strip() if self.section_open.strip() else first.strip()


class _Fail(Exception):
    pass


def _common_suffix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[len(a) - 1 - i] == b[len(b) - 1 - i]:
        i += 1
    return i


def _tag_prefix(a: str, b: str) -> int:
    """Common prefix length of `a` and `b`, not ending inside a ``<...>`` or ``[...]`` marker."""
    p = common_prefix(a, b)
    head = a[:p]
    for open_, close in (("<", ">"), ("[", "]")):
        k = head.rfind(open_)
        if k >= 0 and head.rfind(close) < k:
            p = min(p, k)
    return p


def _tag_suffix(a: str, b: str) -> int:
    """Common suffix length of `a` and `b`, not starting inside a ``<...>`` or ``[...]`` marker."""
    n = _common_suffix(a, b)
    tail = a[len(a) - n:]
    for open_, close in (("<", ">"), ("[", "]")):
        k = tail.find(close)
        if k >= 0 and not (0 <= tail.find(open_) < k):
            start = tail.find(open_, k)
            n = min(n, len(tail) - start if start >= 0 else 0)
            tail = a[len(a) - n:]
    return n


def _json_args(text: str, start: int, index: int) -> tuple[int, int] | None:
    """Span of the JSON object holding call `index`'s probe arguments, searched from `start`."""
    key = text.find(json.dumps(KEYS[0]), start)
    if key < 0:
        return None
    want = {KEYS[0]: STRINGS[index], KEYS[1]: NUMBERS[index]}
    brace = text.rfind("{", start, key)
    while brace >= 0:
        scan = scan_object(text, brace)
        if scan.status is Scan.OK:
            try:
                if json.loads(text[brace: scan.end]) == want:
                    return brace, scan.end
            except ValueError:
                pass
        brace = text.rfind("{", start, brace)
    return None


def _find(text: str, needle: str, start: int) -> int:
    i = text.find(needle, start)
    if i < 0:
        raise _Fail(f"{needle!r} not found")
    return i


def _kv_layout(text: str, start: int, index: int) -> tuple[int, int, dict[str, str | int]]:
    """Span of the key/value pairs of call `index` (from its first key to the end of its last value)."""
    k1 = _find(text, KEYS[0], start)
    v1 = _find(text, STRINGS[index], k1)
    k2 = _find(text, KEYS[1], v1)
    v2 = _find(text, str(NUMBERS[index]), k2)
    return k1, v2 + len(str(NUMBERS[index])), {"k1": k1, "v1": v1, "k2": k2, "v2": v2}


def _slots(text: str, start: int, index: int, kv: KeyValues | None) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the slots of probe call `index` in `text` after `start`, in order.

    Key/value arguments span from their first key's opening to their last value's end.
    """
    if kv is None:
        span = _json_args(text, start, index)
        if span is None:
            raise _Fail("arguments object not found")
        a0, a1 = span
    else:
        a0, a1, _ = _kv_layout(text, start, index)
        if not text.startswith(kv.key_open, a0 - len(kv.key_open)) or not text.startswith(kv.end_for(KEYS[1]), a1):
            raise _Fail("the pairs of another call are written differently")
        a0, a1 = a0 - len(kv.key_open), a1 + len(kv.end_for(KEYS[1]))
    slots = [(a0, a1, ARGS)]
    for needle, kind in ((NAMES[index], NAME), (IDS[index], ID)):
        pos = text.find(needle, start)
        while pos >= 0:
            end = pos + len(needle)
            if not any(s < end and pos < e for s, e, _ in slots) and (kind != ID or pos < a1 + 200):
                slots.append((pos, end, kind))
            pos = text.find(needle, end)
    slots.sort()
    if not any(k == NAME for _, _, k in slots):
        raise _Fail("function name not found")
    return slots


def _parts(text: str, slots: list[tuple[int, int, str]]) -> tuple[str, list[Part], str]:
    """(literal before, parts from the first slot to the last, literal after)."""
    parts: list[Part] = []
    for n, (s, e, kind) in enumerate(slots):
        if n:
            between = text[slots[n - 1][1]: s]
            if between:
                parts.append(Part(LIT, between))
        parts.append(Part(kind))
    return text[: slots[0][0]], parts, text[slots[-1][1]:]


def _merge(first: list[Part], second: list[Part]) -> list[Part]:
    """The parts of two calls as one pattern; literals that differ only in a number become INDEX."""
    if len(first) != len(second):
        raise _Fail("the two calls have different shapes")
    merged: list[Part] = []
    for a, b in zip(first, second):
        if a == b:
            merged.append(a)
            continue
        if a.kind != LIT or b.kind != LIT:
            raise _Fail("the two calls have different shapes")
        p = common_prefix(a.text, b.text)
        while p and a.text[p - 1].isdigit():
            p -= 1
        s = _common_suffix(a.text[p:], b.text[p:])
        mid_a, mid_b = a.text[p: len(a.text) - s], b.text[p: len(b.text) - s]
        if not (mid_a.isdigit() and mid_b.isdigit()):
            raise _Fail(f"calls differ in {a.text!r} / {b.text!r}")
        merged += [Part(LIT, a.text[:p])] if p else []
        merged.append(Part(INDEX))
        merged += [Part(LIT, a.text[len(a.text) - s:])] if s else []
    return merged


def _key_values(text: str, start: int) -> KeyValues:
    """The pair syntax of call 0's arguments."""
    _, _, at = _kv_layout(text, start, 0)
    k1, v1, k2, v2 = at["k1"], at["v1"], at["k2"], at["v2"]
    kv_string, kv_number = text[k1 + len(KEYS[0]): v1], text[k2 + len(KEYS[1]): v2]
    quote, string_close = "", ""
    if kv_string != kv_number:
        quote = kv_string[len(kv_number):] if kv_string.startswith(kv_number) else ""
        if not quote or not text.startswith(quote, v1 + len(STRINGS[0])):
            quote, string_close = "", kv_string  # the key's closing text names the value's type
    between = text[v1 + len(STRINGS[0]) + len(quote): k2].replace(KEYS[0], ECHO)
    before = text[start:k1]
    after = text[v2 + len(str(NUMBERS[0])):].replace(KEYS[1], ECHO, 1)
    key_open = between[len(between) - _tag_suffix(between, before):]
    rest = between[: len(between) - len(key_open)]
    value_end = rest[: _tag_prefix(rest, after)]
    if not (value_end or rest[len(value_end):] or key_open):
        raise _Fail("values have no delimiter")
    if ECHO in key_open + rest[len(value_end):]:
        raise _Fail("the key is repeated outside the value's end")
    return KeyValues(key_open, kv_number, value_end, rest[len(value_end):], quote, string_close)


def _last_unique_marker(before: str) -> str:
    """The shortest run of markers ending `before` that occurs once in the assistant's turn.

    ``<think>`` in ``...assistant\n<think>``, but ``<|open|>think<|sep|>`` in
    ``...<|sep|><|open|>think<|sep|>`` where ``<|sep|>`` alone is everywhere.
    """
    turn = before[before.rfind(USER_TEXT) + len(USER_TEXT):] if USER_TEXT in before else before
    k = len(turn)
    while True:
        k = turn.rfind("<", 0, k)
        if k < 0:
            return turn[turn.rfind("<"):]
        if turn.count(turn[k:]) == 1:
            return turn[k:]


def _think(r: Renderings, opener: str) -> tuple[str, str] | None:
    """The thinking block's start and end, from the reasoning probes (with content, with a call)."""
    closes, opens = [], []
    for probe, follower in ((r.reasoning, CONTENT), (r.reasoning_call, opener)):
        if probe is None or THINKING not in probe.full or not follower:
            continue
        full = probe.full
        t = full.rindex(THINKING)
        c = full.find(follower, t)
        if c < 0:
            continue
        closes.append(full[t + len(THINKING): c].strip())
        before = full[:t].rstrip()  # the start is the marker (or word) just before the thinking text
        opened = probe.opened.strip()
        written = probe.output[: probe.output.find(THINKING)].strip() if THINKING in probe.output else ""
        if written and not written.endswith(CONTENT):  # what the turn itself writes before the thinking text
            open_ = written
        elif opened and (before.endswith(opened) or probe.output.lstrip().startswith(THINKING)):  # the prompt opens it
            open_ = probe.opened.strip()
        elif before.endswith(">"):
            open_ = _last_unique_marker(before)
        else:
            open_ = before.split()[-1] if before.split() else ""
        opens.append(open_)
    opened = r.one_call.opened.strip() if r.one_call else ""
    if not closes and re.fullmatch(r"<([\w:.-]+)>", opened):  # the prompt opens a block no turn shows
        return opened, "</" + opened[1:]
    if not closes:
        return None
    close = closes[0]
    if len(closes) == 2:
        close = closes[0][: _tag_prefix(closes[0], closes[1])].strip() or min(closes, key=len)
    open_ = min(opens, key=len)
    return (open_, close) if open_ and close and open_ != close else None


def _wrappers(lead: str, turn_end: str, think: tuple[str, str] | None) -> tuple[str, ...]:
    """The markers a plain answer is wrapped in: what the turn writes before the answer and its end.

    Split into single markers (``<|close|>response<|sep|><|close|>message<|sep|>`` gives two), since a
    model stops at the first one that is a stop token; text with spaces (instructions a template appends)
    and the thinking tags themselves are not among them.
    """
    pieces = re.split(r"(?<=>)(?=<)", lead.strip()) + re.split(r"(?<=>)(?=<)", turn_end.strip())
    kept = [p.strip() for p in pieces if re.fullmatch(r"\S*<\S*>", p.strip()) and p.strip() not in (think or ())]
    return tuple(dict.fromkeys(kept))


def derive_dialect(r: Renderings) -> Dialect | None:
    """The dialect the probe renderings show, or None (reason logged) when it cannot be read."""
    try:
        return _derive(r)
    except _Fail as exc:
        logger.debug("no derived tool-call dialect: %s", exc)
        return None


def _derive(r: Renderings) -> Dialect:
    one = r.one_call.output if r.one_call else ""
    if NAMES[0] not in one:
        raise _Fail("the template does not render tool calls")
    lead = ""
    if r.content is not None and CONTENT in r.content.output:
        lead = r.content.output[: r.content.output.index(CONTENT)]
    start = len(lead) if lead and one.startswith(lead) else 0
    json_mode = _json_args(one, start, 0) is not None
    args = None if json_mode else _key_values(one, start)
    before, parts, after = _parts(one, _slots(one, start, 0, args))
    before = before[start:]
    section_open, call_open, call_close, section_close, sep = "", before, after, "", ""
    parallel = False
    two = r.two_calls.output if r.two_calls else ""
    if NAMES[1] in two:
        try:
            s0 = _slots(two, start, 0, args)
            s1 = _slots(two, s0[-1][1], 1, args)
            b0, p0, _ = _parts(two, s0)
            _, p1, a1 = _parts(two, s1)
            middle = two[s0[-1][1]: s1[0][0]]
            parts = _merge(p0, p1)
            b0 = b0[start:]
            call_open = b0[len(b0) - _tag_suffix(b0, middle):]
            rest = middle[: len(middle) - len(call_open)]
            call_close = rest[: _tag_prefix(rest, a1)]
            section_open, section_close = b0[: len(b0) - len(call_open)], a1[len(call_close):]
            sep, parallel = rest[len(call_close):], True
        except _Fail as exc:
            logger.debug("parallel calls not derived: %s", exc)
    call = ([Part(LIT, call_open)] if call_open else []) + parts + ([Part(LIT, call_close)] if call_close else [])
    first = (section_open + call_open).split()
    think = _think(r, first[0] if first else "")
    dialect = Dialect(
        section_open=section_open.lstrip(), section_close=section_close.rstrip(), call=tuple(call),
        call_sep=sep, args=args, parallel=parallel, think=think,
        pretty_json=json_mode and any("\n" in one[a:b] for a, b, kind in _slots(one, start, 0, None) if kind == ARGS),
        wrappers=_wrappers(lead, r.turn_end, think),
    )
    if not dialect.opener or dialect.call[0].kind != LIT and not dialect.section_open.strip():
        raise _Fail("a call does not start with a marker")
    return replace(dialect, prompt_tail=_prompt_tail(r, dialect))


def _prompt_tail(r: Renderings, dialect: Dialect) -> str:
    """The marker the generation prompt ends with, if no part of the dialect uses it.

    A model may write it again at the start of its output (Command R+'s ``<|CHATBOT_TOKEN|>``);
    a thinking tag, or a marker calls or answers are written with (Kimi-K3's ``<|sep|>``), is no such one.
    """
    m = re.search(r"<[^<>\s]+>(?=\s*$)", r.content.prompt) if r.content else None
    if m is None:
        return ""
    texts = [dialect.section_open, dialect.section_close, dialect.call_sep, *dialect.wrappers, *(dialect.think or ())]
    texts += [p.text for p in dialect.call]
    if dialect.args is not None:
        texts += [dialect.args.key_open, dialect.args.key_close, dialect.args.value_end, dialect.args.string_close]
    if any(m.group() in t for t in texts) or re.search(r"think", m.group(), re.IGNORECASE):
        return ""
    return m.group()
