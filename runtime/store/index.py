"""Key index: find records by ``topic#KEY`` / ``topic#UNIQ_KEY`` within a time range.

A persistent hash like RocketMQ's IndexFile, laid out as arrays so each insert is a handful of
memoryview stores into an ``mmap`` (no per-entry struct packing):

```
header 64 B   magic "AMQX", version, slots, capacity, count, begin/end store time, begin/end phys
slots         uint32[slots]     1 + index of the newest entry in the slot (0 = empty)
hash          uint32[capacity]  crc32 of "topic#key"
phys          int64[capacity]   commit-log offset of the record
time          int64[capacity]   store timestamp (ms)
prev          uint32[capacity]  1 + index of the previous entry in the same slot (0 = none)
```

Arrays are in the machine's byte order (little-endian on every platform we run on; the header
magic is checked). Files live under ``index/`` named by the 20-digit commit-log offset of the
first record they index; a full file is sealed and a new one started.

``put_items``' per-key loop runs in C (``runtime.store._fastlog.index_insert``) when the
extension is built and ``ACTORMQ_PURE_PYTHON`` is not 1; the Python loop is the fallback.

The index is derived data: recovery extends/trims it against the commit log, lookups return
candidates that the caller verifies against the actual records (hash collisions, and entries
that a power loss left half-written, are filtered there), and a lost index is rebuilt by reput.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterable

from loguru import logger

from runtime.errors import StoreError
from runtime.store.accel import fastlog
from runtime.store.record_dispatch import DispatchEntry
from runtime.store.segments import NAME_DIGITS, segment_name
from runtime.store.storage import fsync_dir

_fast_insert: Callable[..., tuple[int, int, int, int | None, int | None]] | None = getattr(
    fastlog(), "index_insert", None
)  # put_items' per-key loop in C (optional)

MAGIC = b"AMQX"
VERSION = 1
_HEADER = struct.Struct("=4sIIIIIqqqq")
HEADER_SIZE = 64


def key_hash(topic: str, key: str) -> int:
    return zlib.crc32(f"{topic}#{key}".encode())


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
                magic, version, f_slots, f_cap, *_ = _HEADER.unpack_from(head)
                if magic != MAGIC or version != VERSION:
                    raise StoreError(path, "not an index file of this version / byte order")
                slots, capacity = f_slots, f_cap
                self.slots, self.capacity = slots, capacity
                size = self.file_size(slots, capacity)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        """Kept open for ``flush``: fsync writes back the pages dirtied through the mapping."""
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
        """Drop entries for records at or past ``log_end``; returns how many were dropped."""
        keep = self.count
        while keep > 0 and self._phys[keep - 1] >= log_end:
            keep -= 1
        dropped = self.count - keep
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

    def flush(self) -> None:
        # Not ``mmap.flush()``: CPython holds the GIL through msync, which stalls every other
        # thread (the gevent hub: the whole broker) for as long as the write-back takes
        # (0.5 s for 400 MiB of dirty pages). On Linux fsync of the file writes back the same
        # dirty pages of the shared mapping, and releases the GIL.
        os.fsync(self._fd)

    def close(self) -> None:
        for view in (self._slot, self._phys, self._time, self._hash, self._prev, self._mv):
            view.release()
        self._mm.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class IndexService:
    """All index files of a store: inserts go to the newest, lookups walk newest to oldest."""

    def __init__(self, root: str, slots: int = 5_000_000, capacity: int = 20_000_000) -> None:
        if sys.byteorder != "little":
            raise StoreError(root, "the key index needs a little-endian machine")
        self.dir = os.path.join(root, "index")
        self.slots = slots
        self.capacity = capacity
        os.makedirs(self.dir, exist_ok=True)
        self.files: list[IndexFile] = []
        for name in sorted(os.listdir(self.dir)):
            if len(name) != NAME_DIGITS or not name.isdigit():
                continue
            path = os.path.join(self.dir, name)
            try:
                f = IndexFile(path, slots, capacity)
                f.adopt()
                self.files.append(f)
            except StoreError as exc:
                logger.warning("dropping unreadable index file {}: {}", path, exc.problem)
                os.remove(path)
        self._dirty = False
        self._seeds: dict[str, int] = {}
        self._fast = _fast_insert  # None: the Python loop (tests set it to compare both)

    @property
    def end_phys(self) -> int | None:
        """Offset just past the last record the index covers, or None when there is no index."""
        return self.files[-1].end_phys if self.files else None

    def put_entries(self, entries: Iterable[DispatchEntry]) -> None:
        """Index dispatch entries (tests and tools); see ``put_items``."""
        items = []
        end = None
        for e in entries:
            if e.keys:
                items.append((e.topic, e.physical_offset, e.store_timestamp, e.keys))
            end = e.physical_offset + e.size
        if end is not None:
            self.put_items(items, end)

    def put_items(self, items: Iterable[tuple[str, int, int, tuple[str, ...]]], end: int) -> None:
        """Index ``(topic, physical_offset, store_timestamp, keys)`` items of records dispatched
        in commit-log order, covering the log up to ``end``. Items the index already covers are
        skipped, so re-dispatching a range is harmless."""
        cur = self.files[-1] if self.files else None
        covered = cur.end_phys if cur is not None else -1
        if end <= covered:
            return
        seeds = self._seeds
        if self._fast is not None and cur is not None:
            self._put_items_fast(cur, items if type(items) is list else list(items), end)
            return
        crc32 = zlib.crc32
        room = 0 if cur is None else cur.capacity - cur.count
        if cur is not None:
            slots, nslots = cur._slot, cur.slots
            hashes, physs, times, prevs = cur._hash, cur._phys, cur._time, cur._prev
            i = cur.count
        last_topic = None
        seed = 0
        for topic, phys, store_time, keys in items:
            if phys < covered:
                continue
            n = len(keys)
            if room < n:
                if cur is not None:
                    cur.count = i
                    cur.end_phys = phys
                    cur.commit()
                cur = self._new_file(phys)
                room = cur.capacity
                slots, nslots = cur._slot, cur.slots
                hashes, physs, times, prevs = cur._hash, cur._phys, cur._time, cur._prev
                i = 0
            if topic is not last_topic:
                seed = seeds.get(topic)
                if seed is None:
                    seed = seeds[topic] = crc32(f"{topic}#".encode())
                last_topic = topic
            if i == 0:
                cur.begin_time = store_time
            # IndexFile.put, inlined: this runs once per key of every message
            for key in keys:
                h = crc32(key.encode(), seed)
                hashes[i] = h
                physs[i] = phys
                times[i] = store_time
                slot = h % nslots
                prevs[i] = slots[slot]
                i += 1
                slots[slot] = i
            cur.end_time = store_time
            room -= n
        if cur is not None:
            cur.count = i
        if cur is None:
            cur = self._new_file(max(covered, 0))  # even without keys: the file records coverage
        cur.end_phys = end
        cur.commit()
        self._dirty = True

    def _put_items_fast(self, cur: IndexFile, items: list, end: int) -> None:
        """``put_items`` with its per-key loop in C (``_fastlog.index_insert``), same effect."""
        covered = cur.end_phys
        room = cur.capacity - cur.count
        i = cur.count
        pos = 0
        fresh = False
        while True:
            pos, i, room, begin, last = self._fast(
                items,
                pos,
                covered,
                self._seeds,
                cur._slot,
                cur._hash,
                cur._phys,
                cur._time,
                cur._prev,
                i,
                room,
                fresh,
            )
            if begin is not None:
                cur.begin_time = begin
            if last is not None:
                cur.end_time = last
            if pos >= len(items):
                break
            phys = items[pos][1]  # it stopped before an item that needs a new file
            cur.count = i
            cur.end_phys = phys
            cur.commit()
            cur = self._new_file(phys)
            room = cur.capacity
            i = 0
            fresh = True
        cur.count = i
        cur.end_phys = end
        cur.commit()
        self._dirty = True

    def _new_file(self, first_phys: int) -> IndexFile:
        f = IndexFile(
            os.path.join(self.dir, segment_name(first_phys)),
            self.slots,
            self.capacity,
            first_phys=first_phys,
        )
        self.files.append(f)
        fsync_dir(self.dir)
        return f

    def query(self, topic: str, key: str, max_num: int, begin: int, end: int) -> list[int]:
        """Candidate physical offsets for ``topic#key`` stored in [begin, end], newest first,
        without duplicates. Callers verify each against the record."""
        h = key_hash(topic, key)
        out: list[int] = []
        seen: set[int] = set()
        for f in reversed(self.files):
            if f.count == 0 or f.end_time < begin or f.begin_time > end:
                continue
            for phys in f.lookup(h, begin, end, max_num * 2 + 8):
                if phys not in seen:
                    seen.add(phys)
                    out.append(phys)
            if len(out) >= max_num * 2 + 8:
                break
        return out

    def recover(self, log_min: int, log_end: int) -> int:
        """Trim to the commit log: drop files past its end or below its minimum."""
        dropped = 0
        while self.files and self.files[-1].begin_phys >= log_end:
            f = self.files.pop()
            dropped += f.count
            f.close()
            os.remove(f.path)
        for f in self.files:
            dropped += f.trim(log_end)
        self.delete_below(log_min)
        return dropped

    def delete_below(self, log_min: int) -> int:
        """Delete files whose every record lies below the commit log's minimum."""
        deleted = 0
        while len(self.files) > 1 and self.files[0].end_phys <= log_min:
            f = self.files.pop(0)
            f.close()
            os.remove(f.path)
            deleted += 1
        if deleted:
            fsync_dir(self.dir)
        return deleted

    def flush(self) -> None:
        """Make the index durable (mmap msync). Runs in a worker thread at checkpoints."""
        for f in self.files[-2:]:
            f.flush()
        self._dirty = False

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files.clear()
