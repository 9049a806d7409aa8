"""`DerivedFormat`: a `ChatFormat` built from a `Dialect` read off a template's renderings.

It parses (and partially parses, for streams) calls written part by part as the
dialect says, builds the grammar that constrains calls to the tools' schemas,
and writes calls as text. Literal matching is whitespace-tolerant: a run of
whitespace in the template's text matches any run (or none) in the output,
since models do not always copy the template's newlines; the grammar still
asks for the template's exact text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.derive.probe import common_prefix
from llamactypes.chat.derive.analyze import ARGS, ECHO, ID, INDEX, LIT, NAME, Dialect, KeyValues
from llamactypes.chat.derive.nested import child_tags
from llamactypes.chat.formats._grammar import GrammarBuilder, literal
from llamactypes.chat.formats._json import Scan, json_item, param_value, scan_value, skip_ws
from llamactypes.chat.formats._literal import LiteralSyntax, scan_literal
from llamactypes.chat.formats.base import (
    Block, BlockStatus, Call, ChatFormat, held_suffix, object_arguments, startswith_partial,
)
from llamactypes.chat.types import ParserConfig
from llamactypes.limits import DEFAULT_LIMITS

__all__ = ["DerivedFormat"]

_NAME_MAX = DEFAULT_LIMITS.tool_call_name_chars  # a longer name is no name: the block is kept as content
_KEY_MAX = DEFAULT_LIMITS.tool_call_key_chars
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,%d}" % _NAME_MAX)
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,%d}" % _NAME_MAX)
_INDEX = re.compile(r"[0-9]{1,6}")
_CDATA = ("<![CDATA[", "]]>")
_LIT_CHUNKS = re.compile(r"\s+|(?<=[\]}])(?=\S)")


def match_lit(text: str, i: int, lit: str) -> tuple[bool | None, int]:
    """Match `lit` at `i`, whitespace runs matching any whitespace: (True, end), (None, _) cut short, (False, _).

    Whitespace may also follow a closing bracket (Command R+'s list closes ``]```` `` in the template,
    ``]\n```` `` as models write it)."""
    chunks = [c for c in _LIT_CHUNKS.split(lit) if c]
    for chunk in chunks:
        i = skip_ws(text, i)
        piece = text[i: i + len(chunk)]
        if piece != chunk:
            return (None if len(piece) < len(chunk) and chunk.startswith(piece) else False), i
        i += len(chunk)
    if not chunks or lit[-1].isspace():
        i = skip_ws(text, i)
    return True, i


class DerivedFormat(ChatFormat):
    """The tool-call dialect of one template, derived by rendering it (see `llamactypes.chat.derive`)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        digest = hashlib.sha256(repr(dialect).encode()).hexdigest()[:12]
        self.id = f"derived-{digest}"  # type: ignore[misc]
        self.think_tags = dialect.think  # type: ignore[misc]
        self.pretty_json = dialect.pretty_json  # type: ignore[misc]
        self.start_markers = (dialect.opener.split()[0],)  # type: ignore[misc]
        if dialect.section_close.strip() and not dialect.section_open.strip():
            # A close with no open (Gemma 4's <|tool_response>) may end the turn after trailing content.
            self.hidden_markers = (dialect.section_close.strip(),)  # type: ignore[misc]
        if dialect.wrappers:  # the markers around a plain answer are no content
            self.hidden_markers = (*self.hidden_markers, *dialect.wrappers)  # type: ignore[misc]
        texts = [dialect.section_open, dialect.section_close] + [p.text for p in dialect.call if p.kind == LIT]
        if dialect.args is not None:
            texts += [dialect.args.key_open, dialect.args.key_close, dialect.args.string_close]
            texts += dialect.args.value_end.split(ECHO)
        specials = [t.strip() for t in texts if t.strip()] + list(dialect.think or ())
        self.special_markers = tuple(dict.fromkeys(specials))  # type: ignore[misc]
        self._literals = _literal_syntax(dialect.args)
        #: What comes before a child tag, where a value ends with its key's close tag (MiniMax-M3's
        #: ``]<]minimax[>[</city>``): nested values may be written as child tags (see `nested`).
        self._child_ns: str | None = None
        close_tag = f"</{ECHO}>"
        if dialect.args is not None and close_tag in dialect.args.value_end:
            self._child_ns = dialect.args.value_end[: dialect.args.value_end.index(close_tag)]
        head = re.match(r"<[^<>\s]+>", dialect.think[0]) if dialect.think else None
        self._think_head = head.group() if head and head.group() != dialect.think[0].strip() else ""
        # An index written right after the name (`NAME:0`) makes, with the name, the id the template gives a call.
        kinds = [p.kind for p in dialect.call]
        self._index_id = ID not in kinds and any(
            a.kind == NAME and b.kind == LIT and _ID.fullmatch(b.text) is not None and c.kind == INDEX
            for a, b, c in zip(dialect.call, dialect.call[1:], dialect.call[2:]))
        first = dialect.call[0].text if dialect.call[0].kind == LIT else ""
        self._call_open = first.strip()
        self._after_args = self._lit_after_args()
        self._empty_args = _overlap(self._lit_before_args(), self._after_args)
        self._bare_call = ""  # a call may come without its section's opener (Kimi-K2's <|tool_call_begin|> alone)
        if dialect.section_open.strip() and self._call_open.startswith("<"):
            self._bare_call = self._call_open.split()[0]
            self.start_markers = (*self.start_markers, self._bare_call)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"DerivedFormat({self.id})"

    def _lit_after_args(self) -> str:
        call = self.dialect.call
        for k, part in enumerate(call):
            if part.kind == ARGS:
                rest = [p.text for p in call[k + 1:] if p.kind == LIT]
                return rest[0] if rest else self.dialect.section_close
        return ""

    def _lit_before_args(self) -> str:
        call = self.dialect.call
        for k, part in enumerate(call):
            if part.kind == ARGS:
                return call[k - 1].text if k and call[k - 1].kind == LIT else ""
        return ""

    def detect(self, source: str) -> bool:
        return False

    def structural_chars(self) -> frozenset[str]:
        d = self.dialect
        texts = [p.text for p in d.call if p.kind == LIT] + [d.section_open, d.section_close, d.call_sep]
        if d.args is not None:
            texts += [d.args.key_open, d.args.key_close, d.args.string_close, d.args.pair_sep, d.args.quote]
            texts += d.args.value_end.split(ECHO)
        chars = {chunk[0] for text in texts for chunk in text.split()}
        return super().structural_chars() | chars

    def supports_thinking(self, source: str) -> bool:
        return self.think_tags is not None

    def hidden_for(self, config: ParserConfig) -> tuple[str, ...]:
        """Also the thinking tags, when thinking is read as reasoning: after the thinking block a stray
        one (Gemma 4's ``<channel|>``, an empty ``<|channel>thought`` block) is no content."""
        if not config.reasoning or self.think_tags is None:
            return self.hidden_markers
        marker = re.compile(r"\S*<[^<>\s]+>\S*")
        return (*self.hidden_markers, *(t.strip() for t in self.think_tags if marker.fullmatch(t.strip())))

    def split_reasoning(self, text: str, config: ParserConfig, partial: bool) -> tuple[str, int | None]:
        """As for any dialect, past the generation prompt's last marker written again (Command R+'s
        ``<|CHATBOT_TOKEN|>``) and a doubled leading marker of the open tag (Gemma 4's
        ``<|channel><|channel>thought``): the first copy is a stray, the block opens at the second."""
        tail = self.dialect.prompt_tail
        if tail:
            i = skip_ws(text, 0)
            again = startswith_partial(text, i, tail)
            if again is None and partial and i < len(text):
                return "", None
            if again:
                k = i + len(tail)
                reasoning, pos = self._split_thinking(text[k:], config, partial)
                return reasoning, None if pos is None else pos + k
        return self._split_thinking(text, config, partial)

    def _split_thinking(self, text: str, config: ParserConfig, partial: bool) -> tuple[str, int | None]:
        head = self._think_head
        if head and config.reasoning and not config.thinking_forced_open:
            assert self.think_tags is not None
            i = skip_ws(text, 0)
            if text.startswith(head, i):
                opens = startswith_partial(text, i + len(head), self.think_tags[0])
                if opens is None and partial:
                    return "", None
                if opens:
                    k = i + len(head)
                    reasoning, pos = super().split_reasoning(text[k:], config, partial)
                    return reasoning, None if pos is None else pos + k
        return super().split_reasoning(text, config, partial)

    # -- writing ---------------------------------------------------------------
    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        d = self.dialect
        written = []
        for index, c in enumerate(calls):
            fn = c["function"]
            args = fn["arguments"]
            if isinstance(args, str):
                args = json.loads(args) if args.strip() else {}
            out = []
            for part in d.call:
                if part.kind == LIT:
                    out.append(part.text)
                elif part.kind == NAME:
                    out.append(fn["name"])
                elif part.kind == ID:
                    out.append(c.get("id") or self.new_id())
                elif part.kind == INDEX:
                    out.append(str(index))
                else:
                    out.append(self._args_text(args))
            written.append("".join(out))
        return d.section_open + d.call_sep.join(written) + d.section_close

    def _args_text(self, args: dict[str, Any]) -> str:
        kv = self.dialect.args
        if kv is None:
            return json.dumps(args, ensure_ascii=False)
        pairs = []
        for key, value in args.items():
            close = kv.key_close
            if isinstance(value, str):
                text = json.dumps(value, ensure_ascii=False) if kv.quote == '"' else kv.quote + value + kv.quote
                close = kv.string_close or close
            else:
                text = json.dumps(value, ensure_ascii=False)
            pairs.append(f"{kv.key_open}{key}{close}{text}{kv.end_for(key)}")
        return kv.pair_sep.join(pairs)

    def tool_instructions(self, example: str, parallel: bool = False) -> str:
        return f"To call a function, reply in this exact format:\n{example}"

    # -- grammar ---------------------------------------------------------------
    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        d = self.dialect
        calls = [self._call_rule(builder, i, tool["function"]) for i, tool in enumerate(tools)]
        call = builder.alternatives("fmt-call", calls)
        ws = builder.ws()
        head = literal(d.section_open) + " " if d.section_open else ""
        tail = " " + literal(d.section_close) if d.section_close else ""
        if parallel and d.parallel:
            sep = literal(d.call_sep) + " " if d.call_sep else ""
            return f"{head}{call} ( {sep}{call} )*{tail} {ws}"
        if parallel:  # one call per block, blocks in a row
            block = builder.rule("fmt-block", f"{head}{call}{tail}")
            return f"{block} ( {ws} {block} )* {ws}"
        return f"{head}{call}{tail} {ws}"

    def _call_rule(self, builder: GrammarBuilder, i: int, fn: dict[str, Any]) -> str:
        out = []
        for part in self.dialect.call:
            if part.kind == LIT:
                out.append(literal(part.text))
            elif part.kind == NAME:
                out.append(literal(fn["name"]))
            elif part.kind == ID:
                out.append("[A-Za-z0-9_]{1,32}")
            elif part.kind == INDEX:
                out.append("[0-9]{1,3}")
            elif self.dialect.args is None:
                out.append(builder.schema(fn["parameters"], f"tool-{i}-args"))
            else:
                out.append(self._pairs_rule(builder, i, fn["parameters"], self.dialect.args))
        return " ".join(out)

    def _pairs_rule(self, builder: GrammarBuilder, i: int, params: dict[str, Any], kv: KeyValues) -> str:
        required = set(params.get("required") or ())
        items, all_required = [], True
        for j, (name, schema) in enumerate((params.get("properties") or {}).items()):
            schema = schema if isinstance(schema, dict) else {}
            stop = kv.end_for(name) or kv.pair_sep or self._after_args
            close = kv.key_close
            if schema.get("type") == "string" and kv.quote != '"':
                body = builder.until(f"fmt-raw-{hashlib.sha1((kv.quote or stop).encode()).hexdigest()[:8]}",
                                     kv.quote or stop)
                value = f"{literal(kv.quote)} {body} {literal(kv.quote)}" if kv.quote else body
                close = kv.string_close or close
            else:
                value = builder.schema(schema, f"tool-{i}-p{j}")
            pair = f"{literal(kv.key_open + name + close)} {value}"
            if kv.value_end:
                pair += " " + literal(kv.end_for(name))
            if items and kv.pair_sep:
                sep = literal(kv.pair_sep)
                pair = f"{sep} {pair}" if all_required else f"( {sep} )? {pair}"
            items.append(pair if name in required else f"( {pair} )?")
            all_required = all_required and name in required
        return " ".join(items) if items else '""'

    # -- parsing ---------------------------------------------------------------
    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        d = self.dialect
        i = pos
        if d.section_open.strip() and not (marker == self._bare_call and text.startswith(marker, pos)):
            found, i = match_lit(text, i, d.section_open)
            if not found:
                return Block.partial() if found is None else Block.fail("malformed tool-call section")
        calls: list[Call] = []
        while True:
            block, i = self._call(text, i, config, partial)
            if block.status is not BlockStatus.DONE:
                block.calls[:0] = calls
                return block
            calls += block.calls
            more, j = self._next_call(text, i, partial)
            if more is None:
                return Block.partial(calls)
            if not more:
                break
            i = j
        if d.section_close.strip():
            found, j = match_lit(text, i, d.section_close)
            if found is None and partial:
                return Block.partial(calls)
            if found:  # a whole output may end before the close (a stop token such as <|tool_response>)
                i = j
        return Block(BlockStatus.DONE, calls, skip_ws(text, i))

    def _next_call(self, text: str, i: int, partial: bool) -> tuple[bool | None, int]:
        """Whether another call of the same section follows at `i` (None: cannot tell yet)."""
        d = self.dialect
        if not d.parallel:
            return False, i
        j = i
        if d.call_sep.strip():
            found, j = match_lit(text, i, d.call_sep)
            if not found:
                return (None if found is None and partial else False), i
            if not self._call_open:  # a separator, then a call that starts with its name
                return True, j
        if not self._call_open:
            return False, i
        found, _ = match_lit(text, j, self._call_open)
        if found is None:
            return (None if partial else False), i
        return found, j

    def _call(self, text: str, i: int, config: ParserConfig, partial: bool) -> tuple[Block, int]:
        """One call at `i`: (DONE block and where it ends) or a PARTIAL/FAIL block."""
        name, call_id, start, name_at = "", "", i, i
        args: Block | None = None
        for n, part in enumerate(self.dialect.call):
            if part.kind == LIT:
                found, at = match_lit(text, i, part.text)
                if not found and args is not None and self._call_open and all(
                        p.kind == LIT for p in self.dialect.call[n:]):
                    # the closing text left out before the next call (Kimi-K2 without <|tool_call_end|>)
                    nxt, _ = match_lit(text, i, self._call_open)
                    if nxt:
                        break
                    if nxt is None and partial:
                        return Block.partial([args.calls[0]]), i
                i = at
                if not found:
                    if found is None and args is not None and not partial:
                        break  # the output ended in the call's closing text: the call is whole
                    if found is None:
                        return Block.partial([args.calls[0]] if args else []), i
                    return Block.fail(f"expected {part.text.strip()!r} in a tool call"), i
                continue
            if part.kind == ARGS:
                if not name:
                    return Block.fail("arguments before the function name"), i
                args = self._arguments(text, i, name, call_id, config)
                if args.status is not BlockStatus.DONE:
                    return args, i
                i = args.end
                continue
            regex = {NAME: _NAME, ID: _ID, INDEX: _INDEX}[part.kind]
            m = regex.match(text, i)
            if m is None or m.end() >= len(text):
                return (Block.partial() if len(text) - i <= _NAME_MAX else Block.fail("overlong name")), i
            value, i = m.group(), m.end()
            if part.kind == NAME:
                if name and value != name:
                    return Block.fail("the call names two functions"), i
                if not config.knows(value):
                    return Block.fail(f"unknown tool {value!r}"), i
                name, name_at = value, m.start()
            elif part.kind == ID:
                call_id = value
            elif self._index_id and not call_id:  # Kimi-K2's id is the call's head: functions.NAME:INDEX
                while name_at > start and _ID.match(text[name_at - 1]):
                    name_at -= 1
                call_id = text[name_at:i]
        if args is None:
            args = Block(BlockStatus.DONE, [Call(name, "{}", call_id)], i)
        return Block(BlockStatus.DONE, args.calls, i), i

    def _arguments(self, text: str, i: int, name: str, call_id: str, config: ParserConfig) -> Block:
        kv = self.dialect.args
        if kv is None:
            return object_arguments(text, skip_ws(text, i), name, call_id)
        types = config.param_types.get(name, {})
        items: list[str] = []
        first = True
        while True:
            end_found, _ = match_lit(text, i, self._after_args) if self._after_args.strip() else (False, i)
            if end_found:
                return Block(BlockStatus.DONE, [Call(name, "{" + ", ".join(items) + "}", call_id)], i)
            if first and self._empty_args:  # no parameters: the texts around them share a marker
                k = self._empty_args
                found, _ = (match_lit(text, i - k, self._after_args) if text[i - k: i] == self._after_args[:k]
                            else (False, i))
                if found:
                    return Block(BlockStatus.DONE, [Call(name, "{}", call_id)], i - k)
                if found is None:
                    return Block.partial([Call(name, "{", call_id)])
            opener = (kv.key_open if first else kv.pair_sep + kv.key_open)
            found, j = match_lit(text, i, opener) if opener.strip() else (True, i)
            if end_found is None or found is None:
                return Block.partial([Call(name, "{" + ", ".join(items), call_id)])
            if not found:
                if not self._after_args.strip():
                    return Block(BlockStatus.DONE, [Call(name, "{" + ", ".join(items) + "}", call_id)], i)
                return Block.fail("malformed tool-call arguments")
            status, i, item, pending = self._pair(text, j, kv, types)
            if status is None:
                return Block.partial([Call(name, "{" + ", ".join(items + ([pending] if pending else [])), call_id)])
            if not status:
                return Block.fail("malformed tool-call argument")
            items.append(item)
            first = False

    def _pair(self, text: str, i: int, kv: KeyValues, types: dict[str, str]) -> tuple[bool | None, int, str, str]:
        """One ``key key_close value value_end`` at `i`: (status, end, JSON item, streamable prefix)."""
        status, i, key, kind = self._key(text, i, kv, types)
        if not status:
            return status, i, "", ""
        status, end, value, pending = self._value(text, i, kv, key, kind)
        if not status:
            return status, i, "", pending
        i = end
        if kv.value_end.strip():
            found, i = match_lit(text, i, kv.end_for(key))
            if not found:
                return (None if found is None else False), i, "", ""
        return True, i, json_item(key, value), ""

    @staticmethod
    def _key(text: str, i: int, kv: KeyValues, types: dict[str, str]) -> tuple[bool | None, int, str, str | None]:
        """The key at `i` and its closing text: (status, where the value starts, key, the value's type)."""
        closes = [kv.key_close] + ([kv.string_close] if kv.string_close else [])
        head = closes[0][: common_prefix(*closes)] if len(closes) == 2 else closes[0]
        head = head.split()[0] if head.split() else head  # its first word: whitespace inside may differ
        k = text.find(head, i, i + _KEY_MAX) if head else -1
        if k < 0:
            return (None if len(text) - i < _KEY_MAX else False), i, "", None
        key = text[i:k].strip()
        if not key:
            return False, i, "", None
        for close in closes:
            found, j = match_lit(text, k, close)
            if found is None:
                return None, i, key, None
            if found:  # a typed closing text says the value's type
                kind = ("string" if close == kv.string_close else "json") if kv.string_close else types.get(key)
                return True, j, key, kind
        return False, i, key, None

    def _value_ends(self, text: str, end: int, kv: KeyValues, key: str) -> bool:
        """Whether a value may end at `end`: the output ends, or the value's end, the next pair or the
        call's closing text follows (`12abc` is no number followed by junk but a raw value)."""
        rest = text[skip_ws(text, end):]
        stops = (kv.end_for(key), kv.pair_sep + kv.key_open, self._after_args)
        return not rest or any(s.strip() and (rest.startswith(s.strip()) or s.strip().startswith(rest))
                               for s in stops)

    def _value(self, text: str, i: int, kv: KeyValues, key: str, kind: str | None) -> tuple[bool | None, int, Any, str]:
        """The value at `i`: (status, where it ends, the value, streamable prefix of its JSON item)."""
        if self._literals is not None:  # the template's own literals (Python, Gemma 4), nested ones included
            status, end, value = scan_literal(text, i, self._literals)
            if status is Scan.PARTIAL:
                return None, i, None, ""
            if status is Scan.OK and self._value_ends(text, end, kv, key):
                return True, end, value, ""
        if kv.quote and startswith_partial(text, i, kv.quote) is None:
            return None, i, None, ""  # the opening quote is still being written
        if kv.quote and text.startswith(kv.quote, i):
            if kv.quote == '"':
                status, end = scan_value(text, i)
                if status is not Scan.OK:
                    return (None if status is Scan.PARTIAL else False), i, None, ""
                return True, end, json.loads(text[i:end]), ""
            end = text.find(kv.quote, i + len(kv.quote))
            if end < 0:
                return None, i, None, ""
            return True, end + len(kv.quote), text[i + len(kv.quote): end], ""
        if "</" in kv.value_end:  # an XML-like dialect: a CDATA section holds text that may look like tags
            cdata = self._cdata(text, i, kv, key, kind)
            if cdata is not None:
                return cdata
        end_text = kv.end_for(key)
        stops = [s for s in (end_text, kv.pair_sep + kv.key_open, self._after_args) if s.strip()]
        stops = stops[:1] if end_text.strip() else stops
        hits = [h for s in stops for h in (text.find(s, i), text.find(s.strip(), i)) if h >= 0]
        if hits:
            end = min(hits)
            nested = child_tags(text[i:end], self._child_ns, kind) if self._child_ns is not None else None
            if nested is not None and kind != "string":  # an object or array written as child tags
                return True, end, nested, ""
            return True, end, param_value(text[i:end], kind), ""
        pending = ""
        if kind == "string" and i < len(text):
            body = text[i:]
            body = body[: len(body) - held_suffix(body, stops + [s.strip() for s in stops])]
            pending = json_item(key, body)[:-1]
        return None, i, None, pending

    def _cdata(
        self, text: str, i: int, kv: KeyValues, key: str, kind: str | None,
    ) -> tuple[bool | None, int, Any, str] | None:
        """A value written as ``<![CDATA[...]]>`` (MiniCPM5: text holding ``</param>``) as `_value` returns it,
        or None when the value at `i` is no CDATA section."""
        j = skip_ws(text, i)
        opens = startswith_partial(text, j, _CDATA[0])
        if opens is None and j < len(text):
            return None, i, None, ""
        if not opens:
            return None
        close = text.find(_CDATA[1], j + len(_CDATA[0]))
        if close < 0:
            return None, i, None, ""
        end = close + len(_CDATA[1])
        if not self._value_ends(text, end, kv, key):
            return None
        return True, end, param_value(text[j + len(_CDATA[0]): close], kind), ""


def _overlap(before: str, after: str) -> int:
    """How much of `after` the end of `before` already holds, when that is a marker's text.

    MiniMax-M3 writes a call with no parameters as ``">]<]minimax[>[</invoke>``: the text before the
    arguments (``">]<]minimax``) and the one after them (``<]minimax[>[</invoke>``) share ``<]minimax``.
    0 when they share nothing that holds a letter (a shared quote or bracket is no marker).
    """
    for k in range(min(len(before), len(after)) - 1, 2, -1):
        if before.endswith(after[:k]) and re.search(r"<\S*[A-Za-z]", after[:k]):
            return k
    return 0


def _literal_syntax(kv: KeyValues | None) -> LiteralSyntax | None:
    """How values are written where a template quotes strings its own way, not as JSON.

    Single quotes are Python's call syntax (LFM2): both quotes, with escapes.
    Another quote marker (Gemma 4's ``<|"|>``) holds raw text; JSON strings are read too.
    """
    if kv is None or kv.quote in ("", '"'):
        return None
    if kv.quote == "'":
        return LiteralSyntax({"'": True, '"': True})
    return LiteralSyntax({kv.quote: False, '"': True})
