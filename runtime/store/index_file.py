"""One key-index file: a persistent hash like RocketMQ's IndexFile, in an ``mmap``.

Laid out as arrays so each insert is a handful of memoryview stores (no per-entry struct
packing):

```
header 64 B   magic "AMQX", version, slots, capacity, count, begin/end store time, begin/end phys
slots         uint32[slots]     1 + index of the newest entry in the slot (0 = empty)
hash          uint32[capacity]  crc32 of "topic#key"
phys          int64[capacity]   commit-log offset of the record
time          int64[capacity]   store timestamp (ms)
prev          uint32[capacity]  1 + index of the previous entry in the same slot (0 = none)
```

Arrays are in the machine's byte order (little-endian on every platform we run on; the header
magic is checked). An entry is written before its slot points at it, so entries past the
header's count after a crash are complete (``adopt``). The files of a store are
``runtime.store.index.IndexService``'s.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib

from runtime.errors import StoreError

MAGIC = b"AMQX"
VERSION = 1
_HEADER = struct.Struct("=4sIIIIIqqqq")
HEADER_SIZE = 64


def key_hash(topic: str, key: str) -> int:
    return zlib.crc32(f"{topic}#{key}".encode())


def check_header(head: bytes, file_size: int) -> tuple[int, int]:
    """``(slots, capacity)`` of an existing file's header, or a ``ValueError`` saying why the
    header cannot be this file's: every field that sizes or bounds an access is checked (a
    zero slot count would divide by zero in a lookup, a count past the capacity would write
    past the arrays, a capacity that does not match the file's size would map or grow it)."""
    (magic, version, slots, capacity, count, _pad, _bt, _et, begin_phys, end_phys) = (
        _HEADER.unpack_from(head)
    )
    if magic != MAGIC or version != VERSION:
        raise ValueError("not an index file of this version / byte order")
    if slots < 1 or capacity < 1:
        raise ValueError(f"header says {slots} hash slots and capacity {capacity}")
    if file_size != IndexFile.file_size(slots, capacity):
        raise ValueError(
            f"{file_size} bytes, but {slots} hash slots and capacity {capacity} make "
            f"{IndexFile.file_size(slots, capacity)}"
        )
    if count > capacity:
        raise ValueError(f"header counts {count} entries, capacity {capacity}")
    if not 0 <= begin_phys <= end_phys:
        raise ValueError(f"header covers commit-log offsets [{begin_phys}, {end_phys})")
    return slots, capacity


