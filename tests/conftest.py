"""Fixtures for every test: the main thread's gevent loop starts each test with a fresh clock;
a producer's round robin starts at the first queue (deterministic placement)."""

from __future__ import annotations

from collections.abc import Iterator

import gevent
import pytest

from actors.client import selectors


@pytest.fixture(autouse=True)
def _fresh_loop_time() -> Iterator[None]:
    """Bring the main thread's loop clock up to date before each test.

    libev reads the clock once per loop iteration and a timer started later counts from that
    cached time (gevent does not update it on start). This process is not monkey-patched, so
    a test that blocks the main thread for real (``subprocess.run``, ``queue.get``, a
    ``RuntimeProcess``) leaves the main hub's loop idle and its clock behind: a later test's
    ``gevent.joinall(timeout=10)`` once fired its timer at once after the integration examples
    had kept the loop idle for 10.8 s. gevent's own test cases do the same in ``setUp``.
    """
    gevent.get_hub().loop.update_now()
    yield


@pytest.fixture(autouse=True)
def _round_robin_from_the_first_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Producers in tests send their first message to the first queue (in production each
    starts at a random one, as RocketMQ's: ``actors.client.selectors.RoundRobin``)."""
    monkeypatch.setattr(selectors, "FIRST_QUEUE", 0)
    monkeypatch.setenv("ACTORMQ_FIRST_QUEUE", "0")  # (the processes a test starts)
