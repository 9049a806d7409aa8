"""The batched engine's decisions with a scripted fake decode (engine/slots.py, engine/batching.py).

Milliseconds each: the worker is stepped by hand (no thread), the fake backend checks every
batch as llama.cpp would and advances a fake clock by a cost that grows with depth.
"""

from __future__ import annotations

import pytest

from llamactypes.engine.batching import MIN_SAVE_TOKENS, BatchWorker
from llamactypes.engine.job import Job
from llamactypes.engine.scheduler import Scheduler
from llamactypes.engine.slots import GENERATING, IDLE, PROMPT, ChunkSizer, Slot, choose_slot, plan_step
from llamactypes.engine.types import Finished, Started
from llamactypes.errors import BusyError

from .fake_batch import DictCache, FakeBackend, alone, slot_job


def make(n_slots: int = 4, cache: DictCache | None = None, max_step: float = 0.25,
         **backend_kw: object) -> tuple[BatchWorker, FakeBackend, Scheduler[Job]]:
    backend = FakeBackend(n_seq=n_slots, **backend_kw)  # type: ignore[arg-type]
    scheduler: Scheduler[Job] = Scheduler(max_waiting=16)
    worker = BatchWorker(backend, scheduler, n_slots, cache=cache, max_step=max_step, clock=backend.clock)
    return worker, backend, scheduler


def run_until_idle(worker: BatchWorker, limit: int = 10_000) -> int:
    steps = 0
    while steps < limit:
        worker.admit()
        if not worker.active():
            return steps
        worker.step()
        steps += 1
    raise AssertionError("the worker never became idle")


# ------------------------------------------------------------ pure decisions

def test_choose_slot_keeps_most_and_wipes_least() -> None:
    a, b, c = Slot(0, cached=[1, 2, 3, 4], last_used=5), Slot(1, cached=[1, 2, 9], last_used=1), Slot(2)
    assert choose_slot([a, b, c], [1, 2, 3, 4, 5]) == (a, 4)
    assert choose_slot([a, b, c], [1, 2, 9, 9]) == (b, 3)
    assert choose_slot([a, b, c], [7, 7]) == (c, 0)          # nothing shared: the empty slot
    assert choose_slot([a, b], [7, 7]) == (b, 0)             # no empty one: the one that loses least
    long = Slot(3, cached=[1, 2] + [5] * 50)
    assert choose_slot([long, c], [1, 2, 8, 8]) == (c, 0)    # a shared opening does not wipe a long cache
    assert choose_slot([long], [1, 2, 8, 8]) == (long, 2)
    assert choose_slot([Slot(4, cached=[1], last_used=2), Slot(5, cached=[2], last_used=1)], [9, 9])[0].id == 5
    assert choose_slot([a, b, c], [1, 2, 3, 4]) == (a, 3)    # the last prompt token is always decoded
    a.work = b.work = c.work = object()
    assert choose_slot([a, b, c], [1]) is None


def test_the_same_prompt_again_takes_its_slot_back() -> None:
    """A retried turn (same prompt, its old answer cached after it) reuses its slot instead of an
    empty one: one client's turns must not spread over every slot of the unified cache."""
    answered = Slot(0, cached=[1, 2, 3, 4] + [8] * 40, n_prompt=4, last_used=2)
    empty = Slot(1)
    assert choose_slot([answered, empty], [1, 2, 3, 4]) == (answered, 3)
    assert choose_slot([answered, empty], [1, 2, 3, 4, 5, 6]) == (answered, 4)  # another answer, next turn
    assert choose_slot([answered, empty], [1, 2, 9, 9]) == (empty, 0)  # another conversation: no wipe


def test_plan_puts_single_tokens_first_then_the_oldest_prompt_chunks() -> None:
    gen = Slot(0, cached=[1] * 10, pending=[5])
    old = Slot(1, pending=list(range(100)), admitted=1)
    new = Slot(2, pending=list(range(50)), admitted=2)
    entries = plan_step([new, gen, old], n_batch=64, prefill_budget=1000)
    assert [(e.slot.id, len(e.tokens), e.pos, e.logits) for e in entries] == [(0, 1, 10, True), (1, 63, 0, False)]
    entries = plan_step([new, gen, old], n_batch=512, prefill_budget=120)
    assert [(e.slot.id, len(e.tokens)) for e in entries] == [(0, 1), (1, 99), (2, 21)]
    last = Slot(3, cached=[1, 2], pending=[7])  # the last prompt token: alone, with logits
    assert [(e.tokens, e.logits) for e in plan_step([last], 512, 0)] == [([7], True)]