class IndexFile:
    """One index file (see the module docstring)."""

    def __init__(self, path: str, slots: int, capacity: int, *, first_phys: int = 0) -> None:
        self.path = path
        exists = os.path.exists(path)
        self.slots = slots
        self.capacity = capacity
        size = self.file_size(slots, capacity)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if exists:
                head = os.pread(fd, HEADER_SIZE, 0)
                if len(head) < HEADER_SIZE:
                    raise StoreError(path, "index file shorter than its header")
                try:
                    slots, capacity = check_header(head, os.fstat(fd).st_size)
                except ValueError as exc:
                    raise StoreError(path, f"corrupt index file header: {exc}") from None
                self.slots, self.capacity = slots, capacity
                size = self.file_size(slots, capacity)
            else:
                os.ftruncate(fd, size)
            self._mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        """Kept open for ``flush``: fsync writes back the pages dirtied through the mapping."""
        self.commits = 0
        """How many times the header was committed (every write ends with a commit)."""
        self.synced = 0
        """``commits`` as it was when the last ``flush`` began: equal means nothing to fsync."""
        mv = memoryview(self._mm)
        self._mv = mv
        o = HEADER_SIZE
        self._slot = mv[o : o + 4 * slots].cast("I")
        o += 4 * slots
        o = (o + 7) // 8 * 8
        self._phys = mv[o : o + 8 * capacity].cast("q")
        o += 8 * capacity
        self._time = mv[o : o + 8 * capacity].cast("q")
        o += 8 * capacity
        self._hash = mv[o : o + 4 * capacity].cast("I")
        o += 4 * capacity
        self._prev = mv[o : o + 4 * capacity].cast("I")
        if exists:
            (_m, _v, _s, _c, self.count, _pad, self.begin_time, self.end_time, self.begin_phys,
             self.end_phys) = _HEADER.unpack_from(self._mm, 0)  # fmt: skip
        else:
            self.count = 0
            self.begin_time = self.end_time = 0
            self.begin_phys = self.end_phys = first_phys
            self.commit()

    @staticmethod
    def file_size(slots: int, capacity: int) -> int:
        o = HEADER_SIZE + 4 * slots
        o = (o + 7) // 8 * 8
        return o + capacity * (8 + 8 + 4 + 4)

    @property
    def full(self) -> bool:
        return self.count >= self.capacity

    def put(self, h: int, phys: int, store_time: int) -> None:
        i = self.count
        self._hash[i] = h
        self._phys[i] = phys
        self._time[i] = store_time
        slot = h % self.slots
        self._prev[i] = self._slot[slot]
        self._slot[slot] = i + 1
        self.count = i + 1
        if i == 0:
            self.begin_time = store_time
        self.end_time = store_time

    def commit(self) -> None:
        """Publish ``count`` and the ranges in the header (after a batch of ``put``)."""
        self.commits += 1
        _HEADER.pack_into(
            self._mm,
            0,
            MAGIC,
            VERSION,
            self.slots,
            self.capacity,
            self.count,
            0,
            self.begin_time,
            self.end_time,
            self.begin_phys,
            self.end_phys,
        )

    def lookup(self, h: int, begin: int, end: int, limit: int) -> list[int]:
        """Physical offsets of entries with hash ``h`` and time in [begin, end], newest first."""
        out: list[int] = []
        i = self._slot[h % self.slots]
        hashes, times, phys, prev = self._hash, self._time, self._phys, self._prev
        while i and len(out) < limit:
            idx = i - 1
            if idx >= self.capacity:
                break
            if idx < self.count and hashes[idx] == h and begin <= times[idx] <= end:
                out.append(phys[idx])
            nxt = prev[idx]
            if nxt >= i:
                break  # a damaged chain; never loop
            i = nxt
        return out

    def adopt(self) -> int:
        """Adopt entries written after the last header commit (a crash between a batch and its
        commit): they are complete, since an entry is written before its slot points at it.
        Must run before any new ``put``. Returns how many were adopted."""
        before = self.count
        while self.count < self.capacity and self._time[self.count] != 0:
            self.count += 1
        if self.count != before:
            self.end_time = self._time[self.count - 1]
            self.commit()
        return self.count - before

    def trim(self, log_end: int) -> int:
        """Drop entries for records at or past ``log_end``; returns how many were dropped. A
        file that ends at or before ``log_end`` is left as it is: not committed, so the next
        ``flush`` does not fsync it (recovery trims every file)."""
        keep = self.count
        while keep > 0 and self._phys[keep - 1] >= log_end:
            keep -= 1
        dropped = self.count - keep
        if not dropped and self.end_phys <= log_end:
            return 0
        if dropped:
            self._rebuild_slots(keep)
            self.end_time = self._time[keep - 1] if keep else 0
        self.end_phys = min(self.end_phys, log_end)
        self.commit()
        return dropped

    def _rebuild_slots(self, keep: int) -> None:
        for i in range(keep, self.count):
            self._hash[i] = 0
            self._phys[i] = 0
            self._time[i] = 0
            self._prev[i] = 0
        self.count = keep
        zero = memoryview(bytearray(4 * self.slots)).cast("I")
        self._slot[:] = zero
        for i in range(keep):
            slot = self._hash[i] % self.slots
            self._prev[i] = self._slot[slot]
            self._slot[slot] = i + 1

    @property
    def dirty(self) -> bool:
        """Written (committed) since the last ``flush`` began."""
        return self.commits != self.synced

    def flush(self) -> None:
        """fsync the file if it was written since the last flush began. Safe in a worker thread
        while the hub writes on: what is committed after ``commits`` was read here is left for
        the next flush."""
        commits = self.commits
        if commits == self.synced or self._fd < 0:
            return
        # Not ``mmap.flush()``: CPython holds the GIL through msync, which stalls every other
        # thread (the gevent hub: the whole broker) for as long as the write-back takes
        # (0.5 s for 400 MiB of dirty pages). On Linux fsync of the file writes back the same
        # dirty pages of the shared mapping, and releases the GIL.
        try:
            os.fsync(self._fd)
        except OSError:
            if self._fd < 0:
                return  # closed meanwhile (retention deleted the file): nothing to keep
            raise
        self.synced = commits

    def close(self) -> None:
        for view in (self._slot, self._phys, self._time, self._hash, self._prev, self._mv):
            view.release()
        self._mm.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
