"""Dialects a template's source names but does not show.

Some templates describe the tools yet never render an assistant's calls (LFM2
and LFM2.5-Instruct keep past calls as plain text), so there is nothing to
derive the syntax from; the model still writes calls its family's way. A
template is recognized here by its source text, as llama.cpp recognizes it,
and gets that family's dialect written down as a `Dialect`, so it is parsed,
constrained and written exactly like a derived one.
"""

from __future__ import annotations

from llamactypes.chat.derive.analyze import ARGS, LIT, NAME, Dialect, KeyValues, Part

__all__ = ["known_dialect"]


def _lfm2(source: str) -> Dialect:
    """LFM2: ``<|tool_call_start|>[f(a=1, b='x'), g()]<|tool_call_end|>``, values as Python literals."""
    return Dialect(
        section_open="<|tool_call_start|>[",
        section_close="]<|tool_call_end|>",
        call=(Part(NAME, ""), Part(LIT, "("), Part(ARGS, ""), Part(LIT, ")")),
        call_sep=", ",
        args=KeyValues(key_open="", key_close="=", value_end="", pair_sep=", ", quote="'"),
        parallel=True,
        think=("<think>", "</think>") if "<think>" in source else None,
        pretty_json=False,
    )


def known_dialect(source: str | None) -> Dialect | None:
    """The dialect of the family whose markers `source` holds, or None."""
    if source and ("List of tools: [" in source or "List of tools: <|tool_list_start|>[" in source):
        return _lfm2(source)
    return None
