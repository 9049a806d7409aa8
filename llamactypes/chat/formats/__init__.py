"""Tool-call dialects, one module each, and detection of a template's dialect.

`detect_format(source)` walks `FORMATS` in order and returns the first dialect
whose `detect` recognizes the template text (the order matters: more specific
markers first, as in llama.cpp); anything unrecognized uses the generic JSON
format, so every model can call tools.
"""

from __future__ import annotations

from llamactypes.chat.formats.base import ChatFormat
from llamactypes.limits import DEFAULT_LIMITS
from llamactypes.chat.formats.command_r7b import CommandR7BFormat
from llamactypes.chat.formats.deepseek import DeepSeekR1Format, DeepSeekV31Format
from llamactypes.chat.formats.functionary import FunctionaryV32Format
from llamactypes.chat.formats.generic import GenericFormat
from llamactypes.chat.formats.gpt_oss import GptOssFormat
from llamactypes.chat.formats.hermes import HermesFormat
from llamactypes.chat.formats.llama3 import Llama3Format
from llamactypes.chat.formats.mistral import MinistralFormat, MistralNemoFormat, MistralSmallFormat
from llamactypes.chat.formats.qwen3_coder import Qwen3CoderFormat

__all__ = ["FORMATS", "GENERIC", "ChatFormat", "detect_format", "get_format", "register_format"]

GENERIC = GenericFormat()

#: Detection order: the first dialect whose `detect` accepts the template wins.
FORMATS: tuple[ChatFormat, ...] = (
    GptOssFormat(),
    CommandR7BFormat(),
    DeepSeekV31Format(),
    DeepSeekR1Format(),
    MistralSmallFormat(),
    MinistralFormat(),
    MistralNemoFormat(),
    Qwen3CoderFormat(),
    HermesFormat(),
    FunctionaryV32Format(),
    Llama3Format(),
    GENERIC,
)

_BY_ID = {f.id: f for f in FORMATS}
#: Formats derived from templates (`llamactypes.chat.derive`), by id; the oldest go past this many.
_DERIVED: dict[str, ChatFormat] = {}
_MAX_DERIVED = DEFAULT_LIMITS.derived_formats


def register_format(fmt: ChatFormat) -> ChatFormat:
    """Make a derived format findable by its id (`get_format`); returns the registered instance.

    Ids of derived formats are a digest of their dialect, so deriving the same
    template twice gives the same id and the first instance is kept.
    """
    if fmt.id in _BY_ID:
        return _BY_ID[fmt.id]
    known = _DERIVED.setdefault(fmt.id, fmt)
    while len(_DERIVED) > _MAX_DERIVED:
        del _DERIVED[next(iter(_DERIVED))]
    return known


def detect_format(source: str | None) -> ChatFormat:
    """The dialect of a chat template's source text (generic when unknown or None)."""
    if not source:
        return GENERIC
    for fmt in FORMATS:
        if fmt.detect(source):
            return fmt
    return GENERIC


def get_format(format_id: str | ChatFormat) -> ChatFormat:
    """The dialect with this id (as in `ChatBuild.format`); KeyError names the known ids."""
    if isinstance(format_id, ChatFormat):
        return format_id
    fmt = _BY_ID.get(format_id) or _DERIVED.get(format_id)
    if fmt is None:
        raise KeyError(f"unknown chat format {format_id!r}; known: {', '.join(_BY_ID)} and derived-*")
    return fmt
