"""Mistral dialects, all opened by ``[TOOL_CALLS]``.

* Mistral Nemo: ``[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "a1b2c3d4e"}]``
* Ministral 3 / Magistral / Devstral: ``[TOOL_CALLS]name[ARGS]{...}``, thinking in
  ``[THINK]...[/THINK]``
* Mistral Small 3.2: ``[TOOL_CALLS]name[CALL_ID]a1b2c3d4e[ARGS]{...}``

Mistral templates insist on tool-call ids of exactly nine alphanumerics, so ids
are generated in that shape and ids from other clients (``call_...``) are mapped
to it, consistently for a call and its result, before rendering.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
from collections.abc import Sequence
from typing import Any

from llamactypes.chat.formats._grammar import GrammarBuilder, call_schema, literal
from llamactypes.chat.formats._json import Scan, scan_object, skip_ws
from llamactypes.chat.formats.base import (
    Block,
    BlockStatus,
    Call,
    ChatFormat,
    call_from_object,
    object_arguments,
    scan_call_array,
    startswith_partial,
)
from llamactypes.chat.types import ParserConfig

__all__ = ["MinistralFormat", "MistralNemoFormat", "MistralSmallFormat"]

TOOL_CALLS, ARGS, CALL_ID = "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"
_ALNUM = string.ascii_letters + string.digits
_ID = re.compile(r"[A-Za-z0-9]{9}")
_NAME = re.compile(r"[A-Za-z0-9_.\-]*")
_ID_SCHEMA = {"type": "string", "pattern": "^[a-zA-Z0-9]{9}$"}


def mistral_id(seed: str | None = None) -> str:
    """Nine alphanumerics: random, or derived from `seed` (so a call and its result agree)."""
    if seed is None:
        return "".join(secrets.choice(_ALNUM) for _ in range(9))
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:9])


def _fix_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Map every tool-call id that is not nine alphanumerics to one that is."""
    mapping: dict[str, str] = {}

    def fixed(call_id: str, index: int) -> str:
        if _ID.fullmatch(call_id or ""):
            return call_id
        key = call_id or f"#{index}"
        return mapping.setdefault(key, mistral_id(key))

    out: list[dict[str, Any]] = []
    n_calls = 0
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                calls.append({**call, "id": fixed(call.get("id", ""), n_calls)})
                n_calls += 1
            message["tool_calls"] = calls
        elif message["role"] == "tool":
            message["tool_call_id"] = fixed(message.get("tool_call_id", ""), n_calls - 1)
        out.append(message)
    return out


class _MistralBase(ChatFormat):
    think_tags = None
    start_markers = (TOOL_CALLS,)
    special_markers = (TOOL_CALLS, ARGS, CALL_ID, "[THINK]", "[/THINK]")

    def adapt_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _fix_ids(messages)

    def new_id(self) -> str:
        return mistral_id()


class MistralNemoFormat(_MistralBase):
    """``[TOOL_CALLS]`` followed by a JSON list of calls carrying their ids."""

    id = "mistral-nemo"

    def detect(self, source: str) -> bool:
        return TOOL_CALLS in source and ARGS not in source

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        items = [
            {"name": c["function"]["name"], "arguments": c["function"]["arguments"], "id": c.get("id") or mistral_id()}
            for c in calls
        ]
        return TOOL_CALLS + json.dumps(items, ensure_ascii=False)

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        calls = [
            call_schema(t["function"]["name"], t["function"]["parameters"], extra={"id": _ID_SCHEMA}) for t in tools
        ]
        schema: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}, "minItems": 1}
        if not parallel:
            schema["maxItems"] = 1
        return f"{literal(TOOL_CALLS)} {builder.schema(schema, 'tool-calls')}"

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        i = skip_ws(text, pos + len(marker))
        if i >= len(text):
            return Block.partial()
        keys = {"args_keys": ("arguments",), "id_key": "id"}
        if text[i] == "{":
            scan = scan_object(text, i)
            call, reason = call_from_object(text, scan, config, **keys)
            status, calls, end = scan.status, [call] if call else [], scan.end
        elif text[i] == "[":
            status, calls, end, reason = scan_call_array(text, i, config, **keys)
        else:
            return Block.fail("[TOOL_CALLS] is not followed by JSON")
        if reason or status is Scan.BAD:
            return Block.fail(reason or "invalid JSON after [TOOL_CALLS]")
        if status is Scan.PARTIAL:
            return Block.partial(calls)
        return Block(BlockStatus.DONE, calls, skip_ws(text, end))