def test_chunk_sizer_ignores_a_step_slowed_by_something_else() -> None:
    sizer = ChunkSizer(target=0.25, n_min=16, n_max=4096)
    for _ in range(8):
        sizer.observe(0, 100, 0, 0.1)
    before = sizer.tokens(0)
    sizer.observe(0, 100, 0, 30.0)  # another process took the cores for a while
    assert sizer.tokens(0) == before == 250


def test_chunk_sizer_learns_a_cost_that_grows_with_depth() -> None:
    sizer = ChunkSizer(target=0.25, n_min=16, n_max=4096)
    assert sizer.tokens(0) == 64  # nothing measured yet: a small first chunk
    for depth in (100, 1000, 2000, 3000):  # seconds per token = 1 ms + 1 µs per token of depth
        sizer.observe(1, 100, depth, 0.005 + 100 * (0.001 + 1e-6 * depth))
    sizer.observe(1, 0, 0, 0.005)
    shallow, deep = sizer.tokens(0), sizer.tokens(8000)
    assert 200 <= shallow <= 250 and deep < shallow / 4
    for depth, n in ((0, shallow), (8000, deep)):
        assert 0.005 + n * (0.001 + 1e-6 * (depth + n / 2)) <= 0.26  # the chunk's mean depth


# ------------------------------------------------------------ the worker over the fake decode

def test_concurrent_requests_each_get_their_own_continuation() -> None:
    worker, backend, scheduler = make()
    jobs = [slot_job(scheduler, prompt, max_tokens=6) for prompt in ("say A", "say B", "say C", "say D", "say E")]
    steps = run_until_idle(worker)
    for (job, out), prompt in zip(jobs, ("say A", "say B", "say C", "say D", "say E")):
        assert out.text == alone(prompt, 6) and out.step.finish_reason == "length"
        events = list(job.events())
        assert isinstance(events[0], Started) and events[0].n_prompt == len(prompt)
    assert any(len({s for s, *_ in batch}) == 4 for batch in backend.batches), "never batched 4 slots"
    assert steps < 5 * 8  # batched, not one after the other
    assert [s.state for s in worker.slots] == [IDLE] * 4


def test_admission_is_fifo_and_the_queue_stays_bounded() -> None:
    worker, backend, scheduler = make(n_slots=1)
    scheduler.max_waiting = 2
    first, second = slot_job(scheduler, "one", 3), slot_job(scheduler, "two", 3)
    with pytest.raises(BusyError):
        slot_job(scheduler, "three", 3)
    worker.admit()
    assert worker.slots[0].work.job is first[0] and scheduler.position(second[0]) == 1
    run_until_idle(worker)
    assert (first[1].text, second[1].text) == (alone("one", 3), alone("two", 3))
    starts = [next(i for i, b in enumerate(backend.batches) if any(t == p[0] for _, _, t, _ in b))
              for p in (list(b"one"), list(b"two"))]
    assert starts[0] < starts[1]


def test_a_hang_up_frees_its_slot_at_once_and_the_others_go_on() -> None:
    worker, backend, scheduler = make()
    jobs = [slot_job(scheduler, p, max_tokens=10) for p in ("aa", "bb", "cc", "dd")]
    worker.admit()
    for _ in range(4):
        worker.step()
    jobs[1][0].cancel()
    worker.step()
    assert worker.slots[1].state == IDLE and not any(s == 1 for s, *_ in backend.batches[-1])
    assert isinstance(list(jobs[1][0].events())[-1], Finished) or jobs[1][1].step.finish_reason == "cancelled"
    assert jobs[1][1].step.finish_reason == "cancelled"
    run_until_idle(worker)
    for i, prompt in enumerate(("aa", "bb", "cc", "dd")):
        if i != 1:
            assert jobs[i][1].text == alone(prompt, 10)


