"""Test-only storage fault layer (a LazyFS-like ``FileSystem``; RELIABILITY.md section 3).

``FaultyFileSystem`` wraps the real file system and remembers, per file, how many bytes were
written and how many were covered by the last successful fsync. Faults:

- ``fail_next_fsync(errno=EIO)``: the next fsync raises OSError (and syncs nothing);
- ``slow_fsync(seconds)``: every fsync sleeps first (it runs in a worker thread via ``offload``);
- ``enospc_after(n, err=ENOSPC)``: after ``n`` more bytes are written, writes fail with ENOSPC
  (or ``err``: EDQUOT, a quota used up; the write that crosses the limit is partial, as a real
  full disk does);
- ``fail_next_remove(errno=EACCES)``: the next ``remove`` raises OSError (the file stays);
- ``bad_sector(path, offset, length, errno=EIO)``: every ``pread`` of the file that touches
  those bytes raises OSError (a disk that cannot read them), until ``clear_bad_sectors()``;
- ``power_loss(rng)``: every file is cut to a random length in [fsynced, written] and files
  whose creation was never made durable by a directory fsync disappear; ``power_loss(rng,
  page_loss=p)`` instead keeps every file's written length and loses each 4 KiB page past its
  fsynced length with probability ``p`` (it reads as zeros: a file system that made the new
  size durable before all of the data, as delayed allocation may write pages back in any
  order); ``lost_pages`` lists them;
- ``bitflip(path, offset)`` and ``truncate(path, n)``: damage a file directly.

Only files opened through this object are tracked.
"""

from __future__ import annotations

import errno as errno_mod
import os
import random
import threading
import time

from runtime.store.storage import Buffer, OsFile, StorageFile, fsync_dir

PAGE = 4096


class FaultyFile:
    """An ``OsFile`` that reports to its ``FaultyFileSystem``."""

    def __init__(self, fs: FaultyFileSystem, path: str) -> None:
        self._fs = fs
        self._file = OsFile(path)
        self.path = path
        self.synced = self._file.size()

    def size(self) -> int:
        return self._file.size()

    def append(self, data: Buffer) -> None:
        allowed = self._fs._take_write_budget(len(data))
        if allowed < len(data):
            if allowed:
                self._file.append(memoryview(data)[:allowed])
            err = self._fs._full_errno
            raise OSError(err, os.strerror(err), self.path)
        self._file.append(data)

    def pread(self, n: int, offset: int) -> bytes:
        err = self._fs._bad_read(self.path, offset, n)
        if err is not None:
            raise OSError(err, os.strerror(err), self.path)
        return self._file.pread(n, offset)

    def fsync(self) -> None:
        size = self._file.size()
        self._fs._before_fsync(self.path)
        self._file.fsync()
        self.synced = size
        self._fs.fsync_count += 1

    def truncate(self, n: int) -> None:
        self._file.truncate(n)
        self.synced = min(self.synced, n)

    def close(self) -> None:
        self._file.close()


