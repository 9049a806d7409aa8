"""The FIFO in front of the model: arrival order, a bound, withdrawal, positions."""

from __future__ import annotations

import threading

import pytest

from llamactypes.engine import Scheduler
from llamactypes.errors import BusyError, ClosedError


def test_jobs_come_out_in_arrival_order() -> None:
    s: Scheduler[str] = Scheduler(max_waiting=10)
    for job in "abc":
        s.submit(job)
    out = []
    for _ in range(3):
        job = s.take(timeout=1)
        out.append(job)
        s.done(job)
    assert out == ["a", "b", "c"]


def test_positions_count_the_running_job() -> None:
    s: Scheduler[str] = Scheduler(max_waiting=10)
    assert s.submit("a") == 0
    running = s.take(timeout=1)
    assert running == "a" and s.position("a") == 0
    assert s.submit("b") == 1
    assert s.submit("c") == 2
    assert s.position("c") == 2
    assert s.position("zzz") is None


def test_past_the_bound_submit_raises_busy_with_retry_after() -> None:
    s: Scheduler[str] = Scheduler(max_waiting=2, retry_after=7)
    s.submit("a")
    s.take(timeout=1)
    s.submit("b")
    s.submit("c")
    with pytest.raises(BusyError) as info:
        s.submit("d")
    assert info.value.retry_after == 7
    assert len(s) == 2


def test_an_idle_scheduler_accepts_one_job_even_with_no_waiting_room() -> None:
    s: Scheduler[str] = Scheduler(max_waiting=0)
    s.submit("a")
    assert s.take(timeout=1) == "a"
    with pytest.raises(BusyError):
        s.submit("b")


def test_withdraw_removes_a_waiting_job_only() -> None:
    s: Scheduler[str] = Scheduler()
    s.submit("a")
    s.submit("b")
    assert s.take(timeout=1) == "a"
    assert not s.withdraw("a")  # running: too late
    assert s.withdraw("b")
    s.done("a")
    assert s.take(timeout=0.05) is None


def test_take_blocks_until_a_job_arrives() -> None:
    s: Scheduler[str] = Scheduler()
    got = []
    worker = threading.Thread(target=lambda: got.append(s.take()))
    worker.start()
    s.submit("x")
    worker.join(2)
    assert got == ["x"]


def test_close_wakes_the_worker_and_refuses_new_jobs() -> None:
    s: Scheduler[str] = Scheduler()
    s.submit("left")
    got = []
    assert s.close() == ["left"]
    worker = threading.Thread(target=lambda: got.append(s.take()))
    worker.start()
    worker.join(2)
    assert got == [None]
    with pytest.raises(ClosedError):
        s.submit("late")
