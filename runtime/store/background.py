"""``BackgroundWriter``: persist the latest snapshot of a JSON file without blocking an actor.

``request(obj)`` records the newest snapshot (or a zero-argument callable that takes it, called
when the write starts: a table changed thousands of times between two writes, as the topic
table is while a heartbeat makes thousands of retry topics, is then copied once per write, not
once per change); one greenlet writes it atomically (configfile:
tmp + fsync + rename + dir fsync) in the hub's thread pool. Requests made while a write runs
coalesce into one more write of the newest snapshot. ``request(obj, done)`` also sets the
AsyncResult ``done`` once a write covering that snapshot ended: True when it is durable, False
when the write failed (for callers that must not answer before the file holds the change).
``close()`` waits for the running write and writes whatever is still pending, synchronously
(for ``on_stop``). ``min_interval``: once ``BURST`` writes started within a second, the next
ones start at least that many seconds apart (a file rewritten whole at every change, as the
topic table is while thousands of topics are made one by one, is written a few times a second
instead of after each change: each write costs the whole file's encoding; an occasional change
is still written at once, as before); a request waiting for its write (``done``) is not kept
waiting for the interval. ``close()`` is final: nothing requested after it is written.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
from loguru import logger

from runtime.actor import offload
from runtime.store.configfile import write_json

BURST = 8
"""Writes within a second before ``min_interval`` applies."""


class BackgroundWriter:
    def __init__(self, path: str, min_interval: float = 0.0) -> None:
        self.path = path
        self.min_interval = min_interval
        self._starts: deque[float] = deque(maxlen=BURST)
        """When the last ``BURST`` writes started."""
        self._wake = gevent.event.Event()
        self._closing = False
        self._pending: Any = None
        self._has_pending = False
        self._runner: gevent.Greenlet | None = None
        self._waiters: list[gevent.event.AsyncResult] = []
        self.writes = 0

    def request(
        self, obj: Any | Callable[[], Any], done: gevent.event.AsyncResult | None = None
    ) -> None:
        self._pending = obj
        self._has_pending = True
        if done is not None:
            self._waiters.append(done)
            self._wake.set()  # (the writer may be waiting for the interval)
        if self._runner is None:
            self._runner = gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            while self._has_pending:
                wait = self._wait(time.monotonic())
                if wait > 0 and not self._waiters:
                    self._wake.clear()
                    self._wake.wait(wait)  # the interval, a waiter or close()
                    if self._closing:
                        return  # close() writes what is pending
                self._starts.append(time.monotonic())
                obj, self._pending, self._has_pending = self._pending, None, False
                waiters, self._waiters = self._waiters, []
                ok = False
                try:
                    offload(write_json, self.path, _taken(obj))
                    self.writes += 1
                    ok = True
                except OSError as exc:
                    logger.error("{} not persisted: {}", self.path, exc)
                for done in waiters:
                    done.set(ok)
        finally:
            self._runner = None

    def _wait(self, now: float) -> float:
        """Seconds the next write waits: none unless ``BURST`` writes started within a second."""
        starts = self._starts
        if self.min_interval <= 0 or len(starts) < BURST or now - starts[0] > 1.0:
            return 0.0
        return starts[-1] + self.min_interval - now

    @property
    def busy(self) -> bool:
        return self._runner is not None

    def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        self._wake.set()
        runner = self._runner
        if runner is not None:
            runner.join(timeout=timeout)
        if self._has_pending:
            obj, self._pending, self._has_pending = self._pending, None, False
            waiters, self._waiters = self._waiters, []
            write_json(self.path, _taken(obj))
            self.writes += 1
            for done in waiters:
                done.set(True)


def _taken(obj: Any) -> Any:
    """The snapshot ``obj`` is, or the one it takes (a callable)."""
    return obj() if callable(obj) else obj
