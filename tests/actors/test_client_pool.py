"""actors.client.pool: at most ``size`` tasks at once, in order, drain and shutdown — for both
the greenlet pool (patched programs) and the thread pool (plain programs)."""

from __future__ import annotations

import threading
from typing import Any

import gevent
import gevent.event
import pytest

from actors.client.pool import GreenletTaskPool, ThreadTaskPool

pytestmark = pytest.mark.timeout(20)


def test_greenlet_pool_runs_at_most_size_tasks_at_once_in_order() -> None:
    # Given a pool of 2 and five tasks that block until released
    pool = GreenletTaskPool(2)
    release = gevent.event.Event()
    running: list[int] = []
    finished: list[int] = []
    peak = [0]

    def task(n: int) -> None:
        running.append(n)
        peak[0] = max(peak[0], len(running))
        release.wait(5)
        running.remove(n)
        finished.append(n)

    for n in range(5):
        pool.submit(task, n)
    # When the hub runs them
    gevent.sleep(0)
    # Then two run, the rest wait; drain does not return while they do
    assert sorted(running) == [0, 1]
    assert not pool.drain(0.01)
    release.set()
    assert pool.drain(5)
    # And all ran, never more than two at once
    assert sorted(finished) == [0, 1, 2, 3, 4]
    assert peak[0] == 2


def test_greenlet_pool_logs_a_failing_task_and_goes_on() -> None:
    pool = GreenletTaskPool(1)
    done: list[str] = []

    def bad() -> None:
        raise RuntimeError("listener bug")

    pool.submit(bad)
    pool.submit(done.append, "after")
    assert pool.drain(5)
    assert done == ["after"]


def test_greenlet_pool_shutdown_drops_tasks_not_started() -> None:
    pool = GreenletTaskPool(1)
    release = gevent.event.Event()
    ran: list[int] = []

    def task(n: int) -> None:
        ran.append(n)
        release.wait(5)

    pool.submit(task, 1)
    pool.submit(task, 2)
    gevent.sleep(0)
    # When the pool shuts down while task 1 runs and task 2 waits
    pool.shutdown()
    release.set()
    # Then task 1 finishes, task 2 never starts, and new tasks are refused
    assert pool.drain(5)
    assert ran == [1]
    with pytest.raises(RuntimeError):
        pool.submit(task, 3)


def test_thread_pool_runs_tasks_on_other_threads_and_drains() -> None:
    pool = ThreadTaskPool(2, "test-pool")
    seen: list[Any] = []
    lock = threading.Lock()

    def task(n: int) -> None:
        with lock:
            seen.append((n, threading.get_ident()))

    try:
        for n in range(4):
            pool.submit(task, n)
        assert pool.drain(5)
        assert sorted(n for n, _ in seen) == [0, 1, 2, 3]
        assert all(ident != threading.get_ident() for _, ident in seen)
    finally:
        pool.shutdown()


def test_greenlet_pool_task_draining_its_own_pool_waits_only_for_the_others() -> None:
    # Given a pool of 2: one task that drains the pool, one that runs until released
    pool = GreenletTaskPool(2)
    release = gevent.event.Event()
    results: list[tuple[bool, bool]] = []

    def drainer() -> None:
        results.append((pool.drain(0.05), pool.drain(5)))

    def other() -> None:
        release.wait(5)

    pool.submit(other)
    pool.submit(drainer)
    gevent.sleep(0)
    # When the other task is released during the drainer's second drain
    gevent.sleep(0.1)
    release.set()
    # Then the first drain timed out (the other still ran), the second returned once it
    # finished, and neither waited for the drainer itself
    assert pool.drain(5) and results == [(False, True)]


def test_thread_pool_task_draining_its_own_pool_does_not_wait_for_itself() -> None:
    # Given a pool of 1 whose only task drains the pool, a second task queued behind it
    pool = ThreadTaskPool(1, "test-pool")
    results: list[bool] = []
    returned = threading.Event()

    def drainer() -> None:
        results.append(pool.drain(5))
        returned.set()

    try:
        pool.submit(drainer)
        pool.submit(lambda: None)
        # Then the drain returns at once: nothing else runs (the queued task is not waited
        # for: the consumer's shutdown drops it)
        assert returned.wait(2) and results == [True]
    finally:
        pool.shutdown()
