"""``BackgroundWriter``: persist the latest snapshot of a JSON file without blocking an actor.

``request(obj)`` records the newest snapshot; one greenlet writes it atomically (configfile:
tmp + fsync + rename + dir fsync) in the hub's thread pool. Requests made while a write runs
coalesce into one more write of the newest snapshot. ``close()`` waits for the running write and
writes whatever is still pending, synchronously (for ``on_stop``).
"""

from __future__ import annotations

from typing import Any

import gevent
from loguru import logger

from runtime.actor import offload
from runtime.store.configfile import write_json


class BackgroundWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pending: Any = None
        self._has_pending = False
        self._runner: gevent.Greenlet | None = None
        self.writes = 0

    def request(self, obj: Any) -> None:
        self._pending = obj
        self._has_pending = True
        if self._runner is None:
            self._runner = gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            while self._has_pending:
                obj, self._pending, self._has_pending = self._pending, None, False
                try:
                    offload(write_json, self.path, obj)
                    self.writes += 1
                except OSError as exc:
                    logger.error("{} not persisted: {}", self.path, exc)
        finally:
            self._runner = None

    @property
    def busy(self) -> bool:
        return self._runner is not None

    def close(self, timeout: float = 10.0) -> None:
        runner = self._runner
        if runner is not None:
            runner.join(timeout=timeout)
        if self._has_pending:
            obj, self._pending, self._has_pending = self._pending, None, False
            write_json(self.path, obj)
            self.writes += 1
