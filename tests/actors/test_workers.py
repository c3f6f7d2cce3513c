"""runtime.workers: reused greenlets with gevent.spawn's contract."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import gevent
import gevent.event
import pytest

from runtime import workers
from tests.harness import REPO

pytestmark = pytest.mark.timeout(10)


def test_jobs_run_in_greenlets_that_are_reused() -> None:
    # Given jobs that record which greenlet ran them, submitted one after the other
    ran: list[Any] = []
    done = gevent.event.Event()

    def job(n: int) -> None:
        ran.append((n, gevent.getcurrent()))
        if n == 2:
            done.set()

    # When each finishes before the next is submitted
    for n in range(3):
        workers.submit(job, n)
        gevent.sleep(0)  # the hub's turn: the job runs
    assert done.wait(5)

    # Then all three ran, in a greenlet other than the caller's, and the same one each time
    assert [n for n, _ in ran] == [0, 1, 2]
    assert all(g is not gevent.getcurrent() for _, g in ran)
    assert len({id(g) for _, g in ran}) == 1


def test_the_caller_goes_on_before_the_job_and_blocking_jobs_overlap() -> None:
    # Given two jobs that block until released
    release = gevent.event.Event()
    started: list[int] = []
    finished: list[int] = []

    def job(n: int) -> None:
        started.append(n)
        release.wait(5)
        finished.append(n)

    # When both are submitted
    workers.submit(job, 1)
    workers.submit(job, 2)

    # Then neither has started yet (spawn's contract), both start on the hub's turn, and
    # both finish once released
    assert started == []
    gevent.sleep(0)
    assert sorted(started) == [1, 2]
    release.set()
    gevent.sleep(0)
    gevent.sleep(0)
    assert sorted(finished) == [1, 2]


def test_a_job_that_raises_does_not_stop_later_jobs() -> None:
    # Given a job that raises (gevent reports it like a failed spawned greenlet)
    def bad(_: Any) -> None:
        raise RuntimeError("job failed")

    hub = gevent.get_hub()
    hub.NOT_ERROR = (*hub.NOT_ERROR, RuntimeError)  # keep the expected traceback quiet
    try:
        workers.submit(bad, None)
        gevent.sleep(0)
        # When another job is submitted
        result = gevent.event.AsyncResult()
        workers.submit(result.set, "later")
        # Then it runs
        assert result.get(timeout=5) == "later"
    finally:
        hub.NOT_ERROR = tuple(e for e in hub.NOT_ERROR if e is not RuntimeError)


REUSE_ACROSS_GREENLETS = """
from gevent import monkey
monkey.patch_all()
import gevent, gevent.event
from runtime import workers
ran = []
for n in range(50):
    done = gevent.event.Event()
    def job(done=done):
        ran.append(id(gevent.getcurrent()))
        done.set()
    # each job is submitted by a greenlet of its own, as pull greenlets and request readers do
    gevent.spawn(workers.submit, job).join()
    done.wait(5)
    gevent.sleep(0)  # the worker parks again
print(len(ran), len(set(ran)))
"""


def test_in_a_monkey_patched_program_any_greenlet_reuses_the_idle_workers() -> None:
    # Given a monkey-patched program (threading.local is then greenlet-local) where every job
    # is submitted from a different greenlet
    out = subprocess.run(
        [sys.executable, "-c", REUSE_ACROSS_GREENLETS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    # Then the 50 jobs ran in one or two reused greenlets, not in 50 fresh ones
    assert int(out[0]) == 50
    assert int(out[1]) <= 2