class MinistralFormat(_MistralBase):
    """``[TOOL_CALLS]name[ARGS]{json}``, repeated for parallel calls."""

    id = "ministral"
    think_tags = ("[THINK]", "[/THINK]")
    with_call_id = False

    def detect(self, source: str) -> bool:
        return TOOL_CALLS in source and ARGS in source and CALL_ID not in source

    def calls_text(self, calls: Sequence[dict[str, Any]]) -> str:
        out = []
        for c in calls:
            call_id = f"{CALL_ID}{c.get('id') or mistral_id()}" if self.with_call_id else ""
            args = json.dumps(c["function"]["arguments"], ensure_ascii=False)
            out.append(f"{TOOL_CALLS}{c['function']['name']}{call_id}{ARGS}{args}")
        return "".join(out)

    def grammar_root(self, builder: GrammarBuilder, tools: Sequence[dict[str, Any]], parallel: bool) -> str:
        calls = []
        for i, tool in enumerate(tools):
            args = builder.schema(tool["function"]["parameters"], f"tool-{i}-args")
            head = literal(TOOL_CALLS + tool["function"]["name"])
            call_id = f"{literal(CALL_ID)} [a-zA-Z0-9]{{9}} " if self.with_call_id else ""
            calls.append(f"{head} {call_id}{literal(ARGS)} {args}")
        call = builder.alternatives("fmt-call", calls)
        return f"{call} ( {builder.ws()} {call} )*" if parallel else call

    def parse_block(self, text: str, pos: int, marker: str, config: ParserConfig, partial: bool) -> Block:
        calls: list[Call] = []
        i = pos + len(marker)
        while True:
            block = self._one_call(text, i, config)
            if block.status is not BlockStatus.DONE:
                block.calls[:0] = calls
                return block
            calls.extend(block.calls)
            i = skip_ws(text, block.end)
            # Ministral writes further calls as `name[ARGS]...` without a new [TOOL_CALLS].
            name = _NAME.match(text, i).group()
            after = startswith_partial(text, i + len(name), ARGS)
            if name and after:
                continue
            if partial and (after is None or (i + len(name) >= len(text))):
                return Block.partial(calls)
            return Block(BlockStatus.DONE, calls, i)

    def _one_call(self, text: str, i: int, config: ParserConfig) -> Block:
        """``name[CALL_ID]id[ARGS]{json}`` at `i`; DONE when the JSON is complete."""
        n = len(text)
        name = _NAME.match(text, i).group()
        i += len(name)
        call_id = ""
        if startswith_partial(text, i, CALL_ID):
            call_id = _NAME.match(text, i + len(CALL_ID)).group()
            i += len(CALL_ID) + len(call_id)
        found = startswith_partial(text, i, ARGS)
        if found is None or (i >= n):
            return Block.partial()
        if not found and startswith_partial(text, i, CALL_ID) is None:
            return Block.partial()
        if not found or not name:
            return Block.fail("expected name[ARGS] after [TOOL_CALLS]")
        if not config.knows(name):
            return Block.fail(f"unknown tool {name!r}")
        i = skip_ws(text, i + len(ARGS))
        return object_arguments(text, i, name, call_id)


class MistralSmallFormat(MinistralFormat):
    """Mistral Small 3.2: ``[TOOL_CALLS]name[CALL_ID]id[ARGS]{json}``."""

    id = "mistral-small"
    with_call_id = True

    def detect(self, source: str) -> bool:
        return TOOL_CALLS in source and ARGS in source and CALL_ID in source