class FaultyFileSystem:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, FaultyFile] = {}
        self._undurable_creates: set[str] = set()
        self._fail_fsync: list[int] = []
        self._fsync_delay = 0.0
        self._write_budget: int | None = None
        self._full_errno = errno_mod.ENOSPC
        self._fail_remove: list[int] = []
        self._bad: dict[str, list[tuple[int, int, int]]] = {}  # path -> (start, end, errno)
        self.fsync_count = 0
        self.fsync_started = threading.Event()
        self.lost_pages: dict[str, list[int]] = {}  # the last power_loss(page_loss=...)'s

    # -- FileSystem ----------------------------------------------------------------------------

    def open(self, path: str) -> StorageFile:
        existed = os.path.exists(path)
        f = FaultyFile(self, path)
        with self._lock:
            self._files[path] = f
            if not existed:
                self._undurable_creates.add(path)
        return f

    def remove(self, path: str) -> None:
        with self._lock:
            err = self._fail_remove.pop(0) if self._fail_remove else None
        if err is not None:
            raise OSError(err, os.strerror(err), path)
        os.remove(path)
        with self._lock:
            self._files.pop(path, None)
            self._undurable_creates.discard(path)

    def fsync_dir(self, path: str) -> None:
        self._before_fsync(path)
        fsync_dir(path)
        prefix = os.path.join(path, "")
        with self._lock:
            self._undurable_creates = {
                p
                for p in self._undurable_creates
                if not (p.startswith(prefix) and os.sep not in p[len(prefix) :])
            }

    # -- fault controls ------------------------------------------------------------------------

    def fail_next_fsync(self, err: int = errno_mod.EIO) -> None:
        with self._lock:
            self._fail_fsync.append(err)

    def slow_fsync(self, seconds: float) -> None:
        self._fsync_delay = seconds

    def enospc_after(self, n: int | None, err: int = errno_mod.ENOSPC) -> None:
        """Allow ``n`` more bytes of writes, then ``err`` (ENOSPC); None lifts the limit."""
        with self._lock:
            self._write_budget = n
            self._full_errno = err

    def fail_next_remove(self, err: int = errno_mod.EACCES) -> None:
        with self._lock:
            self._fail_remove.append(err)

    def bad_sector(self, path: str, offset: int, length: int, err: int = errno_mod.EIO) -> None:
        with self._lock:
            self._bad.setdefault(path, []).append((offset, offset + length, err))

    def clear_bad_sectors(self) -> None:
        with self._lock:
            self._bad.clear()

    def power_loss(
        self, rng: random.Random | None = None, page_loss: float = 0.0
    ) -> dict[str, tuple[int, int]]:
        """Simulate a power cut. Returns {path: (written, kept)} for every tracked file.

        Close every store object before calling this (the process "died"). See the module
        docstring for ``page_loss``.
        """
        rng = rng or random.Random()
        self.lost_pages = {}
        report: dict[str, tuple[int, int]] = {}
        with self._lock:
            files = dict(self._files)
            lost_creates = set(self._undurable_creates)
            self._files.clear()
            self._undurable_creates.clear()
        for path, f in files.items():
            if not os.path.exists(path):
                continue
            written = os.path.getsize(path)
            if path in lost_creates:
                os.remove(path)
                report[path] = (written, -1)
                continue
            low = min(f.synced, written)
            if page_loss:
                self._lose_pages(path, low, written, rng, page_loss)
                report[path] = (written, written)
                continue
            kept = rng.randint(low, written)
            os.truncate(path, kept)
            report[path] = (written, kept)
        return report

    def _lose_pages(
        self, path: str, synced: int, written: int, rng: random.Random, p: float
    ) -> None:
        """Zero each page of ``path`` past ``synced`` (and up to ``written``) with probability
        ``p``; the bytes of a page below ``synced`` stay."""
        lost = []
        with open(path, "r+b") as fh:
            for page in range(synced - synced % PAGE, written, PAGE):
                if rng.random() >= p:
                    continue
                start = max(page, synced)
                end = min(page + PAGE, written)
                fh.seek(start)
                fh.write(bytes(end - start))
                lost.append(page)
        if lost:
            self.lost_pages[path] = lost

    @staticmethod
    def bitflip(path: str, offset: int, bit: int = 0) -> None:
        with open(path, "r+b") as fh:
            fh.seek(offset)
            byte = fh.read(1)
            fh.seek(offset)
            fh.write(bytes([byte[0] ^ (1 << bit)]))

    @staticmethod
    def truncate(path: str, n: int) -> None:
        os.truncate(path, n)

    # -- internals -----------------------------------------------------------------------------

    def _before_fsync(self, path: str) -> None:
        self.fsync_started.set()
        if self._fsync_delay:
            time.sleep(self._fsync_delay)
        with self._lock:
            err = self._fail_fsync.pop(0) if self._fail_fsync else None
        if err is not None:
            raise OSError(err, os.strerror(err), path)

    def _bad_read(self, path: str, offset: int, n: int) -> int | None:
        with self._lock:
            for start, end, err in self._bad.get(path, ()):
                if offset < end and start < offset + n:
                    return err
        return None

    def _take_write_budget(self, n: int) -> int:
        with self._lock:
            if self._write_budget is None:
                return n
            allowed = min(n, self._write_budget)
            self._write_budget -= allowed
            return allowed


class PreadSizes(FaultyFileSystem):
    """A ``FaultyFileSystem`` that remembers how many bytes each ``pread`` asked for (``asked``):
    how far a reader trusted a record's size field."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def open(self, path: str) -> StorageFile:
        f = super().open(path)
        inner = f.pread

        def pread(n: int, offset: int) -> bytes:
            self.asked.append(n)
            return inner(n, offset)

        f.pread = pread  # type: ignore[method-assign]
        return f
