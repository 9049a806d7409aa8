"""Every template of the pinned llama.cpp tree reads back the calls it writes (issue 13, point 2).

For each template that renders tool calls: one call, two parallel calls,
content + call and reasoning + call, rendered by the template itself, parse
back to the same names and arguments with the format `chat_build` chose, and
under ``tool_choice="required"`` its grammar accepts the rendered call exactly
(`llamactypes.chat.derive.roundtrip`). Templates that do not yet pass every
case are listed in GAPS and run as strict xfails, so a fix shows up as a
failure to remove the entry, and the count stays honest.
"""

from __future__ import annotations

from typing import Callable

import pytest

from llamactypes.chat import chat_build
from llamactypes.chat.derive import DerivedFormat
from llamactypes.chat.derive.known import known_dialect
from llamactypes.chat.derive.roundtrip import RoundTrip
from tests.unit.chat.conftest import WEATHER_TOOL, FakeModel, template_names

#: Templates with at least one case that does not read back yet (see docs/chat.md).
GAPS: set[str] = set()


@pytest.mark.parametrize("name", template_names())
def test_template_reads_back_its_own_calls(
    name: str, round_trips: dict[str, RoundTrip], read_template: Callable[[str], str]
) -> None:
    if name in GAPS:
        pytest.xfail("known gap: " + name)
    result = round_trips[name]
    if not result.writes_calls:  # generic, unless the source names its family's dialect (LFM2)
        known = known_dialect(read_template(name))
        assert result.format == (DerivedFormat(known).id if known else "generic")
        return
    assert result.single is True, result.texts
    assert result.ok, result


def test_gaps_still_fail(round_trips: dict[str, RoundTrip]) -> None:
    """A gap that got fixed must leave GAPS (the count in docs/chat.md is kept honest)."""
    assert [name for name in sorted(GAPS) if round_trips[name].ok] == []


def test_template_without_calls_says_generic(make_model: Callable[..., FakeModel]) -> None:
    build = chat_build(make_model("google-gemma-2-2b-it"), [{"role": "user", "content": "hi"}], [WEATHER_TOOL])
    assert build.format == "generic"


def test_coverage_count(round_trips: dict[str, RoundTrip]) -> None:
    """At least as many templates read back every case as when this was written (63 of 63)."""
    writing = [r for r in round_trips.values() if r.writes_calls]
    assert sum(r.ok for r in writing) >= len(writing) - len(GAPS)
    assert sum(r.single is True for r in writing) >= 50
    # content + call is checked wherever the template renders it as one turn (45 when this was written)
    assert sum(r.content is True for r in writing) >= 45
