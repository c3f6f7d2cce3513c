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

``start(fds, done)`` submits and returns at once; ``done(errno)`` is called in the hub when the
thread finished (0: every file synced, else the first failure's errno), so it must not block.
``fsync(fds)`` is the same for a greenlet that waits (it raises OSError). The descriptors are
duplicated at submission, so a file closed meanwhile cannot make the thread sync another file
that took its number; a bad descriptor raises OSError from the submission itself.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any

import gevent
from gevent.hub import Waiter

from runtime.store import accel

API = 1
"""The ``_fsyncer`` interface this code calls."""


class Fsyncer:
    """One native fsync thread and the hub's watch on its eventfd. Greenlets of one hub only."""

    def __init__(self, syncer: Any) -> None:
        self._syncer = syncer
        self._tokens = itertools.count()
        self.submitted = 0
        """Jobs handed to the thread so far."""
        self._callbacks: dict[int, Callable[[int], object]] = {}
        self._watcher = gevent.get_hub().loop.io(syncer.fileno(), 1)  # 1: readable
        self._watcher.start(self._collect)

    @classmethod
    def open(cls) -> Fsyncer | None:
        native = accel.native("_fsyncer", API)
        return None if native is None else cls(native.Syncer())

    def start(self, fds: Sequence[int], done: Callable[[int], object]) -> None:
        """fsync ``fds`` in order on the thread; ``done(errno)`` in the hub afterwards."""
        token = next(self._tokens)
        self._syncer.submit(token, fds)
        self._callbacks[token] = done  # the hub collects only after this greenlet yields
        self.submitted += 1

    def fsync(self, fds: Sequence[int]) -> None:
        """``start`` and wait in this greenlet; OSError when an fsync failed."""
        waiter = Waiter()
        self.start(fds, waiter.switch)
        err = waiter.get()
        if err:
            raise OSError(err, f"fsync: {os.strerror(err)}")

    def _collect(self) -> None:
        """The eventfd's callback, in the hub: hand each outcome to its callback."""
        for token, err in self._syncer.completed():
            done = self._callbacks.pop(token, None)
            if done is not None:
                done(err)

    def close(self) -> None:
        """Finish what was submitted (blocking the hub for a fsync still running), stop the
        thread, and hand the last outcomes to their callbacks on the hub's next turn."""
        self._watcher.stop()
        self._watcher.close()
        self._syncer.close()
        loop = gevent.get_hub().loop
        for token, err in self._syncer.completed():
            done = self._callbacks.pop(token, None)
            if done is not None:
                loop.run_callback(done, err)