def test_cancel_during_chunked_prefill_frees_the_slot_and_aborts_a_lone_chunk() -> None:
    worker, backend, scheduler = make(n_batch=64)
    streaming = slot_job(scheduler, "0", max_tokens=40)
    long_job, long_out = slot_job(scheduler, "x" * 1000, max_tokens=4)
    worker.admit()
    worker.step()
    worker.step()
    assert worker.slots[1].state == PROMPT and 0 < len(worker.slots[1].cached) < 1000
    assert worker.slots[0].state == GENERATING
    long_job.cancel()
    worker.step()
    assert worker.slots[1].state == IDLE and long_out.step.finish_reason == "cancelled"
    run_until_idle(worker)
    assert streaming[1].text == alone("0", 40)
    # alone in its batch, a cancelled chunk is what the abort callback stops
    worker._inflight = [worker.slots[1]]
    job, _ = slot_job(scheduler, "y" * 10, 1)
    worker.slots[1].work = job.work
    assert not worker.should_abort()
    job.cancel()
    assert worker.should_abort()
    worker.slots[1].work = None


def test_an_aborted_decode_keeps_the_memory_record_true() -> None:
    worker, backend, scheduler = make(n_batch=512)
    job, out = slot_job(scheduler, "z" * 300, max_tokens=3)
    worker.admit()
    backend.abort_after = 100
    worker.step()  # aborted after 100 tokens: the slot resumes from there
    assert len(worker.slots[0].cached) == 100 == len(backend.memory[0])
    run_until_idle(worker)
    assert out.text == alone("z", 3)


def test_a_long_prompt_never_stalls_a_stream_longer_than_the_step_budget() -> None:
    worker, backend, scheduler = make(n_batch=2048, max_step=0.1, token_cost=0.0005, depth_cost=2e-7)
    slot_job(scheduler, "stream", max_tokens=200)
    worker.admit()
    for _ in range(5):
        worker.step()
    slot_job(scheduler, "p" * 4000, max_tokens=2)
    run_until_idle(worker)
    assert max(backend.durations[5:]) <= 0.1 * 1.5  # the first chunk is a measured guess
    assert sorted(backend.durations)[-3] <= 0.1 * 1.15
    alone_cost = 4000 * (0.0005 + 2e-7 * 2000)
    assert alone_cost > 1.0  # without chunks the stream would have waited this long


def test_a_conversation_that_returns_reuses_its_slot_and_counts_it() -> None:
    worker, backend, scheduler = make(n_slots=4)
    a = "A" * 200
    first = slot_job(scheduler, a, 4)
    run_until_idle(worker)
    for other in ("B" * 50, "C" * 50):
        slot_job(scheduler, other, 4)
        run_until_idle(worker)
    again = slot_job(scheduler, a + first[1].text + "more", 4)
    run_until_idle(worker)
    assert again[1].n_cached == 200 + 3  # A's prompt and its answer but the last token (never decoded)
    assert again[1].text == alone("more", 4)


def test_with_fewer_slots_a_returning_conversation_comes_back_from_the_prompt_cache() -> None:
    cache = DictCache()
    worker, backend, scheduler = make(n_slots=1, cache=cache)
    a = "A" * (MIN_SAVE_TOKENS * 2)
    answer = slot_job(scheduler, a, 2)[1]
    run_until_idle(worker)
    slot_job(scheduler, "B" * MIN_SAVE_TOKENS, 2)   # A's slot is reused: its state is saved first
    run_until_idle(worker)
    assert cache.puts == 1
    slot_job(scheduler, "C" * 10, 2)
    run_until_idle(worker)
    back = slot_job(scheduler, a + "(the answer, re-rendered)?", 2)
    run_until_idle(worker)
    assert back[1].n_cached == len(a) - 1 and back[1].text == alone("?", 2)  # saved where A's prompt ended
    assert answer.text
    assert backend.memory[0][:len(a)] == list(a.encode())
    again = slot_job(scheduler, a, 2)  # the very same prompt again (a retry) finds it too
    slot_job(scheduler, "D" * MIN_SAVE_TOKENS, 2)
    run_until_idle(worker)
    assert again[1].n_cached == len(a) - 1


