"""Group sync: many consume-queue flushes done by one ``syncfs`` (Linux).

A checkpoint or a stop syncs every consume queue written since the last one: an fsync of its
file and, for a queue's first segment, of its directory, each ~0.3 ms on this VM's disk; a
broker with thousands of busy queues spent seconds of disk time on them (a stop with 16,000
written queues took 6 s). ``syncfs(fd)`` writes back every dirty file and directory of the
file system holding ``fd`` and commits its journal in one call (Linux 2.6.39; it reports
writeback errors since 5.8), so flushes waiting at the same moment cost one call between them.

``GroupSync.run(plan)`` is called from a greenlet of the hub (a Queue's sync helper). The first
flush to arrive leads: it lets the hub run until no more arrive, then, for ``MIN_BATCH`` or more
waiting, runs one ``syncfs`` in the thread pool and answers them all (the same error to all if
it fails); fewer run their own ``FlushPlan.run`` as before. Without ``syncfs`` (not Linux, no
glibc) or on a file system that is not the real one (the tests' fault-injecting one), every
flush runs its own plan.

The file system synced is the one holding the store's root directory, where the consume
queues live (``<root>/consumequeue``; a separate mount under it would need its own). The
directory's descriptor stays open from the first group sync on: ``syncfs`` reports a writeback
error that happened since the descriptor was opened, so one opened for each call would miss an
error the kernel's background writeback met before it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import weakref
from collections.abc import Callable
from functools import lru_cache

import gevent
import gevent.event

from runtime.actor import offload
from runtime.store.segments import FlushPlan
from runtime.store.storage import close_now

MIN_BATCH = 8
"""Fewer waiting flushes run their own fsyncs: a syncfs also writes back whatever else is dirty
on the file system (the commit log's unflushed tail), worth it only for a batch."""


@lru_cache(maxsize=1)
def _libc_syncfs() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def syncfs(fd: int) -> None:
    """``syncfs(2)`` on the file system holding ``fd``; OSError on failure."""
    fn = _libc_syncfs()
    if fn is None:
        raise OSError("syncfs is not available")
    if fn(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def syncfs_available() -> bool:
    return _libc_syncfs() is not None


class GroupSync:
    """Runs flush plans, many at once by one ``syncfs`` (see the module docstring)."""

    def __init__(
        self, directory: str, *, enabled: bool = True, sync_fs: Callable[[int], None] = syncfs
    ) -> None:
        self.directory = directory
        self.enabled = enabled and syncfs_available()
        self._sync_fs = sync_fs
        self._waiting: list[tuple[FlushPlan, gevent.event.AsyncResult]] = []
        self._leading = False
        self._fd = -1
        self.group_syncs = 0
        """syncfs calls made (tests, figures)."""

    def run(self, plan: FlushPlan) -> int:
        """Sync what ``plan`` names (its files, maybe their directory) and return its target;
        raises what the sync raised. Blocks this greenlet; call it from the hub's."""
        if not self.enabled:
            return offload(plan.run)
        done: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self._waiting.append((plan, done))
        if not self._leading:
            self._leading = True
            gevent.spawn(self._lead)
        return done.get()

    def _lead(self) -> None:
        try:
            quiet = 0
            while quiet < 2:  # two turns of the hub with no new arrival: the batch is formed
                seen = len(self._waiting)
                gevent.sleep(0)
                quiet = quiet + 1 if len(self._waiting) == seen else 0
            batch, self._waiting = self._waiting, []
        finally:
            self._leading = False
        if len(batch) < MIN_BATCH:
            for plan, done in batch:
                gevent.spawn(_run_one, plan, done)
            return
        try:
            offload(self._sync_fs, self._descriptor())
        except Exception as exc:
            for _plan, done in batch:
                done.set_exception(exc)
            return
        self.group_syncs += 1
        for plan, done in batch:
            done.set(plan.target)

    def _descriptor(self) -> int:
        """The store directory's descriptor, opened once (in the hub: never two at a time)."""
        if self._fd < 0:
            self._fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            weakref.finalize(self, close_now, self._fd)
        return self._fd


def _run_one(plan: FlushPlan, done: gevent.event.AsyncResult) -> None:
    try:
        done.set(offload(plan.run))
    except Exception as exc:
        done.set_exception(exc)
