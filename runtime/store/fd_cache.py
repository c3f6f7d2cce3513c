"""Consume-queue files without one open descriptor each: a process-wide descriptor cache.

Every consume queue is a directory of segment files, and a broker with thousands of topics has
tens of thousands of them: a descriptor per file (what RocketMQ's mapped files and Kafka's
segments hold) runs into the process's open-files limit (1,024 by default on many Linux
systems, 20,000 on some hosts), and then every ``open`` fails: new queues, new segments, client
connections and the flusher's directory sync alike. Here consume-queue segments are
``PooledFile``s: each opens its descriptor when used and the ``FdCache`` keeps at most
``budget`` of them open, closing the least recently used one to make room. A busy queue keeps
its descriptor; thousands of idle ones cost none. Commit-log and index files stay ``OsFile``s
(a few per store).

The budget is half the soft open-files limit at the first open (``runtime.fdlimit`` raises the
soft limit to the hard one when a broker starts, as the JVM does), at least ``MIN_BUDGET``; the
other half is left for sockets, the commit log, index and config files.

Safety:
- Every operation runs under the cache's lock (a real OS lock: the recovery and the
  checkpoint's fsync run in worker threads), so a descriptor is never closed while a ``pread``
  or ``pwrite`` uses it. ``fsync`` (it may take milliseconds and must not hold the lock) syncs
  a duplicate of the descriptor taken under the lock, so an eviction or ``close`` meanwhile
  closes only the original.
- The cache holds each open file, so a file dropped without ``close`` keeps its descriptor
  until it is evicted (the consume queue closes its segments when it deletes or drops them).
  ``release`` closes a descriptor early and leaves the file usable (a retired, idle queue's).
- A file reopens without ``O_CREAT``: a segment deleted meanwhile raises ``FileNotFoundError``
  rather than coming back empty. A closed ``PooledFile`` never reopens (``EBADF``).
- Writes go straight to the kernel (``pwrite``), so closing a descriptor loses nothing; an
  ``fsync`` through a later descriptor flushes the same inode (Linux reports a writeback error
  nobody has seen yet to the next ``fsync`` of any descriptor, since 4.16). Consume queues are
  rebuilt from the commit log when they are lost, and are synced only at checkpoints.
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict

from gevent import monkey

from runtime.fdlimit import env_count, soft_open_files
from runtime.store.storage import (
    OS_FS,
    Buffer,
    FileSystem,
    OsFileSystem,
    StorageFile,
    append_at_end,
    close_now,
)

MIN_BUDGET = 16
_RealLock = monkey.get_original("_thread", "allocate_lock")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


BUDGET_ENV = "ACTORMQ_CQ_FD_BUDGET"
"""Sets the budget (tests and soaks: a budget of 1 reopens a file at nearly every use)."""


def default_budget() -> int:
    """Half the soft open-files limit (``RLIM_INFINITY``: 65,536), at least ``MIN_BUDGET``;
    ``ACTORMQ_CQ_FD_BUDGET`` overrides it."""
    return env_count(BUDGET_ENV) or max(MIN_BUDGET, soft_open_files() // 2)


class FdCache:
    """At most ``budget`` descriptors of ``PooledFile``s open at once (see the module docstring).
    ``opens`` and ``evictions`` count since the start (``evictions`` > 0: the budget is short of
    the files in use, each reopen costs an ``open`` system call)."""

    def __init__(self, budget: int | None = None) -> None:
        self.lock = _RealLock()
        self._budget = budget
        self._open: OrderedDict[PooledFile, None] = OrderedDict()
        self.opens = 0
        self.evictions = 0

    @property
    def budget(self) -> int:
        if self._budget is None:
            self._budget = default_budget()
        return self._budget

    @property
    def open_count(self) -> int:
        return len(self._open)

    def _fd(self, f: PooledFile) -> int:
        """``f``'s descriptor, opened (evicting the least recently used) when closed. Lock held."""
        if f._fd >= 0:
            self._open.move_to_end(f)
            return f._fd
        if f._closed:
            raise OSError(errno.EBADF, "file closed", f.path)
        self._make_room()
        f._fd = os.open(f.path, os.O_RDWR | _O_CLOEXEC)
        self._open[f] = None
        self.opens += 1
        return f._fd

    def _adopt(self, f: PooledFile, fd: int) -> None:
        """Count a descriptor ``f`` opened itself (its creation, after ``_make_room``). Lock
        held."""
        self._open[f] = None
        self.opens += 1
        f._fd = fd

    def _make_room(self) -> None:
        budget = self.budget
        while len(self._open) >= budget:
            victim, _ = self._open.popitem(last=False)  # the least recently used
            fd, victim._fd = victim._fd, -1
            close_now(fd)
            self.evictions += 1

    def _forget(self, f: PooledFile) -> None:
        """Close ``f``'s descriptor: for good when ``f`` is closed, else until its next use
        (``release``). Lock held."""
        self._open.pop(f, None)
        if f._fd >= 0:
            fd, f._fd = f._fd, -1
            close_now(fd)


class PooledFile:
    """A ``StorageFile`` whose descriptor the ``FdCache`` opens and closes (module docstring)."""

    __slots__ = ("_cache", "_closed", "_fd", "_size", "path")

    def __init__(self, path: str, cache: FdCache) -> None:
        self.path = path
        self._cache = cache
        self._fd = -1
        self._closed = False
        with cache.lock:
            cache._make_room()
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o644)
            try:
                self._size = os.fstat(fd).st_size
            except OSError:
                close_now(fd)
                raise
            cache._adopt(self, fd)

    def size(self) -> int:
        return self._size

    def append(self, data: Buffer) -> None:
        with self._cache.lock:
            append_at_end(self, self._cache._fd(self), data)

    def pread(self, n: int, offset: int) -> bytes:
        with self._cache.lock:
            return os.pread(self._cache._fd(self), n, offset)

    def fsync(self) -> None:
        # A descriptor of its own, so the cache may close the file's meanwhile: a duplicate of
        # the open one, or (evicted) a fresh one that takes no slot from a busy file. The lock
        # is held for the dup only: this runs in worker threads, where a contended lock costs
        # a GIL switch.
        with self._cache.lock:
            if self._closed:
                raise OSError(errno.EBADF, "file closed", self.path)
            fd = os.dup(self._fd) if self._fd >= 0 else -1
        if fd < 0:
            fd = os.open(self.path, os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            close_now(fd)

    def truncate(self, n: int) -> None:
        with self._cache.lock:
            os.ftruncate(self._cache._fd(self), n)
            self._size = n

    @property
    def has_descriptor(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Close the descriptor now instead of when the cache needs the room (an idle queue's:
        ``ConsumeQueue.release_descriptors``); the next use reopens it. A sync under way keeps
        its own duplicate."""
        with self._cache.lock:
            self._cache._forget(self)

    def close(self) -> None:
        with self._cache.lock:
            self._closed = True
            self._cache._forget(self)


class PooledFileSystem(OsFileSystem):
    """``OsFileSystem`` whose files are ``PooledFile``s of one ``FdCache``."""

    def __init__(self, cache: FdCache) -> None:
        self.cache = cache

    def open(self, path: str) -> StorageFile:
        return PooledFile(path, self.cache)


FD_CACHE = FdCache()
"""The process's cache: the open-files limit is the process's."""
POOLED_FS = PooledFileSystem(FD_CACHE)


def for_consume_queues(fs: FileSystem) -> FileSystem:
    """The file system a consume queue uses: the real one becomes ``POOLED_FS``; any other (the
    tests' fault-injecting one) is used as given."""
    return POOLED_FS if fs is OS_FS else fs
