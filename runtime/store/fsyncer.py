"""fsync without blocking the hub and without the GIL hand-offs of a Python worker thread.

``Fsyncer.open()`` is the native fsync thread of ``runtime.store._fsyncer`` (built with the
other C accelerator by ``pip install``), or None when it is not built or
``ACTORMQ_PURE_PYTHON=1``: callers then run the fsync in the hub's thread pool
(``runtime.actor.offload``), as before.

Why a thread of its own: a pool thread must take the GIL to run its Python loop, and the hub
holds it until it next blocks, so each offloaded fsync starts only after the hub finished what
it was doing and two wake-ups later; measured on the 2-core VM, an offloaded no-op costs 61 µs
and a SYNC_FLUSH send spent ~0.5 ms beyond its ASYNC_FLUSH round trip for a 0.16 ms fsync.
The native thread starts the fsync as soon as it is submitted, while the hub carries on, and
wakes the hub through an eventfd that the hub watches like a socket.

``fsync(fds)`` blocks only the calling greenlet (it must not run in the hub itself) and raises
OSError with the first failing fsync's errno; the descriptors are duplicated at submission, so
a file closed meanwhile cannot make the thread sync another file that took its number.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

import gevent
from gevent.hub import Waiter

API = 1
"""The ``_fsyncer`` interface this code calls."""


def _native() -> Any | None:
    if os.environ.get("ACTORMQ_PURE_PYTHON") == "1":
        return None
    try:
        from runtime.store import _fsyncer
    except ImportError:
        return None
    return _fsyncer if getattr(_fsyncer, "API_VERSION", None) == API else None


class Fsyncer:
    """One native fsync thread and the hub's watch on its eventfd. Greenlets of one hub only."""

    def __init__(self, syncer: Any) -> None:
        self._syncer = syncer
        self._tokens = itertools.count()
        self.submitted = 0
        """Jobs handed to the thread so far."""
        self._waiting: dict[int, Waiter] = {}
        self._watcher = gevent.get_hub().loop.io(syncer.fileno(), 1)  # 1: readable
        self._watcher.start(self._collect)

    @classmethod
    def open(cls) -> Fsyncer | None:
        native = _native()
        return None if native is None else cls(native.Syncer())

    def fsync(self, fds: Sequence[int]) -> None:
        token = next(self._tokens)
        waiter = Waiter()
        self._waiting[token] = waiter
        try:
            self._syncer.submit(token, fds)
            self.submitted += 1
            err = waiter.get()
        finally:
            self._waiting.pop(token, None)
        if err:
            raise OSError(err, f"fsync: {os.strerror(err)}")

    def _collect(self) -> None:
        """The eventfd's callback, in the hub: hand each outcome to its greenlet."""
        for token, err in self._syncer.completed():
            waiter = self._waiting.pop(token, None)
            if waiter is not None:
                waiter.switch(err)

    def close(self) -> None:
        """Finish what was submitted (blocking the hub for a fsync still running), stop the
        thread, and wake any greenlet still waiting with its outcome."""
        self._watcher.stop()
        self._watcher.close()
        self._syncer.close()
        loop = gevent.get_hub().loop
        for token, err in self._syncer.completed():
            waiter = self._waiting.pop(token, None)
            if waiter is not None:
                loop.run_callback(waiter.switch, err)
