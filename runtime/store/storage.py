"""The storage-file Protocol and its real implementation on the OS.

Every store file that holds data (commit-log and consume-queue segments) goes through a
``FileSystem`` so tests can swap in the fault-injecting one from ``runtime.store.faults``.
Writes are ``os.pwrite`` straight to the kernel: no user-space buffer, so a ``kill -9`` loses
nothing that a write returned for. Durability needs ``fsync`` (and ``fsync_dir`` after creating
or removing files).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Protocol

from gevent import monkey

Buffer = bytes | bytearray | memoryview

close_now = monkey.get_original("os", "close")
"""``os.close`` itself: gevent's (monkey-patched) ``close`` adds an ``fcntl`` and an ``fstat``,
and defers closing a descriptor that is not a regular file, a directory's too, to its loop's
next iteration, so a hub thread syncing many directories in a row would hold their descriptors
meanwhile."""


class StorageFile(Protocol):
    """One data file. Not thread-safe except ``fsync``, which may run in a worker thread."""

    path: str

    def size(self) -> int:
        """Bytes in the file (as this process wrote them)."""
        ...

    def append(self, data: Buffer) -> None:
        """Write all of ``data`` at the end, or raise OSError (a partial write may remain)."""
        ...

    def pread(self, n: int, offset: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end of the file)."""
        ...

    def fsync(self) -> None: ...

    def truncate(self, n: int) -> None: ...

    def close(self) -> None: ...


class FileSystem(Protocol):
    def open(self, path: str) -> StorageFile:
        """Open ``path`` read-write, creating it when missing."""
        ...

    def remove(self, path: str) -> None: ...

    def fsync_dir(self, path: str) -> None: ...


class OsFile:
    """A ``StorageFile`` on a real file descriptor. The fd closes when the object is collected,
    so a reader holding a reference can finish a ``pread`` even after retention dropped it."""

    __slots__ = ("_fd", "_size", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._size = os.fstat(self._fd).st_size

    def size(self) -> int:
        return self._size

    def append(self, data: Buffer) -> None:
        append_at_end(self, self._fd, data)

    def pread(self, n: int, offset: int) -> bytes:
        return os.pread(self._fd, n, offset)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def fileno(self) -> int:
        """The descriptor (-1 once closed), for ``runtime.store.fsyncer``."""
        return self._fd

    def truncate(self, n: int) -> None:
        os.ftruncate(self._fd, n)
        self._size = n

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


def append_at_end(f: OsFile | Any, fd: int, data: Buffer) -> None:
    """``pwrite`` all of ``data`` at ``f._size`` through ``fd``, advancing ``f._size`` by what
    the kernel took (after an error, to the end of the partial write)."""
    view = memoryview(data)
    total = len(view)
    done = 0
    while done < total:
        n = os.pwrite(fd, view[done:], f._size)
        if n <= 0:
            raise OSError(f"short write to {f.path}")
        done += n
        f._size += n


class OsFileSystem:
    """The real file system."""

    def open(self, path: str) -> StorageFile:
        return OsFile(path)

    def remove(self, path: str) -> None:
        os.remove(path)

    def fsync_dir(self, path: str) -> None:
        fsync_dir(path)


def fsync_dir(path: str) -> None:
    """fsync a directory so file creations, renames and removals inside it are durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        close_now(fd)


OS_FS = OsFileSystem()
