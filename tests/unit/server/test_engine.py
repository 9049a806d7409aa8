"""The engine on a scripted fake model: events, folding, queueing, cancellation, clamping."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from llamactypes.chat.types import Delta
from llamactypes.engine import (
    ChatRequest, CompletionRequest, Engine, Finished, Heartbeat, Sampling, Started, fold_events,
    merge_inner_system,
)
from llamactypes.errors import BusyError, ChatTemplateError, ClosedError, ContextOverflowError, InvalidRequestError

from .fakes import FakeModel

HI = [{"role": "user", "content": "Hi"}]


def wait_running(engine: Engine) -> None:
    """Until the worker took every queued job (the first one runs; the gate holds it)."""
    deadline = time.monotonic() + 2
    while engine.queue_length and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.fixture
def engine(model: FakeModel) -> Any:
    with Engine(model, max_waiting=2) as engine:
        yield engine


def test_events_are_started_deltas_finished(engine: Engine) -> None:
    job = engine.chat(ChatRequest(HI))
    events = list(job.events())
    assert isinstance(events[0], Started) and events[0].n_prompt == job.n_prompt > 0
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hello", " there", "!"]
    assert isinstance(events[-1], Finished)
    assert events[-1].reason == "stop"
    assert events[-1].usage.completion_tokens == 3
    assert events[-1].usage.prompt_tokens == job.n_prompt


def test_fold_gives_the_whole_message(engine: Engine) -> None:
    result = fold_events(engine.chat(ChatRequest(HI)).events())
    assert result.content == "Hello there!"
    assert result.finish_reason == "stop"


def test_the_prompt_is_rendered_by_the_chat_template(engine: Engine, model: FakeModel) -> None:
    list(engine.chat(ChatRequest([{"role": "system", "content": "Be brief."}, *HI])).events())
    assert model.prompts[-1] == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" \
                                "<|im_start|>assistant\n"


def test_options_reach_the_model(engine: Engine, model: FakeModel) -> None:
    request = ChatRequest(HI, max_tokens=2, stop=("x",), sampling=Sampling(temperature=0.0, seed=3, top_k=5))
    result = fold_events(engine.chat(request).events())
    options = model.calls[-1]
    assert options["max_tokens"] == 2 and options["temperature"] == 0.0 and options["seed"] == 3
    assert options["top_k"] == 5 and "x" in options["stop"] and "top_p" not in options
    assert result.finish_reason == "length" and result.content == "Hello there"


def test_a_user_stop_string_is_reported_a_format_stop_is_not(engine: Engine, model: FakeModel) -> None:
    model.script = ["Hello", " there"]
    result = fold_events(engine.chat(ChatRequest(HI, stop=("the",))).events())
    assert (result.finish_reason, result.stop_sequence, result.content) == ("stop_sequence", "the", "Hello ")


def test_tool_calls_turn_stop_into_tool_calls(model: FakeModel) -> None:
    model.script = ['{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}']
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    with Engine(model) as engine:
        job = engine.chat(ChatRequest(HI, tools=tools, tool_choice="required"))
        events = list(job.events())
    result = fold_events(events)
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["get_weather"]
    assert result.tool_calls[0].id and result.tool_calls[0].arguments.replace(" ", "") == '{"city":"Paris"}'
    assert model.calls[-1]["grammar"]  # required: an eager grammar
    firsts = [e for e in events if isinstance(e, Delta) and e.kind == "tool_call" and e.name]
    assert len(firsts) == 1 and firsts[0].id


def test_a_prompt_longer_than_the_context_fails_before_queueing() -> None:
    with Engine(FakeModel(n_ctx=20)) as engine:
        with pytest.raises(ContextOverflowError) as info:
            engine.chat(ChatRequest([{"role": "user", "content": "x" * 100}]))
    assert info.value.n_ctx == 20 and info.value.n_prompt > 20


def test_max_tokens_beyond_the_context_is_passed_on_for_the_model_to_clamp(engine: Engine, model: FakeModel) -> None:
    result = fold_events(engine.chat(ChatRequest(HI, max_tokens=10**6)).events())
    assert result.finish_reason == "stop" and model.calls[-1]["max_tokens"] == 10**6


def test_a_custom_grammar_with_tools_is_refused(engine: Engine) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(InvalidRequestError) as info:
        engine.chat(ChatRequest(HI, tools=tools, tool_choice="required", grammar='root ::= "a"'))
    assert info.value.param == "grammar"


def test_requests_are_served_one_at_a_time_in_arrival_order(model: FakeModel) -> None:
    model.script = lambda prompt: [prompt.split("user\n")[1].split("<")[0]]
    model.delay = 0.01
    with Engine(model, max_waiting=10) as engine:
        jobs = [engine.chat(ChatRequest([{"role": "user", "content": f"n{i}"}])) for i in range(5)]
        results = [fold_events(job.events()).content for job in jobs]
    assert results == [f"n{i}" for i in range(5)]
    assert [p.split("user\n")[1][:2] for p in model.prompts] == [f"n{i}" for i in range(5)]


def test_concurrent_callers_get_their_own_answers(model: FakeModel) -> None:
    model.script = lambda prompt: list(prompt.split("user\n")[1].split("<")[0])
    model.delay = 0.001
    answers: dict[int, str] = {}
    with Engine(model, max_waiting=20) as engine:
        def ask(i: int) -> None:
            answers[i] = fold_events(engine.chat(ChatRequest([{"role": "user", "content": f"q{i}"}])).events()).content

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert answers == {i: f"q{i}" for i in range(8)}
    assert model.running == 0


def test_past_the_bound_chat_raises_busy(model: FakeModel) -> None:
    model.gate = threading.Event()
    with Engine(model, max_waiting=1) as engine:
        first = engine.chat(ChatRequest(HI))
        wait_running(engine)
        second = engine.chat(ChatRequest(HI))
        with pytest.raises(BusyError):
            engine.chat(ChatRequest(HI))
        model.gate.set()
        assert fold_events(first.events()).content == fold_events(second.events()).content == "Hello there!"


def test_heartbeats_while_waiting_report_the_queue_position(model: FakeModel) -> None:
    model.gate = threading.Event()
    with Engine(model) as engine:
        first = engine.chat(ChatRequest(HI))
        wait_running(engine)
        second = engine.chat(ChatRequest(HI))
        events = second.events(heartbeat=0.02)
        beat = next(events)
        assert isinstance(beat, Heartbeat) and beat.position == 1
        model.gate.set()
        rest = list(events)
        assert isinstance(rest[-1], Finished)
        list(first.events())


def test_closing_the_event_stream_cancels_the_generation_and_the_next_request_runs(model: FakeModel) -> None:
    model.script = ["tok"] * 10_000
    model.delay = 0.001
    with Engine(model) as engine:
        job = engine.chat(ChatRequest(HI))
        events = job.events()
        for event in events:
            if isinstance(event, Delta):
                break
        events.close()  # the client hung up
        assert job.finished.wait(2), "the generation did not stop"
        model.script = ["next"]
        assert fold_events(engine.chat(ChatRequest(HI)).events()).content == "next"


def test_cancelling_a_waiting_job_removes_it_from_the_queue(model: FakeModel) -> None:
    model.gate = threading.Event()
    with Engine(model) as engine:
        first = engine.chat(ChatRequest(HI))
        wait_running(engine)
        second = engine.chat(ChatRequest(HI))
        second.cancel()
        assert list(second.events()) == []
        assert engine.queue_length == 0
        model.gate.set()
        assert fold_events(first.events()).content == "Hello there!"
    assert len(model.prompts) == 1


def test_close_cancels_running_and_waiting_jobs(model: FakeModel) -> None:
    model.gate = threading.Event()
    engine = Engine(model)
    first = engine.chat(ChatRequest(HI))
    wait_running(engine)
    second = engine.chat(ChatRequest(HI))
    engine.close()
    events = list(first.events())
    assert isinstance(events[-1], Finished) and events[-1].reason == "cancelled"
    with pytest.raises(ClosedError):
        list(second.events())
    assert not engine._worker.is_alive()


def test_close_waits_for_a_request_thread_still_tokenizing(model: FakeModel) -> None:
    inside, release = threading.Event(), threading.Event()
    tokenize = model.tokenize

    def slow_tokenize(text: str, *args: Any, **kwargs: Any) -> list[int]:
        inside.set()
        release.wait(5)
        return tokenize(text, *args, **kwargs)

    model.tokenize = slow_tokenize  # type: ignore[method-assign]
    engine = Engine(model)
    outcome: list[Any] = []
    request = threading.Thread(target=lambda: outcome.append(engine.count_chat_tokens(ChatRequest(HI))))
    request.start()
    assert inside.wait(2)
    closer = threading.Thread(target=engine.close)
    closer.start()
    time.sleep(0.1)
    assert closer.is_alive(), "close() returned while a request thread was inside the model"
    release.set()
    closer.join(2)
    request.join(2)
    assert not closer.is_alive() and outcome and outcome[0] > 0
    with pytest.raises(ClosedError):
        engine.tokenize("late")


def test_a_keyboard_interrupt_in_a_job_is_not_swallowed(model: FakeModel) -> None:
    from llamactypes.engine.job import Job
    from llamactypes.engine.scheduler import Scheduler

    def interrupted(job: Job) -> None:
        raise KeyboardInterrupt

    job = Job("chat", interrupted, Scheduler())
    with pytest.raises(KeyboardInterrupt):
        job.execute()
    assert job.finished.is_set()  # the request thread is still told the job ended


def test_worker_errors_reach_the_caller(model: FakeModel) -> None:
    def boom(prompt: str) -> list[str]:
        raise RuntimeError("kaputt")

    model.script = boom
    with Engine(model) as engine:
        with pytest.raises(RuntimeError, match="kaputt"):
            list(engine.chat(ChatRequest(HI)).events())
        model.script = ["ok"]
        assert fold_events(engine.chat(ChatRequest(HI)).events()).content == "ok"


def test_completion_sends_the_prompt_as_is(engine: Engine, model: FakeModel) -> None:
    result = fold_events(engine.complete(CompletionRequest("Once upon", max_tokens=2)).events())
    assert model.prompts[-1] == "Once upon" and result.content == "Hello there"


def test_count_tokens_is_the_rendered_prompt(engine: Engine, model: FakeModel) -> None:
    n = engine.count_chat_tokens(ChatRequest(HI))
    assert n == len(model.tokenize("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", parse_special=True))


def test_embed_goes_through_the_queue(engine: Engine) -> None:
    result = engine.embed(["a", "bb"])
    assert len(result.vectors) == 2 and len(result.vectors[0]) == 4 and result.n_tokens == 3


def test_merge_inner_system_folds_late_system_messages_into_the_next_user_turn() -> None:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"}, {"role": "system", "content": "late"},
                {"role": "user", "content": "c"}]
    merged = merge_inner_system(messages)
    assert merged is not None
    assert [m["role"] for m in merged] == ["system", "user", "assistant", "user"]
    assert merged[-1]["content"] == "[System note]\nlate\n\nc"
    assert merge_inner_system(messages[:3]) is None


def test_strict_templates_get_consecutive_user_messages_merged(llama_source: Any) -> None:
    model = FakeModel(["ok"])
    model.chat_template = (llama_source / "models" / "templates" / "google-gemma-2-2b-it.jinja").read_text()
    with Engine(model) as engine:
        two = [{"role": "user", "content": "Generate a title:"}, {"role": "user", "content": "Say hello."}]
        assert fold_events(engine.chat(ChatRequest(two)).events()).content == "ok"
    assert "Generate a title:\n\nSay hello.<end_of_turn>" in model.prompts[-1]


def test_thinking_follows_the_request_then_the_server_default(llama_source: Any) -> None:
    model = FakeModel(["<think>I ponder</think>", "Answer!"])
    model.chat_template = (llama_source / "models" / "templates" / "Qwen-Qwen3-0.6B.jinja").read_text()
    for default, asked, opened in ((False, None, False), (True, None, True), (False, True, True),
                                   (True, False, False)):
        with Engine(model, enable_thinking=default) as engine:
            result = fold_events(engine.chat(ChatRequest(HI, enable_thinking=asked)).events())
        assert model.prompts[-1].endswith("<think>\n\n</think>\n\n") is not opened
        assert (result.reasoning, result.content) == ("I ponder", "Answer!")


def test_a_template_out_of_budget_is_not_rendered_again_reshaped(model: FakeModel) -> None:
    """A template that ran out of time fails at once: reshaping the messages (two more tries, each
    as slow) cannot help."""
    calls = []

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise ChatTemplateError("rendering took longer than 5 s", limit="template_max_seconds")

    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]  # reshapeable
    with Engine(model, chat_build=slow_build) as engine:
        with pytest.raises(ChatTemplateError) as info:
            engine.chat(ChatRequest(messages=messages))
    assert info.value.limit == "template_max_seconds" and len(calls) == 1
