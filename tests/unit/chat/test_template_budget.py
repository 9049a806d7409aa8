"""Hostile chat templates (they come from model files) end in a clean `ChatTemplateError`
within their budget: loops of 10^10, strings doubled by every operator and filter, deep
nesting. Stated budgets: the time cases are given 0.5 s and must end within 1.5 s; the size
cases a 1 MiB output budget and must end within 1 s and allocate under 64 MiB at peak.
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import pytest

from llamactypes.errors import ChatTemplateError
from llamactypes.chat.template import ChatTemplate
from llamactypes.limits import DEFAULT_LIMITS

FAST = dataclasses.replace(DEFAULT_LIMITS, template_max_seconds=0.5, template_max_output_chars=1 << 20)
MESSAGES = [{"role": "user", "content": "hi"}]


def render_bounded(source: str, seconds: float = 1.5, peak: int = 64 << 20) -> ChatTemplateError:
    """Render `source` under FAST limits; return its `ChatTemplateError` (asserting time and memory)."""
    template = ChatTemplate(source, limits=FAST)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ChatTemplateError) as info:
            template.render(MESSAGES)
    finally:
        elapsed = time.perf_counter() - start
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert top < peak, f"peak allocation {top / 2**20:.1f} MiB"
    return info.value


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% set x = i + j %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% for i in range(100000) %}{{ '' }}{% endfor %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% for i in range(100000) %}{% for m in messages * 100000 %}{{ '' }}{% endfor %}{% endfor %}",
])
def test_long_loops_stop_at_the_time_budget(source: str) -> None:
    error = render_bounded(source)
    assert "template_max_seconds" in str(error) or "recursion" in str(error)
    assert error.limit in ("template_max_seconds", None)


@pytest.mark.parametrize("grow", [
    "s ~ s", "s + s", "s * 2", "[s, s] | join", "s | center(s | length * 2)",
    "(s ~ '\\n') | indent(4, true) ~ s", "s.replace('x', 'xx')", "'%s%s' % (s, s)", "'{}{}'.format(s, s)",
    "'%s' | format(s) ~ s", "(s ~ 'ab') | replace('a', s)", "s.center(s | length * 2)", "s.ljust(s | length * 2)",
    "([s] * 2) | join", "(s ~ 'y') | list | join(s)", "'{0}{0}{0}'.format(s)", "s.zfill(s | length * 2)",
])
def test_string_growth_is_capped_for_every_operator(grow: str) -> None:
    source = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set s = ns.s %}" \
             "{% set ns.s = " + grow + " %}{% endfor %}{{ ns.s | length }}"
    error = render_bounded(source, seconds=1.0)
    assert "template_max_output_chars" in str(error) and error.limit == "template_max_output_chars"


@pytest.mark.parametrize("source", [
    "{{ 'x' | center(10**9) }}", "{{ 'x'.rjust(10**9) }}", "{{ '%999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}", "{{ 'x' * 10**9 }}", "{{ ['x'] * 10**9 }}",
    "{{ lipsum(n=10**6) }}",
])
def test_one_huge_step_is_refused_before_it_allocates(source: str) -> None:
    render_bounded(source, seconds=1.0, peak=8 << 20)


def test_output_size_is_capped() -> None:
    source = "{% set s = 'x' * 100000 %}{% for i in range(100000) %}{{ s }}{% endfor %}"
    error = render_bounded(source)
    assert "rendered prompt" in str(error)


def test_list_growth_through_append_is_capped() -> None:
    source = "{% set l = [] %}{% for i in range(100000) %}{% for j in range(100) %}" \
             "{{ l.append(j) or '' }}{% endfor %}{% endfor %}"
    error = render_bounded(source)
    assert "template_max_output_chars" in str(error) or "template_max_seconds" in str(error)


def test_deep_nesting_is_a_template_error() -> None:
    deep = "{% if true %}" * 2000 + "x" + "{% endif %}" * 2000
    with pytest.raises(ChatTemplateError):
        ChatTemplate(deep, limits=FAST).render(MESSAGES)
    recursive = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
    render_bounded(recursive)


def test_normal_templates_render_within_the_budget() -> None:
    template = ChatTemplate(None, limits=FAST)
    text = template.render(MESSAGES * 1000)
    assert text.count("<|im_start|>user\nhi<|im_end|>") == 1000
    # a legitimately large prompt (0.9 MiB) fits the 1 MiB budget
    big = [{"role": "user", "content": "y" * (900 << 10)}]
    assert len(template.render(big)) > 900 << 10


def test_a_timeout_never_escapes_after_the_rendering() -> None:
    """Renderings that end just around their deadline leave no exception pending."""
    limits = dataclasses.replace(DEFAULT_LIMITS, template_max_seconds=0.002)
    template = ChatTemplate("{% for i in range(3000) %}{{ i }}{% endfor %}", limits=limits)
    outcomes = set()
    for _ in range(200):
        try:
            template.render(MESSAGES)
            outcomes.add("rendered")
        except ChatTemplateError:
            outcomes.add("timeout")
        time.sleep(0.0005)  # a pending asynchronous exception would fire here
    assert outcomes


def test_concurrent_renderings_each_get_their_own_budget() -> None:
    import threading

    hostile = ChatTemplate("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                           limits=FAST)
    normal = ChatTemplate(None, limits=FAST)
    results: dict[str, list[str]] = {"hostile": [], "normal": []}

    def worker(kind: str) -> None:
        for _ in range(3 if kind == "hostile" else 200):
            try:
                (hostile if kind == "hostile" else normal).render(MESSAGES)
                results[kind].append("ok")
            except ChatTemplateError as exc:
                results[kind].append(exc.limit or "error")

    threads = [threading.Thread(target=worker, args=(kind,)) for kind in ("hostile", "normal") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results["hostile"] == ["template_max_seconds"] * 9
    assert results["normal"] == ["ok"] * 600
