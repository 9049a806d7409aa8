"""Streaming parse cost per piece for a 20k-character tool argument, before and after; round-trip coverage.

"before" re-parses the whole output after every piece (the old ChatStreamParser.feed);
"after" is ChatStreamParser as it is now. Pure Python, no model: no lock needed.
Run: .venv/bin/python bench/bench_chat_parse.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from llamactypes.chat import ChatStreamParser, ParserConfig
from llamactypes.chat.formats import get_format
from llamactypes.chat.parse import parse_result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pieces(kind: str) -> list[str]:
    """A 20k-character `text` argument (prose, or code with quotes and line breaks) in 4-character pieces."""
    unit = "The quick brown fox jumps over the lazy dog. " if kind == "prose" else (
        'def f(x):\n    return "x=" + str(x)  # é\n')
    body = (unit * (20_000 // len(unit) + 1))[:20_000]
    arguments = json.dumps({"text": body}, ensure_ascii=False)
    text = '<tool_call>\n{"name": "write", "arguments": ' + arguments + "}\n</tool_call>"
    return [text[k: k + 4] for k in range(0, len(text), 4)]


def before(parts: list[str], config: ParserConfig) -> None:
    fmt, text = get_format("hermes"), ""
    for p in parts:
        text += p
        parse_result(text, fmt, config, True)


def after(parts: list[str], config: ParserConfig) -> None:
    parser = ChatStreamParser("hermes", config)
    for p in parts:
        parser.feed(p)
    parser.finish()


def main() -> None:
    config = ParserConfig(tools=("write",))
    for kind in ("prose", "code"):
        parts = pieces(kind)
        times = {}
        for label, fn in (("before", before), ("after", after)):
            t0 = time.perf_counter()
            fn(parts, config)
            times[label] = time.perf_counter() - t0
            per = times[label] * 1e6 / len(parts)
            print(f"{kind:5s} {label:6s}: {per:8.1f} us/piece ({len(parts)} pieces, {times[label]:.3f} s)")
        print(f"{kind:5s} ratio before/after: {times['before'] / times['after']:.1f}x")
    from llamactypes.chat.derive.roundtrip import round_trip
    from tests.unit.chat.conftest import FakeModel, template_names
    from llamactypes.paths import source_dir

    folder = source_dir() / "models" / "templates"
    results = [round_trip(FakeModel((folder / f"{n}.jinja").read_text())) for n in template_names()]
    writing = [r for r in results if r.writes_calls]
    print(f"round trip, every case: {sum(r.ok for r in writing)}/{len(writing)} templates that write calls")
    print(f"round trip, one call:   {sum(r.single is True for r in writing)}/{len(writing)}")


if __name__ == "__main__":
    main()