def test_memory_that_cannot_be_cut_is_read_again_and_reported_truthfully() -> None:
    worker, backend, scheduler = make(n_slots=1, can_cut=False)
    slot_job(scheduler, "abcdef", 2)
    run_until_idle(worker)
    again = slot_job(scheduler, "abcxyz", 2)
    run_until_idle(worker)
    assert again[1].n_cached == 0 and again[1].text == alone("abcxyz", 2)


def test_when_the_shared_context_fills_idle_slots_give_way_then_the_longest_stream_ends() -> None:
    worker, backend, scheduler = make(n_slots=2, n_ctx=300)
    slot_job(scheduler, "q" * 200, 2)
    run_until_idle(worker)
    assert len(worker.slots[0].cached) == 201
    job, out = slot_job(scheduler, "r" * 150, None)  # unlimited: runs into the end of the context
    run_until_idle(worker)
    assert worker.slots[0].cached == [] and out.step.finish_reason == "length"
    assert backend.used <= 300 and len(out.step.tokens) == 300 - 150


def test_shutdown_cancels_every_slot_and_saves_live_ones() -> None:
    cache = DictCache()
    worker, backend, scheduler = make(n_slots=2, cache=cache)
    slot_job(scheduler, "s" * (MIN_SAVE_TOKENS + 2), 1)
    run_until_idle(worker)
    running = slot_job(scheduler, "t" * 5, 100)
    worker.admit()
    worker.step()
    worker.stop()
    worker.run()  # returns at once: closing
    assert running[1].step.finish_reason == "cancelled" and running[0].finished.is_set()
    assert any(len(k) >= MIN_SAVE_TOKENS for k in cache.entries)


# ------------------------------------------------------------ shared prefixes

def test_a_prefix_another_slot_holds_is_borrowed_not_read_again() -> None:
    """Parallel clients or subagents with one system prompt: the second reads only its own part,
    in the first one's cells (shared, counted once), and both answers are what they are alone."""
    worker, backend, scheduler = make(n_slots=4)
    system = "S" * 100
    first = slot_job(scheduler, system + "a" * 150, 30)
    worker.admit()
    for _ in range(3):  # the first one is generating when the second arrives
        worker.step()
    second = slot_job(scheduler, system + "b" * 20, 5)
    run_until_idle(worker)
    assert worker.slots[0].cached[:100] == worker.slots[1].cached[:100]
    assert second[1].n_cached == 100
    assert first[1].text == alone("a", 30) and second[1].text == alone("b", 5)
    assert backend.cells[1][:100] == backend.cells[0][:100]  # the very same cells
    assert backend.used == 250 + 30 + 20 + 5 - 1 - 1  # the shared 100 once (the last sampled tokens: never decoded)


def test_cell_accounting_stays_exact_through_sharing_cutting_and_eviction() -> None:
    """The worker's count of KV cells (what decides admission and eviction) equals what the memory
    holds after every step, however prefixes are shared, cut, restored and evicted."""
    worker, backend, scheduler = make(n_slots=3, n_ctx=700, cache=DictCache())
    prompts = ["S" * 100 + "a" * 40, "S" * 100 + "b" * 120, "T" * 90, "S" * 100 + "a" * 40 + "c" * 30,
               "S" * 60 + "d" * 200, "T" * 90 + "e" * 10, "S" * 100 + "b" * 120 + "f" * 50, "Q" * 300]
    outs = []
    for i, prompt in enumerate(prompts):
        outs.append((prompt, slot_job(scheduler, prompt, 6 + i % 3)[1]))
        for _ in range(4 + i):
            worker.admit()
            if worker.active():
                worker.step()
            assert worker._used() == backend.used
            for slot in worker.slots:
                assert backend.memory[slot.id] == slot.cached
    while worker.active() or scheduler.peek() is not None:
        worker.admit()
        worker.step()
        assert worker._used() == backend.used
    for prompt, out in outs:
        assert out.text == alone(prompt[-1], len(out.text)) and out.text


def test_a_memory_that_cannot_share_reads_the_prefix_itself() -> None:
    worker, backend, scheduler = make(n_slots=2, can_cut=False)
    first = slot_job(scheduler, "S" * 100 + "a" * 150, 3)
    run_until_idle(worker)
    second = slot_job(scheduler, "S" * 100 + "b" * 20, 3)
    run_until_idle(worker)
    assert second[1].n_cached == 0 and second[1].text == alone("b", 3) and first[1].text == alone("a", 3)
