"""Streaming parse cost per piece for a 20k-character tool argument, before and after; round-trip coverage.

"before" re-parses the whole output after every piece (the old ChatStreamParser.feed);
"after" is ChatStreamParser as it is now. Pure Python, no model: no lock needed.
Run: .venv/bin/python bench/bench_chat_parse.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from llamactypes.chat import ChatStreamParser, ParserConfig
from llamactypes.chat.formats import get_format
from llamactypes.chat.parse import parse_result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pieces() -> list[str]:
    body = ("def f(x):  return x + 1 " * 900)[:20_000]
    text = '<tool_call>\n{"name": "write", "arguments": {"text": "' + body + '"}}\n</tool_call>'
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
    parts, config = pieces(), ParserConfig(tools=("write",))
    times = {}
    for label, fn in (("before", before), ("after", after)):
        t0 = time.perf_counter()
        fn(parts, config)
        times[label] = time.perf_counter() - t0
        print(f"{label:6s}: {times[label] * 1e6 / len(parts):8.1f} us/piece ({len(parts)} pieces, {times[label]:.3f} s)")
    print(f"speed-up: {times['before'] / times['after']:.1f}x")
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
